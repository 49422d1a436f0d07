"""kore.lock: one request at a time in the critical section.

    curl http://127.0.0.1:8888/lock?ms=1000 & curl http://127.0.0.1:8888/lock?ms=1000

The second request waits for the first.  If a client goes away while its
handler holds the lock, the handler is cancelled and ``async with`` releases
the lock on the way out.
"""

import kore

lock = kore.lock()


@kore.route("/lock", methods=["get"], get={"ms": "^[0-9]{1,5}$"})
async def lock_handler(req):
    req.populate_get()
    ms = int(req.argument("ms") or "1000")
    start = kore.time()
    async with lock:
        waited = kore.time() - start
        await kore.suspend(ms)
    req.response(200, b"waited %d ms for the lock, held it %d ms\n" % (waited, ms))


@kore.route("/trylock", methods=["get"])
async def trylock_handler(req):
    if not lock.trylock():
        req.response(409, b"busy\n")
        return
    try:
        req.response(200, b"free\n")
    finally:
        lock.release()

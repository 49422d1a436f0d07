"""kore.timer and kore.suspend.

    curl http://127.0.0.1:8888/suspend?ms=250
    curl http://127.0.0.1:8888/timer

The timer below is created at import time: each worker starts its own.
"""

import kore

ticks = {"count": 0}


def tick(state):
    state["count"] += 1


heartbeat = kore.timer(tick, 100, 0, data=ticks)


@kore.route("/suspend", methods=["get"], get={"ms": "^[0-9]{1,5}$"})
async def suspend_handler(req):
    req.populate_get()
    ms = int(req.argument("ms") or "100")
    start = kore.time()
    await kore.suspend(ms)
    req.response(200, b"suspended %d ms\n" % (kore.time() - start))


@kore.route("/timer", methods=["get"])
async def timer_handler(req):
    fired = kore.queue()
    kore.timer(fired.push, 50, kore.TIMER_ONESHOT, data="oneshot fired")
    msg = await fired.pop()
    req.response(200, b"%s; heartbeat ticks so far: %d\n" % (msg.encode(), ticks["count"]))

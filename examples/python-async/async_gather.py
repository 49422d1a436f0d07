"""kore.gather: run coroutines together, results in argument order.

    curl http://127.0.0.1:8888/gather
    curl http://127.0.0.1:8888/gather?concurrency=1
"""

import json

import kore


async def sleeper(name, ms):
    await kore.suspend(ms)
    if name == "c":
        raise ValueError("c failed")      # returned as a value, not raised
    return "%s slept %d ms" % (name, ms)


@kore.route("/gather", methods=["get"], get={"concurrency": "^[0-9]$"})
async def gather_handler(req):
    req.populate_get()
    concurrency = int(req.argument("concurrency") or "0")
    start = kore.time()
    results = await kore.gather(sleeper("a", 300), sleeper("b", 100),
                                sleeper("c", 200), concurrency=concurrency)
    body = {
        "elapsed_ms": kore.time() - start,
        "results": [repr(r) if isinstance(r, Exception) else r for r in results],
    }
    req.response(200, json.dumps(body).encode())

"""App for the metrics tests: a regex route template, a slow handler, a CPU
spinner and a readiness check (not ready while the file named by
METRICS_READY_FLAG exists)."""

import os
import time
import urllib.parse

import kore

FLAG = os.environ.get("METRICS_READY_FLAG", "")

if os.environ.get("METRICS_CPU_POINT"):
    kore.set_worker_critical_point(cpu_percent=50, continuous=2, interval=1)


@kore.ready_check
def database():
    if FLAG and os.path.exists(FLAG):
        return "database unreachable"
    return None


@kore.route("/hello", methods=["get"])
def hello(req):
    req.response(200, b"hello")


@kore.route("^/item/[0-9]+$", methods=["get"])
def item(req):
    req.response(200, b"item")


@kore.route("/pid", methods=["get"])
def pid(req):
    req.response(200, str(os.getpid()).encode())


@kore.route("/slow", methods=["get"])
async def slow(req):
    await kore.suspend(1500)
    req.response(200, b"slow")


@kore.route("/spin", methods=["get"])
def spin(req):
    end = time.monotonic() + 8
    while time.monotonic() < end:
        pass
    req.response(200, b"spun")


@kore.route("/logheader", methods=["get"])
def logheader(req):
    kore.log(kore.LOG_NOTICE, "client says " + (req.request_header("x-note") or ""))
    req.response(200, b"logged")


@kore.route("/hdr", methods=["get"])
def hdr(req):
    req.response_header("x-out", "out-value")
    req.response(200, b"hdr")


@kore.route("/grow", methods=["get"])
async def grow(req):
    # holds ?mib= MiB until the worker exits, then answers after 3 s (the
    # --max-worker-rss test: the worker is replaced while this is in flight)
    mib = int(dict(urllib.parse.parse_qsl(req.query)).get("mib", "64"))
    block = bytearray(mib * 1048576)
    for i in range(0, len(block), 4096):
        block[i] = 1
    GROWN.append(block)
    await kore.suspend(3000)
    req.response(200, b"grown")


GROWN = []


def _ws_echo(c, op, data):
    c.websocket_send(op, data)


@kore.route("/ws", methods=["get"])
def ws(req):
    req.websocket_handshake(None, _ws_echo, None)


@kore.route("/counting", methods=["get"])
def counting(req):
    # whether this worker's metrics plugin counts answered requests
    from kore import runtime
    pm = runtime.plugin_manager()
    on = pm.has_plugin("kore-plugin-metrics.counting")
    impls = [i.plugin_name for i in pm.hook.kore_request_done.get_hookimpls()]
    req.response(200, ("%s %s" % (on, ",".join(impls) or "-")).encode())

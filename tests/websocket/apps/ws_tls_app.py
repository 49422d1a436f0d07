"""wss:// on a TLS domain, and a plugin (registered by the app) that
implements the websocket hooks: the connect hook logs, the disconnect hook
logs and raises."""

import os

import kore
from kore import hookimpl, runtime

kore.server("default", ip="127.0.0.1", port=os.environ["PORT"])
d = kore.domain("*", cert=os.environ["CERT"], key=os.environ["KEY"])


class WebSocketHooks:
    @hookimpl
    def kore_websocket_connect(self, websocket):
        kore.log(kore.LOG_INFO, "hook-connect fd=%d" % websocket.fd)

    @hookimpl
    def kore_websocket_disconnect(self, websocket):
        kore.log(kore.LOG_INFO, "hook-disconnect fd=%d sent=%s" % (
            websocket.fd, websocket.websocket_send(kore.WEBSOCKET_OP_TEXT, "late")))
        raise ValueError("boom in the disconnect hook")


pm = runtime.plugin_manager()
if pm.get_plugin("test-websocket-hooks") is None:
    pm.register(WebSocketHooks(), name="test-websocket-hooks")


def onconnect(c):
    kore.log(kore.LOG_INFO, "ws-connect fd=%d" % c.fd)
    c.websocket_send(kore.WEBSOCKET_OP_TEXT, "hello %s" % c.addr)


def onmsg(c, op, data):
    if data == "close":
        c.disconnect()
    elif data == "x509":
        c.websocket_send(kore.WEBSOCKET_OP_TEXT, repr(c.x509))
    elif isinstance(data, str) and data.startswith("big:"):
        c.websocket_send(kore.WEBSOCKET_OP_BINARY, b"x" * int(data[4:]))
    else:
        c.websocket_send(op, data)


def ondisconnect(c):
    kore.log(kore.LOG_INFO, "ws-disconnect fd=%d" % c.fd)


def ws(req):
    req.websocket_handshake(onconnect, onmsg, ondisconnect)


d.route("/ws", ws, methods=["get"])

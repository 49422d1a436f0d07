"""The application the websocket tests talk to.

Text messages are commands ("echo:x", "bcast-global:x", "sub:t", ...);
anything else is echoed with the same opcode.
"""

import kore

EVENTS = []


def onconnect(c):
    kore.log(kore.LOG_INFO, "ws-connect fd=%d" % c.fd)
    c.websocket_send(kore.WEBSOCKET_OP_TEXT, "hello %d" % kore.worker())


def ondisconnect(c):
    kore.log(kore.LOG_INFO, "ws-disconnect fd=%d" % c.fd)


def onmsg(c, op, data):
    if op == kore.WEBSOCKET_OP_TEXT and ":" in data:
        cmd, _, arg = data.partition(":")
        if cmd == "echo":
            c.websocket_send(op, arg)
        elif cmd == "type":
            c.websocket_send(kore.WEBSOCKET_OP_TEXT, type(data).__name__)
        elif cmd == "boom":
            raise ValueError("boom in onmsg")
        elif cmd == "close":
            c.disconnect()
        elif cmd == "bcast-local":
            kore.websocket_broadcast(c, op, arg.encode(), kore.WEBSOCKET_BROADCAST_LOCAL)
        elif cmd == "bcast-global":
            kore.websocket_broadcast(c, op, arg.encode(), kore.WEBSOCKET_BROADCAST_GLOBAL)
        elif cmd == "bcast-all":
            kore.websocket_broadcast(None, op, arg.encode(), kore.WEBSOCKET_BROADCAST_GLOBAL)
        elif cmd == "sub":
            c.subscribe(arg)
            c.websocket_send(op, "subscribed %s %s" % (arg, c.is_subscribed(arg)))
        elif cmd == "unsub":
            c.unsubscribe(arg)
            c.websocket_send(op, "unsubscribed %s %s" % (arg, c.is_subscribed(arg)))
        elif cmd == "pub":
            topic, _, msg = arg.partition(":")
            kore.publish(topic, msg)
        elif cmd == "count":
            c.websocket_send(op, str(kore.num_subscribers(arg)))
        elif cmd == "worker":
            c.websocket_send(op, str(kore.worker()))
        elif cmd == "big":
            c.websocket_send(kore.WEBSOCKET_OP_BINARY, b"x" * int(arg))
        else:
            c.websocket_send(op, data)
    else:
        c.websocket_send(op, data)


async def aconnect(c):
    await kore.suspend(10)
    c.websocket_send(kore.WEBSOCKET_OP_TEXT, "async hello")


async def amsg(c, op, data):
    await kore.suspend(10)
    if data == "boom":
        raise RuntimeError("boom in async onmsg")
    c.websocket_send(op, data)


def raising_connect(c):
    raise RuntimeError("boom in onconnect")


@kore.route("/ws", methods=["get"])
def ws(req):
    req.websocket_handshake(onconnect, onmsg, ondisconnect)


@kore.route("/ws-async", methods=["get"])
def ws_async(req):
    req.websocket_handshake(aconnect, amsg, ondisconnect)


@kore.route("/ws-names", methods=["get"])
def ws_names(req):
    req.websocket_handshake("onconnect", "onmsg", "ondisconnect")


@kore.route("/ws-connect-raise", methods=["get"])
def ws_connect_raise(req):
    req.websocket_handshake(raising_connect, onmsg, ondisconnect)


@kore.route("/", methods=["get"])
def index(req):
    req.response(200, b"ok")

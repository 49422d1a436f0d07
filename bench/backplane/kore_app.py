"""The kore side of the backplane benchmark: "sub:topic", "pub:topic:data"."""

import kore


def onmsg(c, op, data):
    cmd, _, arg = data.partition(":")
    if cmd == "sub":
        c.subscribe(arg)
        c.websocket_send(op, "ok")
    elif cmd == "pub":
        topic, _, msg = arg.partition(":")
        kore.publish(topic, msg)


@kore.route("/ws", methods=["get"])
def ws(req):
    req.websocket_handshake(None, onmsg, None)

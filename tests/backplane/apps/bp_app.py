"""The application the backplane tests talk to: text commands over /ws."""

import json
import os

import kore
from kore_websocket import backplane

if os.environ.get("T_BACKPLANE"):       # the option from application code
    kore.config.backplane = os.environ["T_BACKPLANE"]


def onconnect(c):
    pass


def onmsg(c, op, data):
    cmd, _, arg = data.partition(":")
    if cmd == "where":
        c.websocket_send(op, "%s %d" % (backplane.INSTANCE_ID, kore.worker()))
    elif cmd == "bcast-global":
        kore.websocket_broadcast(c, op, arg.encode(), kore.WEBSOCKET_BROADCAST_GLOBAL)
    elif cmd == "sub":
        c.subscribe(arg)
        c.websocket_send(op, "subscribed " + arg)
    elif cmd == "pub":
        topic, _, msg = arg.partition(":")
        kore.publish(topic, msg)
    elif cmd == "burst":
        # burst:topic:first:n publishes topic "<i>" for i in first..first+n-1
        topic, first, n = arg.split(":")
        for i in range(int(first), int(first) + int(n)):
            kore.publish(topic, str(i))
        c.websocket_send(op, "burst done")
    elif cmd == "big":
        try:
            kore.publish("big", "x" * int(arg))
            c.websocket_send(op, "sent")
        except ValueError as e:
            c.websocket_send(op, "ValueError: %s" % e)
    elif cmd == "count":
        c.websocket_send(op, str(kore.num_subscribers(arg)))
    elif cmd == "status":
        c.websocket_send(op, json.dumps(backplane.health()))
    elif cmd == "claim":
        key, ttl = arg.split(":")
        c.websocket_send(op, "claim %s" % backplane.claim(key, float(ttl)))
    elif cmd == "release":
        key, token = arg.split(":")
        c.websocket_send(op, "release %s" % backplane.release(key, token))
    else:
        c.websocket_send(op, data)


@kore.route("/ws", methods=["get"])
def ws(req):
    req.websocket_handshake(onconnect, onmsg, None)

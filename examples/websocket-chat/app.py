"""A chat room: the page at / opens a websocket to /ws; every message a
client sends goes to the "chat" topic, which reaches the clients of every
worker.

    korectl run examples/websocket-chat/app.py --workers 2

then open http://127.0.0.1:8888/ in two browser tabs.
"""

import json
import os

import kore

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "index.html")


class ChatApp:
    def configure(self, args):
        kore.config.websocket_maxframe = 4096
        kore.server("default", ip="127.0.0.1", port="8888", tls=False)
        d = kore.domain("*", attach="default")
        d.route("/", self.index, methods=["get"])
        d.route("/ws", self.ws, methods=["get"])
        with open(PAGE, "rb") as f:
            self.page = f.read()

    def index(self, req):
        req.response_header("content-type", "text/html; charset=utf-8")
        req.response(200, self.page)

    def ws(self, req):
        req.websocket_handshake(self.onconnect, self.onmsg, self.ondisconnect)

    def onconnect(self, c):
        c.subscribe("chat")
        c.websocket_send(kore.WEBSOCKET_OP_TEXT, json.dumps(
            {"system": "connected to worker %d; %d in the room"
             % (kore.worker(), kore.num_subscribers("chat"))}))

    def onmsg(self, c, op, data):
        if op != kore.WEBSOCKET_OP_TEXT:
            return
        try:
            msg = json.loads(data)
            text = str(msg["text"])[:500]
            nick = str(msg.get("nick") or "anon")[:32]
        except (ValueError, KeyError, TypeError):
            return
        # everyone in the room, this client included, on every worker
        kore.publish("chat", json.dumps({"nick": nick, "text": text,
                                         "worker": kore.worker()}))

    def ondisconnect(self, c):
        pass


koreapp = ChatApp()

"""A chat room across hosts: several kore instances behind nginx, one Redis.

Every message goes to the "chat" topic; the Redis backplane carries it to
the subscribers of every worker of every instance.

    redis-server --port 6379 &
    korectl run --bind 127.0.0.1:8001 --workers 2 examples/scale-out/app.py &
    korectl run --bind 127.0.0.1:8002 --workers 2 examples/scale-out/app.py &
    nginx -c "$PWD/examples/scale-out/nginx.conf" -p /tmp/nginx-scale-out  # :8080

then open http://127.0.0.1:8080/ in a few tabs (see README.md).  The backplane
defaults to redis://127.0.0.1:6379/0 here; KORE_BACKPLANE or --backplane
override it (e.g. redis-streams+redis://10.0.0.5:6379/0).
"""

import json

import kore
from kore_websocket import backplane

PAGE = b"""<!doctype html><meta charset=utf-8><title>scale-out chat</title>
<pre id=log></pre><input id=t autofocus placeholder="say something">
<script>
const ws = new WebSocket((location.protocol == "https:" ? "wss://" : "ws://")
                         + location.host + "/ws");
const log = document.getElementById("log"), t = document.getElementById("t");
ws.onmessage = e => { const m = JSON.parse(e.data);
  log.textContent += (m.system || (m.host + "/" + m.worker + ": " + m.text)) + "\\n"; };
t.onkeydown = e => { if (e.key == "Enter" && t.value) {
  ws.send(JSON.stringify({text: t.value})); t.value = ""; } };
</script>"""


class ScaleOutChat:
    def configure(self, args):
        # the kore.config option; the environment and the command line win
        kore.config.backplane = "redis://127.0.0.1:6379/0"
        kore.config.websocket_maxframe = 4096
        d = kore.domain("*")
        d.route("/", self.index, methods=["get"])
        d.route("/ws", self.ws, methods=["get"])
        d.route("/backplane", self.health, methods=["get"])

    def index(self, req):
        req.response_header("content-type", "text/html; charset=utf-8")
        req.response(200, PAGE)

    def health(self, req):
        # what a readiness probe reads: "degraded" while Redis is unreachable
        st = backplane.health()
        req.response_header("content-type", "application/json")
        req.response(200, json.dumps(st).encode())

    def ws(self, req):
        req.websocket_handshake(self.onconnect, self.onmsg, None)

    def onconnect(self, c):
        c.subscribe("chat")
        c.websocket_send(kore.WEBSOCKET_OP_TEXT, json.dumps(
            {"system": "connected to host %s worker %d"
             % (backplane.INSTANCE_ID, kore.worker())}))

    def onmsg(self, c, op, data):
        if op != kore.WEBSOCKET_OP_TEXT:
            return
        try:
            text = str(json.loads(data)["text"])[:500]
        except (ValueError, KeyError, TypeError):
            return
        kore.publish("chat", json.dumps({"text": text, "host": backplane.INSTANCE_ID,
                                         "worker": kore.worker()}))


koreapp = ScaleOutChat()

"""A websocket echo server: every message comes back with its opcode.

    korectl run examples/websocket-echo/app.py

ws://127.0.0.1:8888/ echoes; http://127.0.0.1:8888/health answers "ok".
Frames and messages up to 16 MiB (websocket_maxframe) are accepted, which
is what the Autobahn|Testsuite's performance cases (9.*) send.
"""

import kore


class EchoApp:
    def configure(self, args):
        kore.config.websocket_maxframe = 16 * 1024 * 1024 + 16
        kore.server("default", ip="127.0.0.1", port="8888", tls=False)
        d = kore.domain("*", attach="default")
        d.route("/", self.ws, methods=["get"])
        d.route("/health", self.health, methods=["get"])

    def ws(self, req):
        req.websocket_handshake(None, self.onmsg, None)

    def health(self, req):
        req.response(200, b"ok")

    @staticmethod
    def onmsg(c, op, data):
        c.websocket_send(op, data)


koreapp = EchoApp()

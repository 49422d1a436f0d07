"""A reverse proxy in front of two upstreams, all in one kore process.

    korectl run examples/proxy/app.py
    curl http://127.0.0.1:8888/api/hello      # balanced 2:1 over the upstreams
    curl http://127.0.0.1:8888/v1/hello       # /v1/x is sent as /api/v1/x
    curl http://127.0.0.1:8888/               # a route of the proxy itself

The upstreams listen on UP1 and UP2 (PORT+1, PORT+2; PORT defaults to 8888); each
answers with its name.  Kill nothing here: see docs/proxy.md for fail-over.
"""

import os

import kore

PORT = int(os.environ.get("PORT", "8888"))
UP = [int(os.environ.get("UP1", PORT + 1)), int(os.environ.get("UP2", PORT + 2))]


def upstream(name):
    def handler(req):
        req.response_header("Content-Type", "text/plain")
        req.response(200, ("%s got %s\n" % (name, req.path)).encode())
    return handler


class ProxyApp:
    def configure(self, args):
        kore.server("front", ip="127.0.0.1", port=str(PORT), tls=False)
        front = kore.domain("127.0.0.1", attach="front")
        front.route("/", self.index, methods=["get"])
        for port, name in zip(UP, ("one", "two")):
            kore.server(name, ip="127.0.0.1", port=str(port), tls=False)
            d = kore.domain("*", attach=name)
            d.route("^/.*$", upstream(name), methods=["get"])
            d.route("/healthz", upstream(name), methods=["get"])
        kore.alias("@api", kore.PROTO_HTTP,
                   ["127.0.0.1:%d 2" % UP[0], "127.0.0.1:%d 1" % UP[1]],
                   health="/healthz", health_interval=2)
        kore.mount("/api", "@api", domain="127.0.0.1")
        kore.mount("/v1", "@api/api/v1", domain="127.0.0.1")

    def index(self, req):
        req.response(200, b"the proxy itself\n")


koreapp = ProxyApp()

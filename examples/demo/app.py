"""The demo application: Kore's Python API served by kore for Python.

    bash scripts/demo.sh          # then open http://127.0.0.1:8888/
"""

import kore


class Demo:
    def configure(self, args):
        kore.config.workers = 2
        kore.config.deployment = "dev"
        kore.server("default", ip="127.0.0.1", port="8888", tls=False)
        dom = kore.domain("*", attach="default")
        dom.route("/", self.index, methods=["get"])
        dom.route("^/hello/([a-z]+)$", self.hello, methods=["get"])
        dom.route("/json", self.json, methods=["get"])
        dom.route("/slow", self.slow, methods=["get"],
                  get={"ms": "^[0-9]{1,4}$"})

    def index(self, req):
        req.response_header("content-type", "text/html; charset=utf-8")
        req.response(200, (
            "<h1>kore for Python</h1><p>Served by worker %d.</p><ul>"
            "<li><a href='/hello/world'>/hello/world</a> (regex route)</li>"
            "<li><a href='/json'>/json</a> (socketify's res.send)</li>"
            "<li><a href='/slow?ms=300'>/slow?ms=300</a> (async handler)</li>"
            "</ul>" % kore.worker()).encode())

    def hello(self, req, name):
        req.response(200, ("hello, %s\n" % name).encode())

    def json(self, req):
        req.send({"worker": kore.worker(), "time_ms": kore.time()})

    async def slow(self, req):
        req.populate_get()
        ms = int(req.argument("ms") or "100")
        await kore.suspend(ms)
        req.response(200, ("slept %d ms\n" % ms).encode())


koreapp = Demo()

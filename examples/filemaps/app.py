"""Static files from ./webroot under /static (index.html for directories).

    korectl run --bind 127.0.0.1:8888 examples/filemaps/app.py
    curl -i http://127.0.0.1:8888/static/
"""

import os

import kore

HERE = os.path.dirname(os.path.abspath(__file__))


class App:
    def configure(self, args):
        kore.config.filemap_index = "index.html"
        kore.server("default", ip="127.0.0.1", port="8888", tls=False)
        d = kore.domain("*")
        d.filemaps({"/static": os.path.join(HERE, "webroot")})
        d.route("/", self.index, methods=["get"])

    def index(self, req):
        req.redirect("/static/")


koreapp = App()

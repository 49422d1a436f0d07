"""kore for Python: plaintext and JSON, one route each."""

import kore


@kore.route("/plaintext", methods=["get"])
def plaintext(req):
    req.response_header("Content-Type", "text/plain")
    req.response(200, b"Hello, World!")


@kore.route("/json", methods=["get"])
def json(req):
    req.send({"message": "Hello, World!"})


@kore.route("/async-plaintext", methods=["get"])
async def async_plaintext(req):
    # /plaintext as a coroutine: hotpath.py and instructions.py time the
    # cost of driving a handler's coroutine with --path /async-plaintext
    req.response_header("Content-Type", "text/plain")
    req.response(200, b"Hello, World!")

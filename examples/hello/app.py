"""Hello world, Kore style and socketify style.

    korectl run --bind 127.0.0.1:8888 examples/hello/app.py
    curl http://127.0.0.1:8888/  /json  /user/12
"""

import kore


@kore.route("/", methods=["get"])
def index(req):
    req.response(200, b"hello world\n")


@kore.route("/json", methods=["get"])
def json(req):
    req.send({"hello": "world"})


@kore.route("^/user/([0-9]+)$", methods=["get"])
async def user(req, uid):
    await kore.suspend(10)
    req.response_header("content-type", "text/plain")
    req.response(200, ("user %s\n" % uid).encode())

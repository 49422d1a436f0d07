"""An app using the hello plugin: GET http://127.0.0.1:8888/ says the greeting.

    korectl run --hello-greeting bonjour examples/plugin-hello/app.py
"""

import kore

kore.server("default", ip="127.0.0.1", port="8888", tls=False)
domain = kore.domain("*", attach="default")


def index(req):
    req.response(200, kore.hello().encode())


domain.route("/", index, methods=["get"])

"""kore for Python: /plaintext and /1m on a TLS server and an h2c server."""

import os

import kore

kore.server("tls", ip="127.0.0.1", port=os.environ["TLS_PORT"])
kore.server("clear", ip="127.0.0.1", port=os.environ["PORT"], tls=False)
MIB = b"x" * (1 << 20)


def plaintext(req):
    req.response_header("Content-Type", "text/plain")
    req.response(200, b"Hello, World!")


def one_mib(req):
    req.response(200, MIB)


for d in (kore.domain("*", attach="tls", cert=os.environ["CERT"], key=os.environ["KEY"]),
          kore.domain("*", attach="clear")):
    d.route("/plaintext", plaintext, methods=["get"])
    d.route("/1m", one_mib, methods=["get"])

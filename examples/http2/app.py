"""HTTP/2 for an unchanged application: h2 over TLS (ALPN h2,http/1.1) on one
port, h2c by prior knowledge for a trusted proxy on another.

    cd examples/http2
    openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem \\
        -days 30 -subj /CN=localhost
    korectl run --http2-cleartext prior-knowledge app.py
    curl -k --http2 https://127.0.0.1:8443/          # HTTP/2 over TLS
    curl -k --http1.1 https://127.0.0.1:8443/        # the same port, HTTP/1.1
    curl --http2-prior-knowledge http://127.0.0.1:8080/   # h2c (127.0.0.1 is trusted)
    nghttp -v https://127.0.0.1:8443/page            # 103 Early Hints, then the page
    h2load -n 10000 -c 10 -m 10 https://127.0.0.1:8443/
"""

import os

import kore

HERE = os.path.dirname(os.path.abspath(__file__))
kore.server("tls", ip="127.0.0.1", port=os.environ.get("H2_TLS_PORT", "8443"))
kore.server("proxy", ip="127.0.0.1", port=os.environ.get("H2_PORT", "8080"), tls=False)
secure = kore.domain("*", attach="tls", cert=os.path.join(HERE, "cert.pem"),
                     key=os.path.join(HERE, "key.pem"))
behind_proxy = kore.domain("*", attach="proxy")

CSS = b"body { font-family: sans-serif }\n"


def index(req):
    req.response_header("content-type", "text/plain")
    req.response(200, ("hello over HTTP/%s\n" % req.stream.http_version).encode())


def page(req):
    # tells the browser to fetch the stylesheet while the page is made:
    # 103 Early Hints (or a PUSH_PROMISE for a client that enabled push)
    req.hint_promise("/style.css")
    req.response_header("content-type", "text/html")
    req.response(200, b'<link rel="stylesheet" href="/style.css"><p>hello</p>\n')


def style(req):
    req.response_header("content-type", "text/css")
    req.response(200, CSS)


async def slow(req):
    await kore.suspend(200)      # streams of one connection run concurrently
    req.response(200, b"slow\n")


for d in (secure, behind_proxy):
    d.route("/", index, methods=["get"])
    d.route("/page", page, methods=["get"])
    d.route("/style.css", style, methods=["get"])
    d.route("/slow", slow, methods=["get"])

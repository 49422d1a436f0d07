"""An upstream for the proxy tests: every answer names the node
(``NODE`` env var) and shows what the proxy sent.

    /big?n=BYTES        a streamed body of n bytes (chunks of 64 KiB)
    /upload             counts and hashes a (large) body as it arrives
    /slow?s=SECONDS     answers after a delay
    /healthz            200 while the file HEALTH_FILE exists, else 503
    /close              answers with Connection: close
    /ws                 a websocket echo
    anything else       JSON: node, method, target, headers, body size
"""

import hashlib
import json
import os

import kore

NODE = os.environ.get("NODE", "?")
HEALTH = os.environ.get("HEALTH_FILE", "")
UPLOADS = {}


def _q(req, name, default):
    for part in req.query.split("&"):
        k, _, v = part.partition("=")
        if k == name:
            return v
    return default


@kore.route("/healthz", methods=["get"])
def healthz(req):
    ok = not HEALTH or os.path.exists(HEALTH)
    req.response(200 if ok else 503, NODE.encode())


@kore.route("/big", methods=["get"])
def big(req):
    n = int(_q(req, "n", "0"))
    chunk = b"x" * 65536
    req.response_header("X-Node", NODE)

    def gen():
        left = n
        while left > 0:
            piece = chunk if left >= len(chunk) else chunk[:left]
            left -= len(piece)
            yield piece
    req.response(200, gen())


def _chunk(req, data):
    st = UPLOADS.setdefault(id(req), [0, hashlib.sha256()])
    st[0] += len(data)
    st[1].update(data)
    return True


@kore.route("/upload", methods=["post", "put"], hooks={"on_body_chunk": _chunk})
def upload(req):
    n, h = UPLOADS.pop(id(req), [0, hashlib.sha256()])
    req.response_header("X-Node", NODE)
    req.send({"node": NODE, "size": n, "sha256": h.hexdigest()})


@kore.route("/slow", methods=["get", "post"])
async def slow(req):
    await kore.suspend(int(float(_q(req, "s", "1")) * 1000))
    req.response(200, NODE.encode())


@kore.route("/close", methods=["get"])
def close(req):
    req.response_header("X-Node", NODE)
    req.end(NODE.encode(), end_connection=True)


COUNT = [0]


@kore.route("/cache", methods=["get", "head"])
def cache(req):
    """Headers from the query: cc= (Cache-Control), expires=SECONDS from now,
    cookie=1, vary=NAME, size=BYTES; the body counts the upstream's answers."""
    import email.utils
    import time
    COUNT[0] += 1
    q = dict(p.partition("=")[::2] for p in req.query.split("&") if p)
    from urllib.parse import unquote
    if "cc" in q:
        req.response_header("Cache-Control", unquote(q["cc"]))
    if "expires" in q:
        req.response_header("Expires", email.utils.formatdate(
            time.time() + int(q["expires"]), usegmt=True))
    if q.get("cookie"):
        req.response_header("Set-Cookie", "session=secret")
    if "vary" in q:
        req.response_header("Vary", q["vary"])
    body = ("%s %d %s" % (NODE, COUNT[0], req.request_header(q.get("vary", "x-none")))).encode()
    body += b"." * int(q.get("size", "0"))
    req.response(200, body)


def _ws_message(c, op, data):
    c.websocket_send(op, data)


@kore.route("/ws", methods=["get"])
def ws(req):
    req.websocket_handshake(None, _ws_message, None)


@kore.route("^/.*$")
def echo(req):
    req.response_header("X-Node", NODE)
    req.response_header("Vary", "Accept-Encoding")
    req.response_header("Age", "7")
    req.response_header("Date", "Mon, 01 Jan 2024 00:00:00 GMT")
    req.response_header("Connection", "X-Secret")
    req.response_header("X-Secret", "hop")
    req.response_header("Keep-Alive", "timeout=5")
    body = req.body
    req.response_header("Content-Type", "application/json")
    req.response(200, json.dumps({
        "node": NODE, "method": req.method_name, "target": req.target,
        "headers": req.headers_list(), "size": len(body),
        "sha256": hashlib.sha256(body).hexdigest()}).encode())

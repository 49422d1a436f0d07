"""The application most HTTP tests talk to (one domain, @kore.route routes)."""

import hashlib
import json

import kore

EVENTS = []


@kore.route("/", methods=["get"])
def index(req):
    req.response(200, b"hello")


@kore.route("/any")
def any_method(req):
    req.response(200, req.get_method().encode())


@kore.route("^/opt/([a-z]+)(/([0-9]+))?$", methods=["get"])
def opt(req, *args):
    req.response(200, json.dumps(args).encode())


@kore.route("/echo", methods=["post", "put", "patch"])
def echo(req):
    req.response_header("x-body-path", str(req.body_path))
    req.response_header("x-digest", req.body_digest.hex())
    req.response(200, req.body)


@kore.route("/bodyread", methods=["post"])
def bodyread(req):
    out = []
    while True:
        n, chunk = req.body_read(1024)
        if n == 0:
            break
        out.append(n)
    try:
        req.body_read(1025)
        big = "no error"
    except RuntimeError:
        big = "RuntimeError"
    req.response(200, json.dumps({"sizes": out, "big": big}).encode())


@kore.route("/info")
def info(req):
    hdrs = req.headers()
    req.response(200, json.dumps({
        "host": req.host, "agent": req.agent, "path": req.path, "method": req.method,
        "protocol": req.protocol, "x_a": req.request_header("X-A"),
        "headers": hdrs, "addr": req.connection.addr, "fd": req.connection.fd > 0,
        "full_url": req.get_full_url(), "url": req.get_url(),
        "queries": req.get_queries(), "q": req.get_query("q"),
        "remote": req.get_remote_address(), "proxied": req.get_proxied_remote_address(),
        "x509": req.connection.x509,
    }).encode())


@kore.route("/params", methods=["get", "post"],
            get={"id": "^[0-9]+$", "name": lambda req, v: v.startswith("k")},
            post={"id": "^[0-9]+$", "ac": lambda req, v: _async_ok(v)},
            qs={"page": "^[0-9]+$"})
def params(req):
    if req.method == kore.HTTP_METHOD_GET:
        req.populate_get()
    else:
        req.populate_get()
        req.populate_post()
    req.response(200, json.dumps({k: req.argument(k) for k in
                                  ("id", "name", "ac", "page", "nope")}).encode())


async def _async_ok(v):
    await kore.suspend(1)
    return v == "yes"


@kore.route("/multi", methods=["post"], post={"title": "^[a-z]+$"})
def multi(req):
    req.populate_multipart()
    f = req.file_lookup("upload")
    data = b""
    if f is not None:
        while True:
            n, chunk = f.read(1024)
            if n == 0:
                break
            data += chunk
    req.response(200, json.dumps({
        "title": req.argument("title"),
        "file": None if f is None else [f.name, f.filename, data.decode()],
        "missing": req.file_lookup("nope") is None}).encode())


@kore.route("/cookies")
def cookies(req):
    req.populate_cookies()
    req.set_cookie("sid", "abc", {"path": "/", "httponly": True, "max-age": 60})
    req.set_cookie("two", "2")
    req.response(200, json.dumps({"a": req.cookie("a"), "b": req.get_cookie("b"),
                                  "none": req.cookie("zz")}).encode())


@kore.route("/headers")
def headers(req):
    req.response_header("x-a", "1")
    req.response_header("X-A", "2")
    req.response_header("x-b", "3")
    req.response(200, b"")


@kore.route("/stream")
def stream(req):
    req.response(200, iter(["ab", b"cd", "", "ef"]))


@kore.route("/kore-str")
def kore_str(req):
    req.response(200, "text")


@kore.route("/status")
def status(req):
    code = int(req.get_query("code") or 200)
    req.response(code, b"" if code in (204, 304) else b"x")


# socketify verbs
@kore.route("/sfy/write")
def sfy_write(req):
    req.write("I can")
    req.write(" send ")
    req.write("messages")
    req.end(" in parts!")


@kore.route("/sfy/send")
def sfy_send(req):
    req.send({"Hello": "World!"}, headers=(("X-Rate-Limit-Remaining", "10"),
                                          (b"Another-Headers", b"Value")))


@kore.route("/sfy/send-text")
def sfy_send_text(req):
    req.send("Not Found", status=404)


@kore.route("/sfy/status")
def sfy_status(req):
    req.write_status("201 Created").write_header("X-Y", "z").end("made")


@kore.route("/sfy/redirect")
def sfy_redirect(req):
    req.redirect("/redirected")


@kore.route("/sfy/empty")
def sfy_empty(req):
    req.end_without_body()
    assert req.has_responded()


@kore.route("/sfy/cork")
def sfy_cork(req):
    def cb(r):
        r.write_status(200)
        r.write_header("Content-Type", "text/plain")
        r.write("a")
        r.end("b")
    req.cork(cb)


@kore.route("/sfy/list")
def sfy_list(req):
    req.end([1, 2, 3])


@kore.route("^/sfy/params/([0-9]+)/([a-z]+)$")
def sfy_params(req, a, b):
    req.end({"p0": req.get_parameter(0), "all": req.get_parameters(),
             "p9": req.get_parameter(9)})


@kore.route("/sfy/each")
def sfy_each(req):
    seen = []
    req.for_each_header(lambda k, v: seen.append([k, v]))
    req.end({"each": seen, "headers": req.get_headers(), "h": req.get_header("x-q")})


@kore.route("/sfy/continue", methods=["post"])
def sfy_continue(req):
    req.end({"len": len(req.body)})


# errors
@kore.route("/boom")
def boom(req):
    raise ValueError("boom")


@kore.route("/boom-after")
def boom_after(req):
    req.response(200, b"sent")
    raise ValueError("after response")


@kore.route("/noresponse")
def noresponse(req):
    pass


@kore.route("/returns")
def returns(req):
    req.response(200, b"ok")
    return 42


@kore.route("/async")
async def async_handler(req):
    await kore.suspend(10)
    req.response(200, b"async")


@kore.route("/async-boom")
async def async_boom(req):
    await kore.suspend(1)
    raise KeyError("x")


def _started(req):
    """?started=PATH: the file a test waits for (the handler runs now)."""
    path = req.get_query("started")
    if path:
        open(path, "w").close()


@kore.route("/slow")
async def slow(req):
    _started(req)
    await kore.suspend(int(req.get_query("ms") or 300))
    req.response(200, b"slow")


@kore.route("/tiny-sndbuf")
def tiny_sndbuf(req):
    """?size=N bytes, sent on a socket whose send buffer is made tiny first,
    so that one non-blocking send cannot take the response."""
    import socket
    req.stream.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    n = int(req.get_query("size") or 60000)
    req.response(200, (b"0123456789abcdef" * (n // 16 + 1))[:n])


@kore.route("/tag")
def tag(req):
    req.response(200, str(getattr(req, "tag", None)).encode())


@kore.prerequest
def pre(req):
    req.tag = "tagged"
    if req.path == "/forbidden":
        req.response(403, b"")
        return False
    return None


@kore.route("/forbidden")
def forbidden(req):
    req.response(200, b"should not run")


# auth
def verify_header(req, value):
    return value == "secret"


async def verify_cookie(req, value):
    await kore.suspend(1)
    return value == "good"


@kore.route("/auth/header", methods=["get"],
            auth={"type": "header", "value": "x-token", "verify": verify_header})
def auth_header(req):
    req.response(200, b"in")


@kore.route("/auth/cookie", methods=["get"],
            auth={"type": "cookie", "value": "session", "verify": verify_cookie,
                  "redirect": "/login"})
def auth_cookie(req):
    req.response(200, b"in")


# hooks
ORDER = []


def on_headers(req):
    ORDER.append("headers")
    return True


def on_body_chunk(req, data):
    ORDER.append("chunk:%d" % len(data))
    req.hashed = getattr(req, "hashed", hashlib.sha256())
    req.hashed.update(data)
    return True


def on_free(req):
    ORDER.append("free")


@kore.route("/hooks", methods=["post"],
            hooks={"on_headers": on_headers, "on_body_chunk": on_body_chunk,
                   "on_free": on_free})
def hooks(req):
    ORDER.append("handler")
    try:
        req.body
        body = "readable"
    except RuntimeError:
        body = "RuntimeError"
    req.response(200, json.dumps({"digest": req.hashed.hexdigest(), "body": body}).encode())


@kore.route("/order")
def order(req):
    out = list(ORDER)
    del ORDER[:]
    req.response(200, json.dumps(out).encode())


@kore.route("/upgrade")
def upgrade(req):
    def takeover(sock, buffered):
        sock.sendall(b"upgraded:" + buffered)
        data = sock.recv(100)
        sock.sendall(b"echo:" + data)
    req.upgrade(takeover, 101, [("Upgrade", "test"), ("Connection", "Upgrade")])


@kore.route("/ws")
def ws(req):
    try:
        req.websocket_handshake(None, None, None)
    except kore.PluginMissing as exc:
        req.response(200, str(exc).encode())


@kore.route("/hang")
async def hang(req):
    marker = req.get_query("marker")

    def aborted(r):
        with open(marker + ".aborted", "w") as f:
            f.write("aborted=%s" % r.aborted)
    req.on_aborted(aborted)
    _started(req)
    try:
        await kore.suspend(30000)
        req.response(200, b"done")
    finally:
        with open(marker, "w") as f:
            f.write("finally")


@kore.route("/hang-sync")
def hang_sync(req):
    import gevent
    marker = req.get_query("marker")
    _started(req)
    try:
        gevent.sleep(30)
        req.response(200, b"done")
    finally:
        with open(marker, "w") as f:
            f.write("finally")

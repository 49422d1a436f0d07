"""The application the HTTP/2 tests talk to: the same routes on a TLS
server (ALPN h2,http/1.1) and on a cleartext one (HTTP/1.1 and h2c)."""

import hashlib
import json
import os

import gevent

import kore

kore.server("tls", ip="127.0.0.1", port=os.environ["TLS_PORT"])
kore.server("clear", ip="127.0.0.1", port=os.environ["PORT"], tls=False)
secure = kore.domain("*", attach="tls", cert=os.environ["CERT"], key=os.environ["KEY"])
plain = kore.domain("*", attach="clear")
MARKS = os.environ.get("MARKS", ".")
MIB = b"0123456789abcdef" * 65536


def index(req):
    req.response(200, b"hello")


def any_method(req):
    req.response(200, req.get_method().encode())


def opt(req, *args):
    req.response(200, json.dumps(args).encode())


def echo(req):
    req.response_header("x-digest", req.body_digest.hex())
    req.response_header("x-len", str(len(req.body)))
    req.response(200, req.body)


def digest(req):
    req.response(200, json.dumps({"len": len(req.body),
                                  "sha": hashlib.sha256(req.body).hexdigest()}).encode())


def info(req):
    req.response(200, json.dumps({
        "host": req.host, "agent": req.agent, "path": req.path, "method": req.method,
        "protocol": req.protocol, "x_a": req.request_header("X-A"),
        "headers": req.headers(), "list": req.headers_list(),
        "addr": req.connection.addr, "fd": req.connection.fd > 0,
        "full_url": req.get_full_url(), "queries": req.get_queries(),
        "q": req.get_query("q"), "remote": req.get_remote_address(),
    }).encode())


def params(req):
    req.populate_get()
    if req.method == kore.HTTP_METHOD_POST:
        req.populate_post()
    req.response(200, json.dumps({k: req.argument(k) for k in ("id", "name", "nope")}).encode())


def multi(req):
    req.populate_multipart()
    f = req.file_lookup("upload")
    data = b""
    while f is not None:
        n, chunk = f.read(1024)
        if n == 0:
            break
        data += chunk
    req.response(200, json.dumps({"title": req.argument("title"),
                                  "file": None if f is None else [f.filename, data.decode()]}).encode())


def cookies(req):
    req.populate_cookies()
    req.set_cookie("sid", "abc", {"path": "/", "httponly": True, "max-age": 60})
    req.set_cookie("two", "2")
    req.response(200, json.dumps({"a": req.cookie("a"), "b": req.get_cookie("b"),
                                  "raw": req.request_header("cookie")}).encode())


def headers(req):
    req.response_header("x-a", "1")
    req.response_header("X-B", "2")
    req.response_header("Connection", "keep-alive")
    req.response(200, b"")


def stream(req):
    req.response(200, iter(["ab", b"cd", "", "ef"]))


def big(req):
    n = int(req.get_query("mib") or 1)
    req.response(200, MIB * n)


def big_stream(req):
    n = int(req.get_query("mib") or 1)
    req.response(200, (MIB for _ in range(n)))


def status(req):
    code = int(req.get_query("code") or 200)
    req.response(code, b"" if code in (204, 304) else b"x")


def sfy_write(req):
    req.write("I can")
    req.write(" send ")
    req.write("messages")
    req.end(" in parts!")


def sfy_send(req):
    req.send({"Hello": "World!"}, headers=(("X-Rate-Limit-Remaining", "10"),))


def sfy_status(req):
    req.write_status("201 Created").write_header("X-Y", "z").end("made")


def sfy_redirect(req):
    req.redirect("/redirected")


def sfy_cork(req):
    def cb(r):
        r.write_status(200)
        r.write_header("Content-Type", "text/plain")
        r.write("a")
        r.end("b")
    req.cork(cb)


def sfy_params(req, a, b):
    req.end({"p0": req.get_parameter(0), "all": req.get_parameters()})


def boom(req):
    raise ValueError("boom")


def boom_stream(req):
    def gen():
        yield b"first"
        raise ValueError("mid-stream")
    req.response(200, gen())


async def slow(req):
    marker = req.get_query("marker")
    if marker:
        _mark(marker + ".started", "started")
    await kore.suspend(int(req.get_query("ms") or 300))
    req.response(200, b"slow")


def _mark(name, text):
    with open(os.path.join(MARKS, name), "w") as f:
        f.write(text)


async def hang(req):
    marker = req.get_query("marker")
    req.on_aborted(lambda r: _mark(marker + ".aborted", "aborted"))
    _mark(marker + ".started", "started")
    try:
        await kore.suspend(30000)
        req.response(200, b"done")
    finally:
        _mark(marker, "finally")


def hang_sync(req):
    marker = req.get_query("marker")
    _mark(marker + ".started", "started")
    try:
        gevent.sleep(30)
        req.response(200, b"done")
    finally:
        _mark(marker, "finally")


COUNT = {"n": 0}


def counted(req):
    COUNT["n"] += 1
    req.response(200, b"counted")


def count(req):
    req.response(200, str(COUNT["n"]).encode())


def hint(req):
    how = req.hint_promise("/files/a.txt")
    req.response(200, how.encode())


def upgrade(req):
    req.upgrade(lambda sock, buffered: None, 101, [("Upgrade", "test")])


def paused_chunk(req, data):
    req.chunks = getattr(req, "chunks", 0) + 1
    req.hashed = getattr(req, "hashed", None) or hashlib.sha256()
    req.hashed.update(data)
    if req.chunks <= 3:
        req.pause()
        gevent.spawn_later(0.2, req.resume)
    return True


def paused(req):
    req.response(200, json.dumps({"chunks": req.chunks,
                                  "sha": req.hashed.hexdigest()}).encode())


async def upstream(req):
    marker = req.get_query("marker")
    try:
        client = kore.httpclient("http://127.0.0.1:%s/" % req.get_query("port"))
        status, body = await client.get()
        req.response(200, body)
    finally:
        _mark(marker, "finally")


def verify_header(req, value):
    return value == "secret"


for d in (secure, plain):
    d.route("/", index, methods=["get"])
    d.route("/any", any_method)
    d.route("^/opt/([a-z]+)(/([0-9]+))?$", opt, methods=["get"])
    d.route("/echo", echo, methods=["post", "put"])
    d.route("/digest", digest, methods=["post"])
    d.route("/info", info)
    d.route("/params", params, methods=["get", "post"],
            get={"id": "^[0-9]+$", "name": "^k"}, post={"id": "^[0-9]+$"})
    d.route("/multi", multi, methods=["post"], post={"title": "^[a-z]+$"})
    d.route("/cookies", cookies)
    d.route("/headers", headers)
    d.route("/stream", stream)
    d.route("/big", big)
    d.route("/big-stream", big_stream)
    d.route("/status", status)
    d.route("/sfy/write", sfy_write)
    d.route("/sfy/send", sfy_send)
    d.route("/sfy/status", sfy_status)
    d.route("/sfy/redirect", sfy_redirect)
    d.route("/sfy/cork", sfy_cork)
    d.route("^/sfy/params/([0-9]+)/([a-z]+)$", sfy_params)
    d.route("/boom", boom)
    d.route("/boom-stream", boom_stream)
    d.route("/slow", slow)
    d.route("/hang", hang)
    d.route("/hang-sync", hang_sync)
    d.route("/counted", counted)
    d.route("/count", count)
    d.route("/hint", hint)
    d.route("/upstream", upstream)
    d.route("/paused", paused, methods=["post"], hooks={"on_body_chunk": paused_chunk})
    d.route("/upgrade", upgrade)
    d.route("/auth", index, methods=["get"],
            auth={"type": "header", "value": "x-token", "verify": verify_header})
    d.filemaps({"/files": os.environ["FILES"]})


def wsgi_app(environ, start_response):
    body = environ["wsgi.input"].read()
    out = json.dumps({"protocol": environ["SERVER_PROTOCOL"], "path": environ["PATH_INFO"],
                      "scheme": environ["wsgi.url_scheme"], "x_a": environ.get("HTTP_X_A"),
                      "len": len(body)}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(out)))])
    return [out]


kore.mount("/wsgi", wsgi_app, domain="*")      # the first "*": the TLS server's

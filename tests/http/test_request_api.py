"""Kore's request object and socketify's verbs, through real clients, over
HTTP/1.1 and over HTTP/2 (h2c) with the same assertions (kh_proto)."""

import json
import socket

import httpx
import pytest

from kh_proto import H2C_ENV, SERVED, client, http1_only, raw
from kh_util import Conn


@pytest.fixture(scope="module")
def cl(main_server, proto):
    with client(main_server.url, proto) as c:
        yield c


def test_getters(cl):
    r = cl.get("/info?q=1&x=%41", headers={"User-Agent": "agent/1", "X-A": "va"})
    d = r.json()
    assert d["agent"] == "agent/1"          # Kore returns the path here
    assert d["path"] == "/info" and d["method"] == 1 and d["protocol"] == "http"
    assert d["host"].startswith("127.0.0.1:")
    assert d["x_a"] == "va" and d["headers"]["x-a"] == "va" and "host" in d["headers"]
    assert d["addr"] == "127.0.0.1" and d["fd"] is True and d["x509"] is None
    assert d["full_url"] == "/info?q=1&x=%41" and d["url"] == "/info"
    assert d["queries"] == {"q": ["1"], "x": ["A"]} and d["q"] == "1"   # socketify: lists
    assert d["remote"] == "127.0.0.1"


def test_duplicate_headers(main_server, proto):
    r = raw(main_server.port, proto, "GET", "/info", [("X-A", "first"), ("x-a", "second")])
    d = json.loads(r.body)
    assert d["x_a"] == "first" and d["headers"]["x-a"] == "second"


def test_proxied_address_trusted_peer(cl):
    d = cl.get("/info", headers={"X-Forwarded-For": "10.0.0.1, 203.0.113.9"}).json()
    assert d["proxied"] == "203.0.113.9"


def test_response_header_replaces_case_insensitively(main_server, proto):
    r = raw(main_server.port, proto, "GET", "/headers")
    assert r.all("x-a") == ["2"] and r.header("x-b") == "3"
    assert b"x-a: 2" in r.raw_head


def test_kore_str_body_and_iterator(cl):
    assert cl.get("/kore-str").text == "text"
    assert cl.get("/stream").text == "abcdef"


def test_params_validation(cl):
    d = cl.get("/params?id=12&name=kore&page=3&nope=1").json()
    assert d == {"id": "12", "name": "kore", "ac": None, "page": "3", "nope": None}
    d = cl.get("/params?id=x1&name=bad").json()
    assert d["id"] is None and d["name"] is None
    assert cl.get("/params?id=%31%32").json()["id"] == "12"
    d = cl.post("/params?page=2", data={"id": "7", "ac": "yes"}).json()
    assert d["id"] == "7" and d["ac"] == "yes" and d["page"] == "2"
    d = cl.post("/params", data={"id": "7", "ac": "no"}).json()
    assert d["ac"] is None                  # async validators really validate


def test_multipart(cl):
    r = cl.post("/multi", data={"title": "hello"},
                files={"upload": ("a.txt", b"file-content", "text/plain")})
    d = r.json()
    assert d == {"title": "hello", "file": ["upload", "a.txt", "file-content"], "missing": True}
    d = cl.post("/multi", data={"title": "BAD"}, files={"x": ("b", b"1")}).json()
    assert d["title"] is None and d["file"] is None


def test_body_read(cl):
    d = cl.post("/bodyread", content=b"b" * 2500).json()
    assert d == {"sizes": [1024, 1024, 452], "big": "RuntimeError"}


def test_cookies(main_server, proto):
    r = raw(main_server.port, proto, "GET", "/cookies", [("Cookie", 'a=1; b="two"')])
    assert json.loads(r.body) == {"a": "1", "b": "two", "none": None}
    sc = r.all("set-cookie")
    assert sc == ["sid=abc; Path=/; HttpOnly; Max-Age=60", "two=2"]


def test_socketify_write_end(cl, proto):
    r = cl.get("/sfy/write")
    assert r.text == "I can send messages in parts!"
    if proto == "h1":
        assert r.headers["transfer-encoding"] == "chunked"
    else:       # DATA frames, no chunked coding (RFC 9113 8.2.2)
        assert "transfer-encoding" not in r.headers and "content-length" not in r.headers


def test_socketify_send_json_headers(cl):
    r = cl.get("/sfy/send")
    assert r.json() == {"Hello": "World!"}
    assert r.headers["content-type"] == "application/json"
    assert r.headers["x-rate-limit-remaining"] == "10" and r.headers["another-headers"] == "Value"
    r = cl.get("/sfy/send-text")
    assert r.status_code == 404 and r.text == "Not Found"
    assert r.headers["content-type"] == "text/plain"


def test_socketify_status_redirect_empty_cork(cl):
    r = cl.get("/sfy/status")
    assert r.status_code == 201 and r.headers["x-y"] == "z" and r.text == "made"
    r = cl.get("/sfy/redirect")
    assert r.status_code == 302 and r.headers["location"] == "/redirected"
    r = cl.get("/sfy/empty")
    assert r.status_code == 200 and r.content == b""
    r = cl.get("/sfy/cork")
    assert r.text == "ab" and r.headers["content-type"] == "text/plain"
    assert cl.get("/sfy/list").json() == [1, 2, 3]


def test_socketify_params_headers(cl):
    d = cl.get("/sfy/params/42/abc").json()
    assert d == {"p0": "42", "all": ["42", "abc"], "p9": None}
    d = cl.get("/sfy/each", headers={"X-Q": "v"}).json()
    assert ["x-q", "v"] in d["each"] and d["headers"]["x-q"] == "v" and d["h"] == "v"


@http1_only
def test_socketify_cork_one_write(main_server):
    # the cork callback's writes reach the client as one segment: the first
    # recv() has the whole response (no sleep before it, which would let
    # several segments pile up and pass)
    c = Conn(main_server.port)
    c.send(b"GET /sfy/cork HTTP/1.1\r\nHost: x\r\n\r\n")
    data = c.sock.recv(65536)
    assert data.endswith(b"0\r\n\r\n") and b"\r\n\r\n1\r\na\r\n" in data
    c.close()


def test_prerequest_tag_and_stop(cl):
    assert cl.get("/tag").text == "tagged"
    r = cl.get("/forbidden")
    assert r.status_code == 403 and r.text == ""


def test_auth(cl):
    assert cl.get("/auth/header").status_code == 403
    assert cl.get("/auth/header", headers={"x-token": "wrong"}).status_code == 403
    assert cl.get("/auth/header", headers={"x-token": "secret"}).text == "in"
    r = cl.get("/auth/cookie")
    assert r.status_code == 302 and r.headers["location"] == "/login"
    assert cl.get("/auth/cookie", headers={"Cookie": "session=good"}).text == "in"


def test_hooks_order_and_body_chunks(cl):
    cl.get("/order")
    import hashlib
    body = b"h" * 300000
    d = cl.post("/hooks", content=body).json()
    assert d["digest"] == hashlib.sha256(body).hexdigest()
    assert d["body"] == "RuntimeError"
    order = cl.get("/order").json()
    assert order[0] == "headers"                 # Kore runs a chunk first
    assert order[-2:] == ["handler", "free"]
    assert all(o.startswith("chunk:") for o in order[1:-2])


@http1_only
def test_upgrade_takeover(main_server):
    c = Conn(main_server.port)
    c.send(b"GET /upgrade HTTP/1.1\r\nHost: x\r\n\r\nEXTRA")
    r = c.read_response()
    assert r.status == 101
    while len(c.buf) < len(b"upgraded:EXTRA"):
        c._fill()
    assert c.buf == b"upgraded:EXTRA"
    c.buf = b""
    c.send(b"ping")
    c._fill()
    assert c.buf == b"echo:ping"
    c.buf = b""
    assert c.closed()


def test_websocket_handshake_without_plugin():
    # in this process the websocket plugin is not loaded: the method is ours
    import kore
    from kore_http.request import HttpRequest
    req = HttpRequest(None, "GET", "/", True, b"")
    with pytest.raises(kore.PluginMissing) as exc:
        req.websocket_handshake(None, None, None)
    assert "kore-plugin-websocket" in str(exc.value)


def test_method_getter_constants(cl):
    for m in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        assert cl.request(m, "/any").text == m
    assert cl.head("/any").status_code == 200
    r = cl.head("/")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "5"


def test_socketify_extra_verbs(kore_server):
    app = """
import kore

kore.server("default", ip="127.0.0.1", port="1", tls=False)
d = kore.domain("*")

async def later(req):
    await kore.suspend(10)
    return "async result"

def verbs(req):
    assert req.grab_aborted_handler() is req and req.preserve() is req
    assert req.get_native_handle() is not None
    result = req.run_async(later(req))
    req.write_headers((("X-One", "1"), (b"X-Two", b"2")))
    req.write_headers({"X-Three": "3"})
    req.end(result)

def cont(req):
    req.write_continue()
    req.end("after continue")

def moved(req):
    req.redirect("/elsewhere", status_code=307)

d.route("/verbs", verbs, methods=["get"])
d.route("/continue", cont, methods=["get"])
d.route("/moved", moved, methods=["get"], key="ignored.pem")
"""
    srv = kore_server(app, env=H2C_ENV)
    for proto in SERVED:         # one server for both: this test starts its own
        with client(srv.url, proto) as c:
            r = c.get("/verbs")
            assert r.status_code == 200 and r.text == "async result"
            assert (r.headers["x-one"], r.headers["x-two"], r.headers["x-three"]) == \
                ("1", "2", "3")
            assert c.get("/continue").text == "after continue"
            r = c.get("/moved")
            assert r.status_code == 307 and r.headers["location"] == "/elsewhere"
    # the interim 100 itself, as HTTP/1.1 bytes
    raw = Conn(srv.port)
    raw.send(b"GET /continue HTTP/1.1\r\nHost: x\r\n\r\n")
    first = raw.read_response()
    assert first.status == 100
    assert raw.read_response().body == b"after continue"
    r = httpx.get(srv.url + "/moved", timeout=10)
    assert r.status_code == 307 and r.headers["location"] == "/elsewhere"
    assert srv.wait_log("key= has no meaning on a route")

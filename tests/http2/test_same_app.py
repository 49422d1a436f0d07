"""The same application over h2 over TLS (ALPN): request API, routing,
bodies, streaming, cookies, redirects, errors (404, 405, 413, 431, 500),
timeouts, filemaps, socketify verbs; and what only HTTP/2 has (split cookie
fields, content-length vs DATA, connection-specific fields dropped, the
access log's stream id) over h2c and TLS (httpx, curl, nghttp, and a raw h2
client where a frame matters).

The HTTP test suite itself (tests/http) runs over HTTP/1.1 and h2c with the
same assertions (tests/http/kh_proto.py); this module adds TLS+ALPN."""

import json
import subprocess

import h2.errors
import httpx
import pytest

from h2client import H2Client
from kore_testing import wait_for

pytestmark = pytest.mark.timeout(60)

PROTOCOLS = ["h2"]          # h1 and h2c: tests/http runs over both
ALL = ["h1", "h2c", "h2"]


@pytest.fixture(scope="module")
def clients(h2srv):
    out = {
        "h1": (httpx.Client(base_url=h2srv.url, http1=True, http2=False, timeout=20), "HTTP/1.1"),
        "h2c": (httpx.Client(base_url=h2srv.url, http1=False, http2=True, timeout=20), "HTTP/2"),
        "h2": (httpx.Client(base_url=h2srv.tls_url, http2=True, verify=False, timeout=20),
               "HTTP/2"),
    }
    yield out
    for c, _ in out.values():
        c.close()


@pytest.fixture(params=PROTOCOLS)
def http(request, clients):
    c, version = clients[request.param]

    def call(method, path, **kw):
        r = c.request(method, path, **kw)
        assert r.http_version == version
        return r
    call.proto = request.param
    return call


def test_index_and_methods(http):
    r = http("GET", "/")
    assert (r.status_code, r.content) == (200, b"hello")
    assert r.headers["server"] == "kore"
    assert "date" in r.headers
    for m in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        assert http(m, "/any").content == m.encode()
    r = http("HEAD", "/")
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == "5"


def test_routing_regex_404_405(http):
    assert http("GET", "/opt/abc/12").json() == ["abc", "/12", "12"]
    r = http("GET", "/nope")
    assert r.status_code == 404
    r = http("POST", "/opt/abc")
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("http", ALL, indirect=True)   # headers_list(): all three
def test_request_getters(http):
    r = http("GET", "/info?q=1&z=2", headers={"X-A": "Value", "User-Agent": "ua/1"})
    d = r.json()
    assert d["host"] == "127.0.0.1:%s" % r.url.port
    assert d["agent"] == "ua/1" and d["x_a"] == "Value"
    assert d["queries"] == {"q": ["1"], "z": ["2"]} and d["q"] == "1"   # socketify: lists
    assert d["path"] == "/info" and d["method"] == 1
    assert d["protocol"] == ("https" if http.proto == "h2" else "http")
    assert d["addr"] == "127.0.0.1" and d["remote"] == "127.0.0.1" and d["fd"]
    assert d["headers"]["x-a"] == "Value"
    assert all(n == n.lower() for n, _ in d["list"])
    assert d["list"][0] == ["host", "127.0.0.1:%s" % r.url.port]


def test_body_echo_and_digest(http):
    body = bytes(range(256)) * 1000
    r = http("POST", "/echo", content=body)
    assert r.status_code == 200 and r.content == body
    assert r.headers["x-len"] == str(len(body))
    r = http("PUT", "/echo", content=b"")
    assert r.status_code == 200 and r.content == b""


def test_params_validators_and_forms(http):
    assert http("GET", "/params?id=12&name=kx").json() == {"id": "12", "name": "kx", "nope": None}
    assert http("GET", "/params?id=ab&name=x").json() == {"id": None, "name": None, "nope": None}
    r = http("POST", "/params", data={"id": "7"})
    assert r.json()["id"] == "7"
    r = http("POST", "/multi", data={"title": "abc"}, files={"upload": ("f.txt", b"filebody")})
    assert r.json() == {"title": "abc", "file": ["f.txt", "filebody"]}


def test_cookies(http):
    r = http("GET", "/cookies", headers={"Cookie": "a=1; b=2"})
    assert r.json()["a"] == "1" and r.json()["b"] == "2"
    sc = r.headers.get_list("set-cookie")
    assert len(sc) == 2 and sc[0].startswith("sid=abc") and sc[1].startswith("two=2")


def test_response_headers(http):
    r = http("GET", "/headers")
    assert r.headers["x-a"] == "1" and r.headers["x-b"] == "2"
    if http.proto != "h1":
        assert "connection" not in r.headers     # connection-specific: dropped on h2


def test_streaming_and_verbs(http):
    assert http("GET", "/stream").content == b"abcdef"
    assert http("GET", "/sfy/write").content == b"I can send messages in parts!"
    r = http("GET", "/sfy/send")
    assert r.json() == {"Hello": "World!"} and r.headers["x-rate-limit-remaining"] == "10"
    r = http("GET", "/sfy/status")
    assert (r.status_code, r.headers["x-y"], r.content) == (201, "z", b"made")
    r = http("GET", "/sfy/cork")
    assert r.content == b"ab" and r.headers["content-type"] == "text/plain"
    assert http("GET", "/sfy/params/3/ab").json() == {"p0": "3", "all": ["3", "ab"]}
    for code in (204, 304):
        r = http("GET", "/status?code=%d" % code)
        assert r.status_code == code and r.content == b""


def test_redirect(http):
    r = http("GET", "/sfy/redirect")
    assert r.status_code == 302 and r.headers["location"] == "/redirected"


def test_filemap(http):
    r = http("GET", "/files/a.txt")
    assert r.status_code == 200 and r.content == b"filedata\n"
    r = http("GET", "/files/a.txt", headers={"Range": "bytes=0-3"})
    assert r.status_code == 206 and r.content == b"file"


def test_auth_403(http):
    assert http("GET", "/auth").status_code == 403
    assert http("GET", "/auth", headers={"x-token": "secret"}).content == b"hello"


def test_500(http):
    r = http("GET", "/boom")
    assert r.status_code == 500


def test_413_body_too_large_tls(h2srv):
    # h1 and h2c (with and without content-length): tests/http test_body_limits.
    # (httpx keeps sending a body the server refused: a raw client reads the
    # 413 and the RST_STREAM(NO_ERROR) that stops the upload, RFC 9113 8.1)
    c = H2Client(h2srv.tls_port, tls=True)
    sid = c.request("/echo", "POST", headers=[("content-length", str((16 << 20) + 1))],
                    end=False)
    assert c.response(sid)[0] == 413
    assert c.until(lambda: sid in c.resets)
    assert c.resets[sid] == h2.errors.ErrorCodes.NO_ERROR
    ok = c.request("/")
    assert c.response(ok)[0] == 200
    c.close()


def test_431_header_too_large(http):
    r = http("GET", "/", headers={"x-big": "v" * 5000})
    assert r.status_code == 431


@pytest.mark.parametrize("http", ALL, indirect=True)
def test_error_mid_stream_ends_the_response(http, clients):
    if http.proto == "h1":
        with pytest.raises(httpx.HTTPError):
            http("GET", "/boom-stream")
        return
    # h2: the stream is reset (INTERNAL_ERROR); the connection goes on
    with pytest.raises(httpx.HTTPError):
        http("GET", "/boom-stream")
    assert http("GET", "/").content == b"hello"


def test_body_timeout_408_tls(h2srv):
    # h1 and h2c: tests/http test_limits_cancel
    c = H2Client(h2srv.tls_port, tls=True)
    sid = c.request("/echo", "POST", headers=[("content-length", "10")], end=False)
    status, _, _ = c.response(sid, timeout=15)
    assert status == 408
    c.close()


def test_split_cookie_fields_are_joined(h2srv):
    c = H2Client(h2srv.port)
    sid = c.request("/cookies", headers=[("cookie", "a=1"), ("cookie", "b=2")])
    status, _, body = c.response(sid)
    assert status == 200
    d = json.loads(body)
    assert (d["a"], d["b"], d["raw"]) == ("1", "2", "a=1; b=2")
    c.close()


def test_content_length_mismatch_is_a_stream_error(h2srv):
    c = H2Client(h2srv.port)
    bad = c.request("/echo", "POST", headers=[("content-length", "5")], body=b"toolong")
    assert c.until(lambda: bad in c.resets)
    assert c.resets[bad] == h2.errors.ErrorCodes.PROTOCOL_ERROR
    short = c.request("/echo", "POST", headers=[("content-length", "9")], body=b"abc")
    assert c.until(lambda: short in c.resets)
    # only the streams: the connection still serves
    ok = c.request("/")
    assert c.response(ok)[0] == 200 and c.goaway is None
    c.close()


def test_upgrade_cannot_switch_protocols_over_h2(h2srv):
    c = H2Client(h2srv.port)
    sid = c.request("/upgrade")
    assert c.response(sid)[0] == 500
    c.close()


def test_access_log_shows_http2_and_stream_id(h2srv, clients):
    clients["h2c"][0].get("/?logme=1")
    assert wait_for(lambda: h2srv.access_log.exists()
                    and "logme=1 HTTP/2.0" in h2srv.access_log.read_text(), 10)
    line = [l for l in h2srv.access_log.read_text().splitlines() if "logme=1" in l][0]
    assert '"GET /?logme=1 HTTP/2.0" 200 5' in line and " stream=" in line


def test_curl_http2(h2srv):
    out = subprocess.run(["curl", "-sk", "--http2", h2srv.tls_url + "/",
                          "-w", " %{http_version}"], capture_output=True, text=True,
                         timeout=20).stdout
    assert out == "hello 2"
    out = subprocess.run(["curl", "-s", "--http2-prior-knowledge", "-d", "abc",
                          h2srv.url + "/echo", "-w", " %{http_version}"],
                         capture_output=True, text=True, timeout=20).stdout
    assert out == "abc 2"


def test_nghttp(h2srv):
    r = subprocess.run(["nghttp", h2srv.url + "/stream"], capture_output=True,
                       text=True, timeout=20)
    assert (r.returncode, r.stdout) == (0, "abcdef")
    r = subprocess.run(["nghttp", "-nv", h2srv.tls_url + "/"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0
    assert "recv (stream_id=13) :status: 200" in r.stdout
    assert "SETTINGS_MAX_CONCURRENT_STREAMS(0x03):100" in r.stdout


@pytest.mark.parametrize("proto", ["h1", "h2"])
def test_wsgi_mount(clients, proto):
    c = httpx.Client(base_url=clients["h2"][0].base_url, http1=proto == "h1",
                     http2=proto == "h2", verify=False, timeout=20)
    with c:
        r = c.post("/wsgi/x/y", content=b"12345", headers={"X-A": "b"})
    assert r.http_version == ("HTTP/2" if proto == "h2" else "HTTP/1.1")
    assert r.json() == {"protocol": "HTTP/2.0" if proto == "h2" else "HTTP/1.1",
                        "path": "/x/y", "scheme": "https", "x_a": "b", "len": 5}

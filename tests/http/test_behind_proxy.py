"""Behind a proxy: X-Forwarded-* and RFC 7239 Forwarded from trusted peers
set the scheme and the client address (req.protocol, the WSGI environ, the
access log); untrusted peers are not believed.  http_pretty_error covers
every error response; requests refused before routing are logged.  The
trusted peer's headers and the pretty errors over HTTP/2 (h2c) too."""

import json
import socket

import pytest

from kh_proto import H2C_ENV, http1_only
from kh_proto import raw as raw_proto
from kore_testing import KoreServer, wait_for

APP = """
import kore

kore.server("default", ip="127.0.0.1", port="1", tls=False)
d = kore.domain("*")

def who(req):
    req.response(200, ("%s %s" % (req.protocol, req.get_proxied_remote_address())).encode())

def wsgi_app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["wsgi.url_scheme"].encode()]

d.route("/who", who, methods=["get"])
d.route("/only-post", who, methods=["post"])
kore.mount("/wsgi", wsgi_app)
"""


def raw(port, data):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                return out
            out += d


def get(port, path, *headers, proto="h1"):
    if proto != "h1":       # the body (what the tests look at the end of)
        fields = [tuple(x.strip() for x in h.split(":", 1)) for h in headers]
        return raw_proto(port, proto, "GET", path, fields).body
    head = "".join(h + "\r\n" for h in headers)
    return raw(port, ("GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n"
                      % (path, head)).encode())


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("proxied")
    logs = tmp / "access.log"
    app = tmp / "app.py"
    app.write_text(APP)
    trusted = KoreServer(tmp, str(app), args=("--access-log", str(logs),
                                              "--access-log-format", "json"),
                         env=dict(H2C_ENV, KORE_HTTP_PRETTY_ERROR="yes"))
    tmp2 = tmp_path_factory.mktemp("untrusted")
    untrusted = KoreServer(tmp2, str(app), args=("--forwarded-allow-ips", "10.0.0.1"))
    try:
        yield trusted, untrusted, logs
    finally:
        trusted.cleanup()
        untrusted.cleanup()


def test_forwarded_headers_from_a_trusted_peer(servers, proto):
    srv, _, logs = servers
    r = get(srv.port, "/who", "X-Forwarded-For: 203.0.113.5", "X-Forwarded-Proto: https",
            proto=proto)
    assert r.endswith(b"https 203.0.113.5")
    r = get(srv.port, "/who", 'Forwarded: for="[2001:db8::7]:1234";proto=https', proto=proto)
    assert r.endswith(b"https 2001:db8::7")
    r = get(srv.port, "/wsgi/", "X-Forwarded-Proto: https", proto=proto)
    assert r.endswith(b"https")
    assert get(srv.port, "/who", proto=proto).endswith(b"http 127.0.0.1")
    version = "1.1" if proto == "h1" else "2.0"
    assert wait_for(lambda: logs.exists() and any(
        "203.0.113.5" in x and json.loads(x)["network.protocol.version"] == version
        for x in logs.read_text().splitlines()))
    rec = [json.loads(x) for x in logs.read_text().splitlines()
           if "203.0.113.5" in x and json.loads(x)["network.protocol.version"] == version][0]
    assert rec["client.address"] == "203.0.113.5" and rec["url.path"] == "/who"


def test_untrusted_peer_is_not_believed(servers):
    _, srv, _ = servers
    r = get(srv.port, "/who", "X-Forwarded-For: 203.0.113.5", "X-Forwarded-Proto: https",
            "Forwarded: for=198.51.100.1;proto=https")
    assert r.endswith(b"http 127.0.0.1")
    assert get(srv.port, "/wsgi/", "X-Forwarded-Proto: https").endswith(b"http")


def test_pretty_errors_on_route_404_and_405(servers, proto):
    srv, _, _ = servers
    if proto != "h1":
        r = raw_proto(srv.port, proto, "GET", "/nothing-here")
        assert r.status == 404 and r.header("content-type").startswith("text/html")
        assert r.body.endswith(b"<h1>404 Not Found</h1></body></html>\n")
        r = raw_proto(srv.port, proto, "GET", "/only-post")
        assert r.status == 405 and r.header("allow") == "POST"
        assert b"<h1>405 Method Not Allowed</h1>" in r.body
        return
    r = get(srv.port, "/nothing-here")
    assert r.startswith(b"HTTP/1.1 404") and b"Content-Type: text/html" in r
    assert r.endswith(b"<h1>404 Not Found</h1></body></html>\n")
    r = get(srv.port, "/only-post")
    assert r.startswith(b"HTTP/1.1 405") and b"Allow: POST" in r
    assert b"<h1>405 Method Not Allowed</h1>" in r


@http1_only         # HTTP/1.1 parse errors (an h2 stream's are test_conformance's)
def test_refused_requests_are_logged(servers):
    srv, _, logs = servers
    assert raw(srv.port, b"GET /x HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400")
    assert raw(srv.port, b"BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 501")
    big = b"GET /big HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 5000 + b"\r\n\r\n"
    assert raw(srv.port, big).startswith(b"HTTP/1.1 431")

    def statuses():
        if not logs.exists():
            return set()
        return {json.loads(x)["http.response.status_code"] for x in logs.read_text().splitlines()}
    assert wait_for(lambda: {400, 501, 431} <= statuses()), logs.read_text()
    recs = [json.loads(x) for x in logs.read_text().splitlines()]
    assert any(r["http.response.status_code"] == 400 and r["url.path"] == "/x"
               and r["http.request.method"] == "GET" for r in recs)

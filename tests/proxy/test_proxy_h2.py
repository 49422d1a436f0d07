"""HTTP/2 clients (kore-plugin-http2) through a proxy mount to HTTP/1.1
upstreams: over TLS (ALPN h2) and h2c by prior knowledge, GET and POST
bodies (streamed and large), streamed responses, many concurrent streams
on one connection, an upstream failure answering 502 on its stream only,
hop-by-hop headers kept out both ways, :authority becoming Host and
X-Forwarded-Host."""

import hashlib
import json
import os
import subprocess
import sys

import pytest

from kore_testing import KoreServer, free_port, wait_port
from px_util import start_upstream

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "http2"))
from h2client import H2Client  # noqa: E402

pytestmark = pytest.mark.timeout(120)

PROXY_APP = '''
import os
import kore

kore.server("tls", ip="127.0.0.1", port=os.environ["TLS_PORT"])
kore.server("clear", ip="127.0.0.1", port=os.environ["PORT"], tls=False)
kore.domain("127.0.0.1", attach="tls", cert=os.environ["CERT"], key=os.environ["KEY"])
kore.domain("*", attach="clear")
A, DEAD = os.environ["UPS"].split(",")
kore.alias("@api", kore.PROTO_HTTP, [A])
kore.alias("@dead", kore.PROTO_HTTP, [DEAD], connect_timeout=1)
for d in ("127.0.0.1", "*"):
    kore.mount("/api", "@api", domain=d)
    kore.mount("/dead", "@dead", domain=d)
'''


@pytest.fixture(scope="module")
def px(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("h2px")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(tmp / "k.pem"), "-out", str(tmp / "c.pem"), "-days",
                    "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    up = start_upstream(tmp_path_factory, "a")
    port, tls_port = free_port(), free_port()
    (tmp / "app.py").write_text(PROXY_APP)
    p = KoreServer(tmp, str(tmp / "app.py"), workers=1, bind=False,
                   args=["--http2-cleartext", "prior-knowledge"],
                   env={"PORT": str(port), "TLS_PORT": str(tls_port),
                        "CERT": str(tmp / "c.pem"), "KEY": str(tmp / "k.pem"),
                        "UPS": "127.0.0.1:%d,127.0.0.1:%d" % (up.port, free_port()),
                        "KORE_HTTP_BODY_MAX": str(64 << 20),
                        "KORE_HTTP_BODY_TIMEOUT": "60"})
    try:
        assert wait_port("127.0.0.1", port, 30, p.proc), p.log()
        assert wait_port("127.0.0.1", tls_port, 30, p.proc), p.log()
        p.port, p.tls_port = port, tls_port
        p.wait_ready(1)
        yield p
    finally:
        p.cleanup()
        up.cleanup()


@pytest.fixture(params=["tls", "h2c"])
def client(request, px):
    c = (H2Client(px.tls_port, tls=True) if request.param == "tls"
         else H2Client(px.port))
    c.scheme = "https" if request.param == "tls" else "http"
    yield c
    c.close()


def seen(body):
    """The upstream's echo: (its JSON, its request headers as a dict)."""
    j = json.loads(body)
    return j, {n.lower(): v for n, v in j["headers"]}


def test_get_headers_both_ways(client):
    sid = client.request("/api/echo?x=1", scheme=client.scheme,
                         headers=[("te", "trailers"), ("x-trace", "t1")])
    status, hs, body = client.response(sid)
    assert status == 200, body
    j, up = seen(body)
    assert j["method"] == "GET" and j["target"] == "/echo?x=1"  # prefix stripped
    # :authority is the Host upstream (preserved) and the X-Forwarded-Host
    assert up["host"] == client.authority
    assert up["x-forwarded-host"] == client.authority
    assert up["x-forwarded-proto"] == client.scheme
    assert up["x-forwarded-for"] == "127.0.0.1"
    assert up["x-trace"] == "t1"
    assert "te" not in up and "connection" not in up
    assert "transfer-encoding" not in up          # a GET without a body
    # the upstream's Connection / Keep-Alive and what Connection named stay behind
    assert hs["x-node"] == "a" and hs["age"] == "7" and hs["vary"] == "Accept-Encoding"
    for name in ("connection", "keep-alive", "x-secret", "transfer-encoding"):
        assert name not in hs, (name, hs)


def test_post_bodies(client):
    body = os.urandom(2 << 20)
    digest = hashlib.sha256(body).hexdigest()
    # with a content-length, then streamed without one (chunked upstream)
    for headers in ([("content-length", str(len(body)))], []):
        sid = client.request("/api/upload", method="POST", headers=headers, body=body,
                             scheme=client.scheme)
        status, hs, got = client.response(sid, timeout=60)
        assert status == 200, got
        j = json.loads(got)
        assert (j["size"], j["sha256"]) == (len(body), digest)
    # a small body is replayable: the echo sees it whole
    sid = client.request("/api/echo", method="POST", body=b"hello h2",
                         headers=[("content-length", "8")], scheme=client.scheme)
    status, _, got = client.response(sid)
    j, up = seen(got)
    assert status == 200 and j["size"] == 8 and up["content-length"] == "8"


def test_streamed_response(client):
    n = 8 << 20
    sid = client.request("/api/big?n=%d" % n, scheme=client.scheme)
    status, hs, body = client.response(sid, timeout=60)
    assert status == 200 and len(body) == n and body[:3] == b"xxx"
    # streamed: many DATA frames, no chunked framing leaked into the body
    assert sum(1 for s, _ in client.data_frames if s == sid) > 50


def test_concurrent_streams_and_a_failing_one(client):
    sids = [client.request("/api/c/%d" % i, scheme=client.scheme) for i in range(40)]
    bad = client.request("/dead/x", scheme=client.scheme)
    more = [client.request("/api/d/%d" % i, scheme=client.scheme) for i in range(10)]
    status, _, body = client.response(bad, timeout=30)
    assert status == 502 and body.startswith(b"502 Bad Gateway")
    for i, sid in enumerate(sids):
        status, _, body = client.response(sid, timeout=30)
        assert status == 200 and json.loads(body)["target"] == "/c/%d" % i
    for i, sid in enumerate(more):
        status, _, body = client.response(sid, timeout=30)
        assert status == 200 and json.loads(body)["target"] == "/d/%d" % i
    assert not client.resets and client.goaway is None and not client.closed
    # the connection goes on after the 502
    sid = client.request("/api/after", scheme=client.scheme)
    assert client.response(sid)[0] == 200

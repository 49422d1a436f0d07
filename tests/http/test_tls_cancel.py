"""Handler cancellation on TLS connections: a client that goes away (with a
close_notify or without) cancels its suspended handler, as on plain TCP;
bytes that arrive while a handler runs (a pipelined request) are kept."""

import os
import socket
import ssl
import subprocess
import time

import pytest

from kh_util import wait_for
from kore_testing import file_text

pytestmark = pytest.mark.timeout(60)

APP = """
import os, kore, gevent

kore.server("default", ip="127.0.0.1", port=os.environ["PORT"])
d = kore.domain("*", cert=os.environ["CERT"], key=os.environ["KEY"])


def _mark(path, text):
    with open(path, "w") as f:
        f.write(text)


async def hang(req):
    marker = req.get_query("marker")
    req.on_aborted(lambda r: _mark(marker + ".aborted", "aborted=%s" % r.aborted))
    _mark(marker + ".started", "")
    try:
        await kore.suspend(30000)
        req.response(200, b"done")
    finally:
        _mark(marker, "finally")


def hang_sync(req):
    marker = req.get_query("marker")
    _mark(marker + ".started", "")
    try:
        gevent.sleep(30)
        req.response(200, b"done")
    finally:
        _mark(marker, "finally")


async def slow(req):
    if req.get_query("started"):
        _mark(req.get_query("started"), "")
    await kore.suspend(int(req.get_query("ms")))
    req.response(200, b"slow")


def index(req):
    req.response(200, b"hello " + req.path.encode())


d.route("/hang", hang)
d.route("/hang-sync", hang_sync)
d.route("/slow", slow)
d.route("^/x/", index)
"""


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tlscert")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost"],
                   cwd=d, check=True, capture_output=True, timeout=60)
    return d


@pytest.fixture
def server(kore_server, cert):
    # port 0: the kernel picks the port and the log names it (no race for
    # a "free" one)
    srv = kore_server(APP, bind=False, env={"PORT": "0",
                                            "CERT": str(cert / "cert.pem"),
                                            "KEY": str(cert / "key.pem")})
    srv.port = srv.listen_port()
    return srv


def _tls(port):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def _read_responses(s, n):
    data = b""
    deadline = time.monotonic() + 10
    while data.count(b"HTTP/1.1 ") < n or not data.endswith((b"slow", b"/x/1", b"/x/2")):
        assert time.monotonic() < deadline, data
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("route", ["hang", "hang-sync"])
@pytest.mark.parametrize("how", ["close_notify", "abrupt"])
def test_tls_disconnect_cancels_suspended_handler(server, tmp_path, route, how):
    marker = str(tmp_path / ("m-%s-%s" % (route, how)))
    s = _tls(server.port)
    s.sendall(b"GET /%s?marker=%s HTTP/1.1\r\nHost: localhost\r\n\r\n"
              % (route.encode(), marker.encode()))
    assert wait_for(lambda: os.path.exists(marker + ".started"), 5)   # it is suspended
    assert not os.path.exists(marker)
    if how == "close_notify":
        try:
            s.unwrap()            # sends close_notify; the server just closes
        except (ssl.SSLError, OSError):
            pass
        s.close()
    else:
        s.close()                 # no close_notify: FIN only
    assert wait_for(lambda: file_text(marker) == "finally", 5), (file_text(marker), server.log())
    if route == "hang":
        assert wait_for(lambda: file_text(marker + ".aborted") == "aborted=True", 5), \
            file_text(marker + ".aborted")
    # the worker keeps serving TLS clients
    s = _tls(server.port)
    s.sendall(b"GET /x/1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert _read_responses(s, 1).endswith(b"hello /x/1")
    s.close()


def test_tls_request_pipelined_during_handler_is_kept(server, tmp_path):
    started = tmp_path / "started"
    s = _tls(server.port)
    s.sendall(b"GET /slow?ms=600&started=%s HTTP/1.1\r\nHost: localhost\r\n\r\n"
              % str(started).encode())
    assert wait_for(started.exists, 5)      # the handler is suspended now
    s.sendall(b"GET /x/1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    time.sleep(0.1)               # (two separate arrivals while it runs)
    s.sendall(b"GET /x/2 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    data = _read_responses(s, 3)
    assert data.count(b"HTTP/1.1 200 OK") == 3
    assert data.index(b"slow") < data.index(b"hello /x/1") < data.index(b"hello /x/2")
    # the connection is still usable
    s.sendall(b"GET /slow?ms=1 HTTP/1.1\r\nHost: localhost\r\n\r\n")
    assert _read_responses(s, 1).endswith(b"slow")
    s.close()

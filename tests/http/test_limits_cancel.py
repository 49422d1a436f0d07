"""Timeouts, request limits, graceful behaviour and handler cancellation;
the body timeout, the request limit and cancellation also over HTTP/2 (h2c:
a client's RST_STREAM cancels that stream's handler only)."""

import os
import socket
import time

import pytest

from kh_proto import H2C_ENV, H2Client, Session, http1_only
from kh_util import start_module_server
from kh_util import Conn, request, wait_for
from kore_testing import accepted, file_text, refuses

SHORT = {"KORE_HTTP_HEADER_TIMEOUT": "1", "KORE_HTTP_BODY_TIMEOUT": "1",
         "KORE_HTTP_KEEPALIVE_TIME": "2", "KORE_HTTP_REQUEST_LIMIT": "2"}


@pytest.fixture(scope="module")
def short(tmp_path_factory):
    srv = start_module_server(tmp_path_factory, "main_app.py", env=dict(SHORT, **H2C_ENV))
    yield srv
    srv.cleanup()


@http1_only
def test_header_timeout_408_on_idle_worker(short):
    c = Conn(short.port)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n")        # never finished
    t0 = time.monotonic()
    r = c.read_response()
    assert r.status == 408 and 0.8 < time.monotonic() - t0 < 4
    assert c.closed()


@http1_only
def test_no_bytes_at_all_closes_after_keepalive(short):
    c = Conn(short.port)
    t0 = time.monotonic()
    assert c.closed(wait=6)
    assert 1.5 < time.monotonic() - t0 < 5


@http1_only
def test_idle_keepalive_closed_silently(short):
    c = Conn(short.port)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.read_response().status == 200
    t0 = time.monotonic()
    assert c.read_response() is None           # closed, no 408 on an idle connection
    assert 1.5 < time.monotonic() - t0 < 5


def test_body_timeout_408(short, proto):
    if proto == "h1":
        c = Conn(short.port)
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
        r = c.read_response()
    else:
        c = Session(short.port, proto)
        r = c.send("POST", "/echo", [("Content-Length", "10")], body=b"abc", length=False,
                   end=False)
    assert r.status == 408
    if proto == "h1":
        assert c.closed()
    else:                   # the stream ends, the connection serves the next one
        assert c.conn.until(lambda: 1 in c.conn.resets) and c.conn.resets == {1: 0}
        assert c.send("GET", "/").body == b"hello"
        c.close()


def test_request_limit_503(short, proto, tmp_path):
    started = [tmp_path / ("started-%d" % i) for i in range(2)]
    targets = ["/slow?ms=1500&started=%s" % p for p in started]
    if proto == "h1":
        slow = [Conn(short.port) for _ in range(2)]
        for c, target in zip(slow, targets):
            c.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target.encode())
    else:                   # two streams of one connection: every stream counts
        h2c = H2Client(short.port)
        sids = [h2c.request(target) for target in targets]
    # both handlers run: the limit (2) is reached
    assert wait_for(lambda: all(p.exists() for p in started), 5)
    with Session(short.port, proto) as s:
        r = s.send("GET", "/")
        assert r.status == 503
        if proto == "h1":
            assert s.closed()
    if proto == "h1":
        for c in slow:
            assert c.read_response().body == b"slow"
    else:
        for sid in sids:
            assert h2c.response(sid)[2] == b"slow"
        h2c.close()
    with Session(short.port, proto) as s:
        r = s.send("GET", "/")
    assert r.status == 200


@http1_only
def test_slowloris_does_not_block_others(short):
    lazies = []
    for _ in range(20):
        c = Conn(short.port)
        c.send(b"GET / HTTP/1.1\r\n")
        lazies.append(c)
    r, _ = request(short.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert r.status == 200
    for c in lazies:
        c.close()


@pytest.mark.parametrize("route", ["hang", "hang-sync"])
def test_disconnect_cancels_suspended_handler(main_server, tmp_path, route, proto):
    marker = str(tmp_path / ("m-" + route))
    target = "/%s?marker=%s" % (route, marker)
    target += "&started=%s.started" % marker
    if proto == "h1":
        c = Conn(main_server.port)
        c.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target.encode())
    else:
        c = H2Client(main_server.port)
        sid = c.request(target)
    assert wait_for(lambda: os.path.exists(marker + ".started"), 5)   # it is suspended
    assert not os.path.exists(marker)
    if proto == "h1":
        c.sock.shutdown(socket.SHUT_WR)
        c.close()
    else:                   # RST_STREAM(CANCEL): the stream only
        c.reset(sid, 8)
    assert wait_for(lambda: file_text(marker) == "finally", 5), (file_text(marker))
    if route == "hang":
        assert wait_for(lambda: file_text(marker + ".aborted") == "aborted=True", 5), \
            file_text(marker + ".aborted")
    if proto != "h1":       # the connection goes on serving
        ok = c.request("/")
        assert c.response(ok)[2] == b"hello" and c.goaway is None
        c.close()
    with Session(main_server.port, proto) as s:
        r = s.send("GET", "/")
    assert r.status == 200


def test_graceful_stop_finishes_inflight_request(tmp_path, kore_server):
    import signal
    srv = kore_server(os.path.join(os.path.dirname(__file__), "apps", "main_app.py"))
    idle = Conn(srv.port)
    idle.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert idle.read_response().status == 200
    started = tmp_path / "started"
    c = Conn(srv.port)
    c.send(b"GET /slow?ms=800&started=%s HTTP/1.1\r\nHost: x\r\n\r\n"
           % str(started).encode())
    assert wait_for(started.exists, 5)         # in flight
    srv.proc.send_signal(signal.SIGTERM)
    r = c.read_response()
    assert r.status == 200 and r.body == b"slow"
    assert r.header("connection") == "close"
    assert idle.closed(wait=3)
    assert srv.proc.wait(15) == 0


def test_graceful_stop_serves_a_connection_accepted_without_a_request_yet(kore_server):
    """A client that connected just before the stop began (no request sent
    yet) still gets its response; one that never sends is closed after a
    short grace, not after the keep-alive time."""
    import signal
    srv = kore_server(os.path.join(os.path.dirname(__file__), "apps", "main_app.py"))
    srv.wait_ready(1)
    fresh = Conn(srv.port)
    silent = Conn(srv.port)
    assert wait_for(lambda: accepted(fresh.sock) and accepted(silent.sock), 5)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    # the stop began: the worker no longer listens
    assert srv.wait_log("TERM received")
    assert wait_for(lambda: refuses(srv.host, srv.port), 5)
    fresh.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    r = fresh.read_response()
    assert r is not None and r.status == 200, srv.log()
    assert r.header("connection") == "close"
    assert silent.closed(wait=6)
    assert srv.proc.wait(15) == 0
    # the silent one waited the short grace (2 s), not the keep-alive time (20 s)
    assert time.monotonic() - t0 < 12

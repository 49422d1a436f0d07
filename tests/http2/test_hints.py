"""req.hint_promise(uri): PUSH_PROMISE when the client enabled push, else
103 Early Hints with Link: <uri>; rel=preload (over HTTP/1.1 too)."""

import socket

import pytest
from h2.settings import SettingCodes as SC

from h2client import H2Client

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("tls", [False, True])
def test_push_promise_when_the_client_enables_push(h2srv, tls):
    c = H2Client(h2srv.tls_port if tls else h2srv.port, tls=tls,
                 settings={SC.ENABLE_PUSH: 1})
    sid = c.request("/hint")
    status, _, body = c.response(sid)
    assert (status, body) == (200, b"push")
    assert c.until(lambda: c.pushed, 5)
    pid, hs = next(iter(c.pushed.items()))
    assert pid % 2 == 0 and (b":path", b"/files/a.txt") in hs
    st, _, pbody = c.response(pid)
    assert (st, pbody) == (200, b"filedata\n")
    c.close()


def test_early_hints_when_push_is_off(h2srv):
    c = H2Client(h2srv.port, settings={SC.ENABLE_PUSH: 0})
    sid = c.request("/hint")
    status, _, body = c.response(sid)
    assert (status, body) == (200, b"early-hints")
    info = c.responses[sid]["informational"]
    assert len(info) == 1
    assert (b":status", b"103") in info[0]
    assert (b"link", b"</files/a.txt>; rel=preload") in info[0]
    assert not c.pushed
    c.close()


def test_early_hints_over_http11(h2srv):
    with socket.create_connection(("127.0.0.1", h2srv.port), timeout=10) as s:
        s.sendall(b"GET /hint HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
    assert out.startswith(b"HTTP/1.1 103 Early Hints\r\nlink: </files/a.txt>; rel=preload\r\n\r\n"
                          b"HTTP/1.1 200 OK\r\n"), out
    assert out.endswith(b"early-hints")

"""The proxy's HTTP/1.1 client parser against h11 on the same responses
(fed whole and one byte at a time), and what it refuses."""

import h11
import pytest

from kore_proxy import h1client as hc

OK = [
    ("length", "GET", b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n\r\nhello"),
    ("chunked", "GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: x\r\n\r\n"),
    ("head", "HEAD", b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n"),
    ("no-content", "GET", b"HTTP/1.1 204 No Content\r\n\r\n"),
    ("not-modified", "GET", b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n"),
    ("close-delimited", "GET", b"HTTP/1.1 200 OK\r\n\r\nuntil the end"),
    ("http10", "GET", b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nhi"),
    ("connection-close", "GET", b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nhi"),
    ("continue-first", "POST", b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\n"
     b"Content-Length: 1\r\n\r\nx"),
    ("same-lengths", "GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\nhi"),
    ("empty-reason", "GET", b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"),
]

BAD = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nhi",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX A: 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-A : 1\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nX-A: a\rb\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
    b"HTTP/2.0 200 OK\r\n\r\n",
    b"HTTP/1.1 20 OK\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
]


def run(conn_mod, method, data, step):
    if conn_mod is h11:
        c = h11.Connection(h11.CLIENT)
        hdrs = [("host", "x")]
        if method == "POST":
            hdrs.append(("content-length", "0"))
        c.send(h11.Request(method=method, target="/", headers=hdrs))
        c.send(h11.EndOfMessage())
    else:
        c = hc.Connection()
        hdrs = [("host", "x")] + ([("content-length", "0")] if method == "POST" else [])
        c.send(hc.Request(method=method, target="/", headers=hdrs))
        c.send(hc.EndOfMessage())
    out = []
    pieces = [data[i:i + step] for i in range(0, len(data), step)] + [b""]
    for piece in pieces:
        c.receive_data(piece)
        while True:
            ev = c.next_event()
            if ev is conn_mod.NEED_DATA or ev is getattr(conn_mod, "PAUSED", None):
                break
            name = type(ev).__name__
            if name in ("Response", "InformationalResponse"):
                out.append((name, ev.status_code,
                            [(bytes(n), bytes(v)) for n, v in ev.headers]))
            elif name == "Data":
                if out and out[-1][0] == "Data":
                    out[-1] = ("Data", out[-1][1] + bytes(ev.data))
                else:
                    out.append(("Data", bytes(ev.data)))
            elif name == "EndOfMessage":
                out.append(("End",))
                return out, c
            elif name == "ConnectionClosed":
                return out, c
    return out, c


@pytest.mark.parametrize("name,method,data", OK, ids=[x[0] for x in OK])
@pytest.mark.parametrize("step", [1, 7, 100000])
def test_same_events_as_h11(name, method, data, step):
    mine, c = run(hc, method, data, step)
    theirs, _ = run(h11, method, data, step)
    assert mine == theirs
    reusable = c.our_state is hc.DONE and c.their_state is hc.DONE
    assert reusable == (name not in ("close-delimited", "http10", "connection-close"))


@pytest.mark.parametrize("data", BAD)
def test_refused(data):
    with pytest.raises(hc.RemoteProtocolError):
        run(hc, "GET", data, 100000)


def test_request_framing():
    c = hc.Connection()
    head = c.send(hc.Request(method="POST", target="/u?x=1",
                             headers=[("Host", "a"), ("Transfer-Encoding", "chunked")]))
    assert head == b"POST /u?x=1 HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    assert c.send(hc.Data(data=b"abc")) == b"3\r\nabc\r\n"
    assert c.send(hc.EndOfMessage()) == b"0\r\n\r\n"
    c = hc.Connection()
    c.send(hc.Request(method="PUT", target="/", headers=[("Host", "a"),
                                                         ("Content-Length", "2")]))
    with pytest.raises(hc.LocalProtocolError):
        c.send(hc.Data(data=b"abc"))
    with pytest.raises(hc.LocalProtocolError):
        hc.Connection().send(hc.Request(method="GET", target="/",
                                        headers=[("X", "a\r\nInjected: 1")]))

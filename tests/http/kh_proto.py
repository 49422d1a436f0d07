"""One test, two protocols: the same assertions over HTTP/1.1 and over HTTP/2
(h2c by prior knowledge, from a trusted loopback peer, on the same port).

A module opts in by starting its server with ``H2C_ENV`` and taking the
``proto`` fixture (tests/http/conftest.py: module-scoped, so pytest runs the
module's tests once per protocol against one server). ``client()`` is an
httpx client that fails a test whose response came over the other protocol;
``Session`` is one connection whose ``send()`` makes a request with exact
header fields (HTTP/1.1 bytes, or a raw h2 client's HEADERS/DATA frames) and
returns a kh_util.Response; ``raw()`` is one such request on a new
connection.  Without kore-plugin-http2 installed the h2c runs are skipped.
Tests that are about HTTP/1.1 itself (framing, pipelining, chunked coding,
keep-alive, Expect, smuggling, Upgrade) stay HTTP/1.1 only and carry the
``http1_only`` mark.
"""

import importlib.util
import os
import sys

import h2.exceptions
import httpx
import pytest

from kh_util import Conn, Response

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "http2"))

from h2client import H2Client  # noqa: E402,F401 (tests import it from here)

PROTOCOLS = ("h1", "h2c")
HAVE_HTTP2 = importlib.util.find_spec("kore_http2") is not None
# what a test that starts its own server loops over
SERVED = PROTOCOLS if HAVE_HTTP2 else ("h1",)
# h2c by prior knowledge from peers in http_forwarded_allow_ips (loopback by
# default): the port keeps serving HTTP/1.1 to everyone
H2C_ENV = {"KORE_HTTP2_CLEARTEXT": "prior-knowledge"} if HAVE_HTTP2 else {}
VERSION = {"h1": "HTTP/1.1", "h2c": "HTTP/2"}
http1_only = pytest.mark.http1_only


def client(base_url, proto, **kw):
    """An httpx.Client speaking ``proto`` only; every response is checked to
    have come over it."""
    want = VERSION[proto]

    def check(r):
        assert r.http_version == want, (r.http_version, want)

    kw.setdefault("timeout", 10)
    return httpx.Client(base_url=base_url, http1=proto == "h1", http2=proto != "h1",
                        event_hooks={"response": [check]}, **kw)


class Session:
    """One connection of ``proto``; ``send()`` is one request on it (the next
    HTTP/1.1 request, or a new HTTP/2 stream) -> kh_util.Response, with
    exactly the header fields given (no Host over HTTP/2: :authority is the
    host). ``length=False`` sends a body without content-length (chunked
    over HTTP/1.1, plain DATA frames over HTTP/2); ``end=False`` sends the
    head (and body) and leaves the request unfinished."""

    def __init__(self, port, proto, timeout=10.0):
        self.proto = proto
        self.timeout = timeout
        if proto == "h1":
            self.conn = Conn(port, timeout=timeout)
        else:
            self.conn = H2Client(port, timeout=timeout)

    def send(self, method, target, headers=(), body=None, length=True, end=True):
        if self.proto == "h1":
            return self._send1(method, target, headers, body, length, end)
        return self._send2(method, target, headers, body, length, end)

    def _send1(self, method, target, headers, body, length, end):
        head = "%s %s HTTP/1.1\r\nHost: x\r\n" % (method, target)
        for n, v in headers:
            head += "%s: %s\r\n" % (n, v)
        data = b""
        if body is not None and length:
            head += "Content-Length: %d\r\n" % len(body)
            data = body
        elif body is not None:
            head += "Transfer-Encoding: chunked\r\n"
            data = (b"%x\r\n%s\r\n" % (len(body), body) if body else b"") + \
                (b"0\r\n\r\n" if end else b"")
        self.conn.send(head.encode("latin-1") + b"\r\n" + data)
        return self.conn.read_response(head_only=method == "HEAD")

    def _send2(self, method, target, headers, body, length, end):
        c = self.conn
        hs = [(n.lower(), v) for n, v in headers]
        if body is not None and length:
            hs.append(("content-length", str(len(body))))
        sid = c.request(target, method, headers=hs, end=end and body is None)
        if body is not None:
            try:
                c.send_body(sid, body, end=end)
            except h2.exceptions.StreamClosedError:
                pass            # the server answered and stopped the upload
        c.response(sid, timeout=self.timeout)
        r = c.responses[sid]
        if not r["headers"]:
            raise AssertionError("stream %d reset (%r) without a response"
                                 % (sid, c.resets.get(sid)))
        fields = [(n.decode(), v.decode("latin-1")) for n, v in r["headers"]]
        status = int(dict(fields)[":status"])
        rest = [(n, v) for n, v in fields if not n.startswith(":")]
        head = "\r\n".join("%s: %s" % f for f in rest).encode("latin-1")
        return Response(status, "", rest, bytes(r["data"]), head)

    def closed(self, wait=2.0):
        """HTTP/1.1: the server closed the connection; HTTP/2: it ended the
        connection (GOAWAY or close)."""
        if self.proto == "h1":
            return self.conn.closed(wait)
        c = self.conn
        c.until(lambda: c.goaway is not None or c.closed, timeout=wait)
        return c.goaway is not None or c.closed

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def raw(port, proto, method, target, headers=(), body=None, timeout=10.0, **kw):
    """One request on a new connection (Session.send)."""
    with Session(port, proto, timeout) as s:
        return s.send(method, target, headers, body, **kw)

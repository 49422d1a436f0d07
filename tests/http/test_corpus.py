"""A corpus of raw requests, valid and invalid, with the expected status and
whether the server must close the connection afterwards (framing errors)."""

import pytest

from kh_util import Conn, request

H = b"Host: x\r\n"

# (id, raw request, expected status, closed after?)
CORPUS = [
    ("plain", b"GET / HTTP/1.1\r\n" + H + b"\r\n", 200, False),
    ("lf-only", b"GET / HTTP/1.1\nHost: x\n\n", 200, False),
    ("mixed-line-endings", b"GET / HTTP/1.1\r\nHost: x\n\r\n", 200, False),
    ("query", b"GET /?a=1 HTTP/1.1\r\n" + H + b"\r\n", 200, False),
    ("empty-header-value", b"GET / HTTP/1.1\r\n" + H + b"X-E:\r\n\r\n", 200, False),
    ("header-no-space", b"GET / HTTP/1.1\r\nHost:x\r\n\r\n", 200, False),
    ("tab-in-value", b"GET / HTTP/1.1\r\n" + H + b"X-T: a\tb\r\n\r\n", 200, False),
    ("obs-text-value", b"GET / HTTP/1.1\r\n" + H + b"X-T: caf\xe9\r\n\r\n", 200, False),
    ("http10-no-host", b"GET / HTTP/1.0\r\n\r\n", 200, True),
    ("cl-identical-list", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 3, 3\r\n\r\nabc", 200, False),
    ("cl-duplicate-same", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 200, False),
    ("delete-no-body", b"DELETE /any HTTP/1.1\r\n" + H + b"\r\n", 200, False),
    ("post-no-length", b"POST /echo HTTP/1.1\r\n" + H + b"\r\n", 200, False),
    ("chunked-upper-hex", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nA\r\n0123456789\r\n0\r\n\r\n", 200, False),
    ("te-case", b"POST /echo HTTP/1.1\r\n" + H + b"transfer-encoding: Chunked\r\n\r\n1\r\na\r\n0\r\n\r\n", 200, False),
    ("options-star", b"OPTIONS * HTTP/1.1\r\n" + H + b"\r\n", 404, False),
    # request line
    ("two-tokens", b"GET /\r\n" + H + b"\r\n", 400, True),
    ("leading-space", b" GET / HTTP/1.1\r\n" + H + b"\r\n", 400, True),
    ("double-space", b"GET  / HTTP/1.1\r\n" + H + b"\r\n", 400, True),
    ("lowercase-method", b"get / HTTP/1.1\r\n" + H + b"\r\n", 501, True),
    ("unknown-method", b"FOO / HTTP/1.1\r\n" + H + b"\r\n", 501, True),
    ("bad-method-char", b"G(T / HTTP/1.1\r\n" + H + b"\r\n", 400, True),
    ("http2", b"GET / HTTP/2.0\r\n" + H + b"\r\n", 505, True),
    ("http09ish", b"GET / HTTP/0.9\r\n" + H + b"\r\n", 505, True),
    ("bad-version", b"GET / HTTX/1.1\r\n" + H + b"\r\n", 400, True),
    ("nul-in-target", b"GET /\x00 HTTP/1.1\r\n" + H + b"\r\n", 400, True),
    ("non-ascii-target", b"GET /\xe9 HTTP/1.1\r\n" + H + b"\r\n", 400, True),
    ("relative-target", b"GET foo HTTP/1.1\r\n" + H + b"\r\n", 400, True),
    # fields
    ("no-host-11", b"GET / HTTP/1.1\r\n\r\n", 400, True),
    ("empty-host", b"GET / HTTP/1.1\r\nHost:\r\n\r\n", 400, True),
    ("two-hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, True),
    ("no-colon", b"GET / HTTP/1.1\r\n" + H + b"NoColon\r\n\r\n", 400, True),
    ("space-before-colon", b"GET / HTTP/1.1\r\n" + H + b"X-A : 1\r\n\r\n", 400, True),
    ("obs-fold", b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r\n  continued\r\n\r\n", 400, True),
    ("obs-fold-tab", b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r\n\tcontinued\r\n\r\n", 400, True),
    ("bare-cr-value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", 400, True),
    ("bare-cr-line", b"GET / HTTP/1.1\r" + H + b"\r\n", 400, True),
    ("nul-in-value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", 400, True),
    ("ctl-in-value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n", 400, True),
    ("del-in-value", b"GET / HTTP/1.1\r\n" + H + b"X-A: a\x7fb\r\n\r\n", 400, True),
    ("nul-in-name", b"GET / HTTP/1.1\r\n" + H + b"X\x00A: 1\r\n\r\n", 400, True),
    ("empty-name", b"GET / HTTP/1.1\r\n" + H + b": 1\r\n\r\n", 400, True),
    ("expect-other", b"GET / HTTP/1.1\r\n" + H + b"Expect: 200-ok\r\n\r\n", 417, True),
    # smuggling shapes
    ("cl-and-te", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, True),
    ("te-and-cl", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n0\r\n\r\n", 400, True),
    ("cl-differ", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", 400, True),
    ("cl-list-differ", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 3, 4\r\n\r\nabcd", 400, True),
    ("cl-negative", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400, True),
    ("cl-plus", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: +3\r\n\r\nabc", 400, True),
    ("cl-hex", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 0x3\r\n\r\nabc", 400, True),
    ("cl-alpha", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: abc\r\n\r\n", 400, True),
    ("cl-empty", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length:\r\n\r\n", 400, True),
    ("cl-unicode-digit", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: \xd9\xa3\r\n\r\n", 400, True),
    ("te-gzip-only", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip\r\n\r\n", 400, True),
    ("te-chunked-then-gzip", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, gzip\r\n\r\n", 400, True),
    ("te-gzip-chunked", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501, True),
    ("te-double-chunked", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 501, True),
    ("te-garbage", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: xchunked\r\n\r\n", 400, True),
    ("te-http10", b"POST /echo HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, True),
    ("te-space-name", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding : chunked\r\n\r\n0\r\n\r\n", 400, True),
    ("chunk-size-bad", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400, True),
    ("chunk-size-negative", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n", 400, True),
    ("chunk-size-huge", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nx\r\n0\r\n\r\n", 400, True),
    ("chunk-size-space-prefix", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n", 400, True),
    ("chunk-missing-crlf", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\r\nhelloX\r\n0\r\n\r\n", 400, True),
    ("chunk-lf-only", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400, True),
    ("chunk-bare-cr-ext", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n", 400, True),
    ("trailer-obs-fold", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n0\r\nA: b\r\n c\r\n\r\n", 400, True),
]


@pytest.mark.parametrize("raw,status,closed", [c[1:] for c in CORPUS], ids=[c[0] for c in CORPUS])
def test_corpus(main_server, raw, status, closed):
    r, was_closed = request(main_server.port, raw)
    assert r is not None, "no response"
    assert r.status == status, r
    assert was_closed == closed
    if closed:
        assert r.header("connection") == "close"


def test_smuggled_request_never_runs(main_server):
    # CL.TE: a front end honouring CL would forward the "smuggled" request
    c = Conn(main_server.port)
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
    r = c.read_response()
    assert r.status == 400
    assert c.read_response() is None
    c.close()

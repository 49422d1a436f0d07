"""kore_http.parser in process: parse_request, split_fields, framing and
diagnose over the request corpus and edge cases."""

import pytest

from kore_http.h1.chunked import ChunkedDecoder
from kore_http.parser import (HttpError, METHODS, diagnose, framing, parse_request,
                              special_fields, split_fields)
from test_corpus import CORPUS

H = b"Host: x\r\n"

# corpus cases the connection refuses after the parser accepted the head
# (the Host rules, the target's form, Expect) or routes it
CONNECTION_CHECKS = {"relative-target", "no-host-11", "empty-host", "two-hosts",
                     "expect-other", "options-star"}  # options-star: 404 from the router


def outcome(raw):
    """The status the parser, framing and chunked decoder give ``raw``
    (200 when they accept it)."""
    try:
        r = parse_request(raw, 0)
        assert r is not None, "incomplete"
        method, target, http11, fields, nxt, special = r
        assert special == special_fields(fields)
        length, chunked = framing(split_fields(fields), http11)
        if chunked:
            dec = ChunkedDecoder(1 << 20, 4096)
            dec.feed(raw[nxt:])
            assert dec.done
    except HttpError as exc:
        return exc.status
    return 200


@pytest.mark.parametrize("raw,status", [(c[1], c[2]) for c in CORPUS],
                         ids=[c[0] for c in CORPUS])
def test_corpus_in_process(request, raw, status):
    cid = request.node.callspec.id
    got = outcome(raw)
    if cid in CONNECTION_CHECKS:
        assert got == 200
    elif status >= 400:
        assert got == status
    else:
        assert got == 200


def test_parse_result():
    raw = b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nX-A:  v  \r\nContent-Length: 3\r\n\r\nabcGET"
    method, target, http11, fields, nxt, special = parse_request(raw, 0)
    assert (method, target, http11) == ("POST", "/a?b=1", True)
    assert special == [(b"Host", b"x"), (b"Content-Length", b"3")]
    assert fields == b"Host: x\r\nX-A:  v  \r\nContent-Length: 3\r\n"
    assert raw[nxt:] == b"abcGET"
    assert split_fields(fields) == [("host", "x"), ("x-a", "v"), ("content-length", "3")]


def test_parse_at_offset_pipelined():
    one = b"GET /1 HTTP/1.1\r\n" + H + b"\r\n"
    two = b"GET /2 HTTP/1.0\r\n\r\n"
    buf = one + two
    r1 = parse_request(buf, 0)
    assert r1[1] == "/1" and r1[4] == len(one)
    r2 = parse_request(buf, r1[4])
    assert r2[:4] == ("GET", "/2", False, b"") and r2[4] == len(buf)


def test_incomplete_head_is_none():
    full = b"GET / HTTP/1.1\r\n" + H + b"X-A: 1\r\n\r\n"
    for i in range(len(full)):
        assert parse_request(full[:i], 0) is None, full[:i]
    assert parse_request(full, 0) is not None


def test_lf_only_and_mixed():
    for raw in (b"GET / HTTP/1.1\nHost: x\n\nrest", b"GET / HTTP/1.1\r\nHost: x\n\r\nrest",
                b"GET / HTTP/1.1\nHost: x\r\n\nrest"):
        method, target, http11, fields, nxt, special = parse_request(raw, 0)
        assert split_fields(fields) == [("host", "x")]
        assert special == [(b"Host", b"x")]
        assert raw[nxt:] == b"rest"


def test_every_method():
    for m in METHODS:
        assert parse_request(m.encode() + b" / HTTP/1.1\r\n" + H + b"\r\n", 0)[0] == m
    # CONNECT and TRACE pass the parser too (the router decides)
    assert parse_request(b"CONNECT x:443 HTTP/1.1\r\n" + H + b"\r\n", 0)[1] == "x:443"


@pytest.mark.parametrize("raw,status", [
    (b"GET / HTTP/1.2\r\n" + H + b"\r\n", 505),
    (b"GET / HTTP/3.0\r\n" + H + b"\r\n", 505),
    (b"GET / HTTP/1.1\r\n" + H + b"X\x7fY: 1\r\n\r\n", 400),
    (b"GET / HTTP/1.1 \r\n" + H + b"\r\n", 400),
    (b"GET\t/ HTTP/1.1\r\n" + H + b"\r\n", 400),
    (b"GET / HTTP/1.1\r\n" + H + b"X-A: \xff\x00\r\n\r\n", 400),
    (b"GET / HTTP/1.1\nHost: x\rX: 1\n\n", 400),
    (b"PURGE / HTTP/1.1\r\n" + H + b"\r\n", 501),
    (b"PURGE / HTTP/1.1\nHost: x\n\n", 501),            # slow path too
    (b"GET / HTTP/2.0\nHost: x\n\n", 505),
    (b"GET / HTTP/1.1\n" + b"X: 1\n a\n\n", 400),
])
def test_rejected(raw, status):
    with pytest.raises(HttpError) as ei:
        parse_request(raw, 0)
    assert ei.value.status == status


def test_diagnose_messages():
    assert diagnose(b"GET / HTTP/1.1\r\nX: 1\r\n\tb\r\n").reason == "obsolete line folding"
    assert diagnose(b"GET / HTTP/1.1\r\nX: \x00\r\n").reason == "NUL in request head"
    assert diagnose(b"GET / HTTX/1.1\r\n").reason == "malformed request line"
    assert diagnose(b"GET / HTTP/x.1\r\n").status == 505
    assert diagnose(b"GET / HTTP/1.1\r\nX : 1\r\n").reason == "malformed header field"


def test_split_fields():
    assert split_fields(b"") == []
    assert split_fields(b"A: \t1 \t\r\nB:\r\nc-D:x:y\r\n") == [("a", "1"), ("b", ""),
                                                            ("c-d", "x:y")]
    assert split_fields(b"X: caf\xe9\r\n") == [("x", "caf\xe9")]


@pytest.mark.parametrize("fields,http11,want", [
    ([], True, (0, False)),
    ([("content-length", "12")], True, (12, False)),
    ([("content-length", "3, 3"), ("content-length", "3")], True, (3, False)),
    ([("content-length", "0")], False, (0, False)),
    ([("transfer-encoding", "chunked")], True, (0, True)),
    ([("transfer-encoding", " Chunked ")], True, (0, True)),
    ([("content-length", "9" * 18)], True, (int("9" * 18), False)),
])
def test_framing_ok(fields, http11, want):
    assert framing(fields, http11) == want


@pytest.mark.parametrize("fields,http11,status", [
    ([("content-length", "9" * 19)], True, 400),           # more than 18 digits
    ([("content-length", "1"), ("content-length", "2")], True, 400),
    ([("content-length", "")], True, 400),
    ([("content-length", "1,")], True, 400),
    ([("content-length", "\u0663")], True, 400),
    ([("transfer-encoding", "chunked"), ("content-length", "1")], True, 400),
    ([("transfer-encoding", "chunked")], False, 400),
    ([("transfer-encoding", "gzip")], True, 400),
    ([("transfer-encoding", "chunked"), ("transfer-encoding", "gzip")], True, 400),
    ([("transfer-encoding", "gzip"), ("transfer-encoding", "chunked")], True, 501),
    ([("transfer-encoding", "identity, chunked")], True, 501),
])
def test_framing_refused(fields, http11, status):
    with pytest.raises(HttpError) as ei:
        framing(fields, http11)
    assert ei.value.status == status


def test_special_fields_found_in_one_pass():
    fields = (b"Host: a\r\nX-Host: b\r\ncontent-LENGTH:  5 \r\nConnection: close\r\n"
              b"Expect: 100-continue\r\nTransfer-Encoding: chunked\r\n")
    want = [(b"host", b"a"), (b"content-length", b"5 "), (b"connection", b"close"),
            (b"expect", b"100-continue"), (b"transfer-encoding", b"chunked")]
    got = [(n.lower(), v) for n, v in special_fields(fields)]
    assert got == want
    # parse_request finds the same ones in its buffer, at any offset and
    # with bare LF line endings (the slow path)
    for raw in (b"GET / HTTP/1.1\r\n" + fields + b"\r\n",
                b"GET /0 HTTP/1.1\r\nHost: z\r\n\r\nGET / HTTP/1.1\r\n" + fields + b"\r\n",
                b"GET / HTTP/1.1\n" + fields.replace(b"\r\n", b"\n") + b"\n"):
        pos = raw.index(b"GET / ")
        r = parse_request(raw, pos)
        assert [(n.lower(), v) for n, v in r[5]] == want
    # a name must start its line: X-Host is not Host, nor is a value's "host:"
    assert special_fields(b"X-Host: a\r\nX-A: host: b\r\n") == []


def test_raw_field_matches_split_fields():
    from kore_http.parser import raw_field
    blocks = [b"", b"Host: x\r\n",
              b"Host: a\r\nX-Authorization: no\r\nAuthorization:  Bearer t.k.n \t\r\n"
              b"authorization: second\r\nCookie: a=1\r\nEmpty:\r\n",
              b"Host: a\r\nX-A: authorization: in a value\r\n"]
    names = ["host", "authorization", "cookie", "empty", "x-a", "missing", "x-authorization",
             "caf\u00e9"]
    for block in blocks:
        for name in names:
            want = next((v for n, v in split_fields(block) if n == name), None)
            assert raw_field(block, name) == want, (block, name)

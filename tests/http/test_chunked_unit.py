"""kore_http.h1.chunked.ChunkedDecoder, in process: framing, limits, the
statuses of every error, and the same result however the bytes are split."""

import re

import pytest

from kore_http.h1.chunked import CHUNK_LINE_MAX, ChunkedDecoder
from kore_http.parser import HttpError

BODY_MAX = 1 << 20
TRAILER_MAX = 4096


def decode(data, pieces=None, body_max=BODY_MAX, trailer_max=TRAILER_MAX):
    """(body, trailers, rest, done) of ``data`` fed whole or cut at ``pieces``."""
    dec = ChunkedDecoder(body_max, trailer_max)
    cuts = [0] + list(pieces or []) + [len(data)]
    out = []
    for a, b in zip(cuts, cuts[1:]):
        for piece in dec.feed(data[a:b]):
            assert piece, "empty piece"
            assert isinstance(piece, bytes)
            out.append(piece)
        if dec.done:
            rest = dec.rest + data[b:]
            return b"".join(out), dec.trailers, rest, True
    return b"".join(out), dec.trailers, dec.rest, dec.done


def status_of(data, **kw):
    with pytest.raises(HttpError) as ei:
        decode(data, **kw)
    return ei.value.status


def test_simple_body_and_rest():
    body, trailers, rest, done = decode(b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
                                        b"GET / HTTP/1.1\r\n")
    assert (body, trailers, rest, done) == (b"hello world", [], b"GET / HTTP/1.1\r\n", True)


def test_empty_body():
    assert decode(b"0\r\n\r\n") == (b"", [], b"", True)


def test_incomplete_is_not_done():
    for data in (b"", b"5", b"5\r", b"5\r\nhel", b"5\r\nhello", b"5\r\nhello\r",
                 b"5\r\nhello\r\n0\r\n", b"5\r\nhello\r\n0\r\nA: b\r\n"):
        body, _, _, done = decode(data)
        assert not done, data
        assert b"hello".startswith(body)


def test_every_split_gives_the_same_result():
    data = (b"3;ext=1\r\nabc\r\n10\r\n" + b"0123456789abcdef" + b"\r\n1\r\nz\r\n"
            b"0;last\r\nX-Sum: 12\r\nX-B:\tv \r\n\r\nNEXT")
    whole = decode(data)
    assert whole == (b"abc0123456789abcdefz", [("x-sum", "12"), ("x-b", "v")], b"NEXT", True)
    for i in range(len(data) + 1):
        assert decode(data, [i]) == whole, i
    # one byte at a time
    assert decode(data, range(1, len(data))) == whole


def test_big_chunk_is_handed_out_without_copies():
    payload = b"x" * 200000
    data = b"%x\r\n" % len(payload) + payload + b"\r\n0\r\n\r\n"
    dec = ChunkedDecoder(BODY_MAX, TRAILER_MAX)
    head = data[:9]
    assert dec.feed(head) == [head[len(b"30d40\r\n"):]]
    mid = data[9:100009]
    got = dec.feed(mid)
    assert len(got) == 1 and got[0] is mid          # a read of chunk data is passed on as is
    tail = data[100009:]
    got = dec.feed(tail)
    assert b"".join(got) == payload[100009 - 7:] and dec.done


def test_hex_digits_and_extensions():
    assert decode(b"A\r\n0123456789\r\n0\r\n\r\n")[0] == b"0123456789"
    assert decode(b"a\r\n0123456789\r\n0\r\n\r\n")[0] == b"0123456789"
    assert decode(b"000000000000005\r\nhello\r\n0\r\n\r\n")[0] == b"hello"    # 15 digits
    assert decode(b"5 ; a=b\r\nhello\r\n0\r\n\r\n")[0] == b"hello"             # BWS before ;
    assert decode(b"5;a=\"q \xe9\"\r\nhello\r\n0\r\n\r\n")[0] == b"hello"       # obs-text in ext
    assert decode(b"5;\r\nhello\r\n0\r\n\r\n")[0] == b"hello"


@pytest.mark.parametrize("data", [
    b"zz\r\nhello\r\n0\r\n\r\n",                    # not hex
    b"-5\r\nhello\r\n0\r\n\r\n",
    b" 5\r\nhello\r\n0\r\n\r\n",                    # leading space
    b"5 \r\nhello\r\n0\r\n\r\n",                    # trailing space without ;
    b"0x5\r\nhello\r\n0\r\n\r\n",
    b"\r\nhello\r\n0\r\n\r\n",                      # empty size
    b"0000000000000005\r\nhello\r\n0\r\n\r\n",      # 16 digits
    b"ffffffffffffffffff\r\nx\r\n0\r\n\r\n",
    b"5;a\rb\r\nhello\r\n0\r\n\r\n",                # bare CR in ext
    b"5;a\x00b\r\nhello\r\n0\r\n\r\n",              # NUL in ext
    b"5;a\x7f\r\nhello\r\n0\r\n\r\n",               # DEL in ext
    b"5\nhello\r\n0\r\n\r\n",                       # bare LF size line
    b"\nhello",                                     # bare LF alone
    b"5\r\nhelloX\r\n0\r\n\r\n",                    # data not followed by CRLF
    b"5\r\nhello\n0\r\n\r\n",
    b"5\r\nhello\r\n0\n\r\n",                       # bare LF last-chunk line
    b"0\r\nA: b\r\n c\r\n\r\n",                     # obs-fold in trailers
    b"0\r\nA: b\r\n\tc\r\n\r\n",
    b"0\r\nNoColon\r\n\r\n",
    b"0\r\nA: b\rc\r\n\r\n",                        # bare CR in a trailer
    b"0\r\nA: b\n\r\n",                             # bare LF trailer line
    b"0\r\n\n",                                     # bare LF end of trailers
])
def test_malformed_is_400(data):
    assert status_of(data) == 400
    for i in range(1, len(data)):
        assert status_of(data, pieces=[i]) == 400, i


def test_size_line_limit():
    ok = b"5;" + b"e" * (CHUNK_LINE_MAX - 3) + b"\r\nhello\r\n0\r\n\r\n"   # 4096 + LF
    assert decode(ok)[0] == b"hello"
    too_long = b"5;" + b"e" * (CHUNK_LINE_MAX - 2) + b"\r\nhello\r\n0\r\n\r\n"
    assert status_of(too_long) == 400
    # an endless line is refused before its end arrives
    dec = ChunkedDecoder(BODY_MAX, TRAILER_MAX)
    dec.feed(b"5;" + b"e" * (CHUNK_LINE_MAX - 2))
    with pytest.raises(HttpError) as ei:
        dec.feed(b"e")
    assert ei.value.status == 400 and "too long" in ei.value.reason


def test_body_max_is_413_before_the_data():
    assert decode(b"4\r\nabcd\r\n0\r\n\r\n", body_max=4)[0] == b"abcd"
    dec = ChunkedDecoder(4, TRAILER_MAX)
    dec.feed(b"3\r\nabc\r\n")
    with pytest.raises(HttpError) as ei:
        dec.feed(b"2\r\n")                       # the size line alone is enough
    assert ei.value.status == 413
    assert status_of(b"fffffffffffffff\r\n", body_max=BODY_MAX) == 413


def test_trailer_limits_are_431():
    field = b"X-A: " + b"v" * 100 + b"\r\n"                          # 107 bytes
    n = TRAILER_MAX // len(field)
    ok = b"0\r\n" + field * n + b"\r\n"
    assert len(decode(ok)[1]) == n
    assert status_of(b"0\r\n" + field * (n + 1) + b"\r\n") == 431
    # one incomplete line larger than the limit
    dec = ChunkedDecoder(BODY_MAX, TRAILER_MAX)
    dec.feed(b"0\r\nX-A: ")
    with pytest.raises(HttpError) as ei:
        dec.feed(b"v" * TRAILER_MAX)
    assert ei.value.status == 431
    # a complete but malformed line is 400 even when large
    assert status_of(b"0\r\n" + b"v" * (TRAILER_MAX + 10) + b"\r\n\r\n") == 400


def test_trailers_parsed():
    _, trailers, _, _ = decode(b"0\r\nChecksum: abc \r\nX-Empty:\r\nweird name: 1\r\n\r\n")
    # names are not checked as tokens (as before): only CR, colon and folding are
    assert trailers == [("checksum", "abc"), ("x-empty", ""), ("weird name", "1")]


def test_feed_after_end_is_a_usage_error():
    dec = ChunkedDecoder(BODY_MAX, TRAILER_MAX)
    dec.feed(b"0\r\n\r\n")
    assert dec.done and dec.size == 0
    with pytest.raises(RuntimeError):
        dec.feed(b"x")


def test_size_counts_data():
    dec = ChunkedDecoder(BODY_MAX, TRAILER_MAX)
    dec.feed(b"3\r\nabc\r\n2\r\nde")
    assert dec.size == 5 and not dec.done


# the former inline loop of conn._read_body, as the oracle ------------------

class _Gone(Exception):
    pass


_OLD_SIZE_RE = re.compile(rb"([0-9A-Fa-f]{1,15})(?:[ \t]*;[\t\x20-\x7e\x80-\xff]*)?\r?\n")


def chunk_size(line):
    """The former parser.chunk_size."""
    m = _OLD_SIZE_RE.fullmatch(line)
    if m is None:
        raise HttpError(400, "bad chunk size")
    return int(m.group(1), 16)


def _old_decode(pieces, body_max, header_max):
    """(body, rest) or raises HttpError / _Gone: the chunked branch of the
    former conn._read_body over a list of reads."""
    it = iter(pieces)

    def recv():
        try:
            return next(it)
        except StopIteration:
            raise _Gone() from None
    out = []
    buf, pos = b"", 0
    total = 0
    while True:
        nl = buf.find(b"\n", pos)
        while nl < 0:
            if len(buf) - pos > CHUNK_LINE_MAX:
                raise HttpError(400, "chunk size line too long")
            buf = buf[pos:] + recv()
            pos = 0
            nl = buf.find(b"\n")
        if nl - pos > CHUNK_LINE_MAX:
            raise HttpError(400, "chunk size line too long")
        line = buf[pos:nl + 1]
        if not line.endswith(b"\r\n"):
            raise HttpError(400, "bad chunk line ending")
        size = chunk_size(line)
        pos = nl + 1
        if size == 0:
            break
        total += size
        if total > body_max:
            raise HttpError(413, "body too large")
        while len(buf) - pos < size + 2:
            if len(buf) - pos > 65536 and len(buf) - pos < size:
                piece = buf[pos:]
                out.append(piece)
                size -= len(piece)
                buf, pos = recv(), 0
                continue
            buf = buf[pos:] + recv()
            pos = 0
        out.append(buf[pos:pos + size])
        pos += size
        if buf[pos:pos + 2] != b"\r\n":
            raise HttpError(400, "chunk data not followed by CRLF")
        pos += 2
    tsize = 0
    while True:
        nl = buf.find(b"\n", pos)
        while nl < 0:
            if len(buf) - pos > header_max:
                raise HttpError(431, "trailers too large")
            buf = buf[pos:] + recv()
            pos = 0
            nl = buf.find(b"\n")
        line = buf[pos:nl + 1]
        pos = nl + 1
        if line == b"\r\n":
            break
        if not line.endswith(b"\r\n") or b":" not in line or b"\r" in line[:-2] \
                or line[:1] in (b" ", b"\t"):
            raise HttpError(400, "bad trailer field")
        tsize += len(line)
        if tsize > header_max:
            raise HttpError(431, "trailers too large")
    return b"".join(out), buf[pos:]


def _new_decode(pieces, body_max, header_max):
    dec = ChunkedDecoder(body_max, header_max)
    out = []
    for p in pieces:
        out += dec.feed(p)
        if dec.done:
            return b"".join(out), dec.rest
    raise _Gone()


def _outcome(fn, pieces, body_max, header_max):
    try:
        return fn(pieces, body_max, header_max)
    except HttpError as exc:
        return ("error", exc.status, exc.reason)
    except _Gone:
        return ("incomplete",)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_frag = st.one_of(
    st.sampled_from([b"5\r\nhello\r\n", b"0\r\n\r\n", b"0\r\n", b"A;x=1\r\n0123456789\r\n",
                     b"X-T: 1\r\n", b"\r\n", b"\n", b"\r", b"3 ;e\r\nabc\r\n", b" 1\r\n",
                     b"10\r\n" + b"y" * 16 + b"\r\n", b"ffffffffffffffff\r\n",
                     b"1" + b";" * 100 + b"\r\nz\r\n", b"NEXT", b"0;" + b"e" * 300 + b"\r\n",
                     b"Big: " + b"v" * 200 + b"\r\n", b"\tfold\r\n"]),
    st.binary(max_size=12))


@settings(max_examples=600, deadline=None)
@given(st.lists(_frag, min_size=1, max_size=10), st.lists(st.integers(1, 400), max_size=6),
       st.sampled_from([(1 << 20, 4096), (40, 4096), (1 << 20, 256), (0, 64)]))
def test_same_as_the_old_loop(frags, cuts, limits):
    data = b"".join(frags)
    points = sorted({c for c in cuts if c < len(data)})
    pieces = [data[a:b] for a, b in zip([0] + points, points + [len(data)])]
    pieces = [p for p in pieces if p]
    body_max, header_max = limits
    assert _outcome(_new_decode, pieces, body_max, header_max) == \
        _outcome(_old_decode, pieces, body_max, header_max)


def test_same_as_the_old_loop_for_big_chunks():
    payload = bytes(range(256)) * 1024                    # 256 KiB, one chunk
    data = b"%x\r\n" % len(payload) + payload + b"\r\n1\r\nq\r\n0\r\nT: 1\r\n\r\nNEXT"
    for read in (1000, 4096, 65536, 70000, len(data)):
        pieces = [data[i:i + read] for i in range(0, len(data), read)]
        want = _outcome(_old_decode, pieces, 1 << 20, 4096)
        assert want[0] == payload + b"q" and b"NEXT".startswith(want[1])
        assert _outcome(_new_decode, pieces, 1 << 20, 4096) == want

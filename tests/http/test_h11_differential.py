"""h11 (server role) as an oracle for our request parser and chunked decoder.

For every request of the corpus (test_corpus.CORPUS), for hand-written edge
cases and for generated chunked bodies, kore's parser + framing + chunked
decoder and h11 must either both accept, with the same method, target,
header fields, body and trailers, or both reject (the statuses may differ).
The only exceptions are listed in DIFFERENCES, each with the reason: the
test also checks that each listed case still differs in the listed way, so
the list cannot go stale.

Checks that the connection makes after the parser (Host present and single,
the target's form, Expect) are not part of what is compared here; the
integration corpus (test_corpus.py) covers them against a real server.
"""

import re

import h11
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kore_http.h1.chunked import ChunkedDecoder
from kore_http.parser import HttpError, framing, parse_request, split_fields
from test_corpus import CORPUS

FRAMING = ("content-length", "transfer-encoding")
H = b"Host: x\r\n"
CHUNKED_HEAD = b"POST /up HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n"


def ours(raw, cuts=()):
    """("ok", method, target, fields, body, trailers) | ("error",) | ("incomplete",)."""
    try:
        r = parse_request(raw, 0)
        if r is None:
            return ("incomplete",)
        method, target, http11, fields, nxt, _special = r
        fl = split_fields(fields)
        length, chunked = framing(fl, http11)
        trailers = []
        if chunked:
            dec = ChunkedDecoder(1 << 30, 4096)
            rest = raw[nxt:]
            out = []
            points = [0] + [c for c in cuts if 0 < c < len(rest)] + [len(rest)]
            for a, b in zip(points, points[1:]):
                out += dec.feed(rest[a:b])
                if dec.done:
                    break
            if not dec.done:
                return ("incomplete",)
            body, trailers = b"".join(out), dec.trailers
        else:
            if len(raw) - nxt < length:
                return ("incomplete",)
            body = raw[nxt:nxt + length]
    except HttpError:
        return ("error",)
    return ("ok", method, target, [f for f in fl if f[0] not in FRAMING], body, trailers)


def theirs(raw):
    """The same, from h11."""
    c = h11.Connection(h11.SERVER)
    c.receive_data(raw)
    req, body = None, []
    try:
        while True:
            ev = c.next_event()
            if ev is h11.NEED_DATA:
                return ("incomplete",)
            if isinstance(ev, h11.Request):
                req = ev
            elif isinstance(ev, h11.Data):
                body.append(ev.data)
            elif isinstance(ev, h11.EndOfMessage):
                fields = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in req.headers]
                trailers = [(n.decode("latin-1"), v.decode("latin-1")) for n, v in ev.headers]
                return ("ok", req.method.decode("ascii"), req.target.decode("ascii"),
                        [f for f in fields if f[0] not in FRAMING], b"".join(body), trailers)
    except h11.RemoteProtocolError:
        return ("error",)


# case id -> (what we do, what h11 does, why).  Raw requests of cases that
# are not in the corpus are in EXTRA.
OK, ERR, INC = "ok", "error", "incomplete"
DIFFERENCES = {
    # the request line
    "lowercase-method": (ERR, OK, "501: only the methods the server routes (RFC 9110 9.1); "
                                  "h11 takes any token"),
    "unknown-method": (ERR, OK, "501, as above"),
    "http2": (ERR, OK, "505 for versions other than 1.0/1.1 (RFC 9110 15.6.6); h11 leaves "
                       "versions to the application"),
    "http09ish": (ERR, OK, "505, as above"),
    # header fields
    "obs-fold": (ERR, OK, "obs-fold is refused with 400 (RFC 9112 5.2 allows it); h11 unfolds"),
    "obs-fold-tab": (ERR, OK, "as above"),
    "ctl-in-value": (ERR, OK, "control characters are not field-value octets "
                              "(RFC 9110 5.5); h11 only refuses NUL, CR and LF"),
    "del-in-value": (ERR, OK, "DEL, as above"),
    "no-host-11": (OK, ERR, "the Host rules are checked by the connection after the parser "
                            "(400 there, see test_corpus)"),
    "two-hosts": (OK, ERR, "as above"),
    # framing
    "cl-and-te": (ERR, OK, "Content-Length with Transfer-Encoding is refused as smuggling "
                           "(RFC 9112 6.1 allows it); h11 ignores the Content-Length"),
    "te-and-cl": (ERR, OK, "as above"),
    "te-http10": (ERR, OK, "Transfer-Encoding in HTTP/1.0 means faulty framing "
                           "(RFC 9112 6.1); h11 decodes it"),
    # chunked coding
    "chunk-size-huge": (ERR, INC, "chunk sizes have at most 15 hex digits; h11 takes 20 "
                                  "and waits for the data"),
    "chunk-size-16-digits": (ERR, OK, "as above, with leading zeros"),
    "chunk-bare-cr-ext": (ERR, OK, "chunk-ext is VCHAR / obs-text / SP / HTAB: no bare CR; "
                                   "h11 takes anything after ';'"),
    "chunk-ext-ctl": (ERR, OK, "as above, a control character in chunk-ext"),
    "chunk-ext-bws": (OK, ERR, "BWS before ';' is allowed (RFC 9112 7.1.1); h11 refuses it"),
    "chunk-size-trailing-ows": (ERR, OK, "no whitespace after a chunk size without ';' (RFC "
                                         "9112 7.1); h11 allows it for broken peers"),
    "trailer-bare-lf": (ERR, OK, "bare LF is allowed in the head only (RFC 9112 2.2), not in "
                                 "chunk framing or trailers; h11 allows it in trailers"),
    "trailer-bad-line-early": (ERR, INC, "a bad trailer line is refused when it arrives; h11 "
                                         "reads up to the blank line first"),
    "trailer-obs-fold": (ERR, OK, "obs-fold in trailers: as in the head"),
    "trailer-name-not-token": (OK, ERR, "trailer names are not checked as tokens (trailers "
                                        "are never merged into the head); h11 checks them"),
    "trailer-empty-name": (OK, ERR, "as above, an empty name"),
    "trailer-ctl-value": (OK, ERR, "trailer values are only checked for bare CR; h11 refuses "
                                   "NUL"),
}

EXTRA = {
    "chunk-size-16-digits": CHUNKED_HEAD + b"0000000000000005\r\nhello\r\n0\r\n\r\n",
    "chunk-ext-ctl": CHUNKED_HEAD + b"5;a\x01\r\nhello\r\n0\r\n\r\n",
    "chunk-ext-bws": CHUNKED_HEAD + b"5 ;a=b\r\nhello\r\n0\r\n\r\n",
    "trailer-name-not-token": CHUNKED_HEAD + b"0\r\nX Y: 1\r\n\r\n",
    "trailer-ctl-value": CHUNKED_HEAD + b"0\r\nX-Y: a\x00b\r\n\r\n",
    "trailer-empty-name": CHUNKED_HEAD + b"0\r\n: v\r\n\r\n",
    "chunk-size-trailing-ows": CHUNKED_HEAD + b"5 \r\nhello\r\n0\r\n\r\n",
    "trailer-bare-lf": CHUNKED_HEAD + b"0\r\nX-Y: 1\n\n",
    "trailer-bad-line-early": CHUNKED_HEAD + b"0\r\nnot a field\r\n",
    # agreed edge cases (no entry in DIFFERENCES)
    "chunk-ext-quoted": CHUNKED_HEAD + b'5;name="v a l"\r\nhello\r\n0;x\r\n\r\n',
    "chunk-leading-zeros": CHUNKED_HEAD + b"0005\r\nhello\r\n000\r\n\r\n",
    "trailers": CHUNKED_HEAD + b"1\r\na\r\n0\r\nX-Sum: 1\r\nX-B:  v \r\n\r\n",
    "trailer-bare-cr": CHUNKED_HEAD + b"0\r\nX-Y: a\rb\r\n\r\n",
    "trailer-no-colon": CHUNKED_HEAD + b"0\r\nXY\r\n\r\n",
    "chunk-crlf-missing-at-end": CHUNKED_HEAD + b"5\r\nhello0\r\n\r\n",
    "chunk-incomplete": CHUNKED_HEAD + b"5\r\nhel",
    "head-incomplete": b"GET / HTTP/1.1\r\nHost: x\r\n",
    "absolute-target": b"GET http://x/a?b HTTP/1.1\r\n" + H + b"\r\n",
    "cl-zero": b"POST /e HTTP/1.1\r\n" + H + b"Content-Length: 0\r\n\r\n",
    "many-fields": b"GET / HTTP/1.1\r\n" + H + b"".join(b"X-%d: %d\r\n" % (i, i)
                                                      for i in range(50)) + b"\r\n",
    "value-ows": b"GET / HTTP/1.1\r\n" + H + b"X-A: \t a b \t\r\n\r\n",
}

CASES = [(c[0], c[1]) for c in CORPUS] + sorted(EXTRA.items())


@pytest.mark.parametrize("raw", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_same_as_h11(request, raw):
    cid = request.node.callspec.id
    a, b = ours(raw), theirs(raw)
    if cid in DIFFERENCES:
        want_ours, want_h11, _why = DIFFERENCES[cid]
        assert (a[0], b[0]) == (want_ours, want_h11), (a, b)
    else:
        assert a == b


def test_every_difference_is_a_case():
    assert set(DIFFERENCES) <= {c[0] for c in CASES}


# generated chunked bodies, inside the grammar both implement ---------------

_token = st.text("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_!#$%&'*+.^`|~",
                 min_size=1, max_size=12)
_vtext = st.text("".join(chr(c) for c in range(0x21, 0x7f)), min_size=1, max_size=12)
_value = st.one_of(st.just(""), _vtext, st.tuples(_vtext, _vtext).map(" ".join))
_ext = st.one_of(st.just(""), _token.map(lambda t: ";" + t),
                 st.tuples(_token, _vtext).map(lambda t: ";%s=%s" % t))


# chunk data of text with line breaks and separators, to confuse framing
# when a corruption shifts it, and raw bytes
_data = st.text("abcXYZ019 ;:=\r\n\t", min_size=1, max_size=300).map(str.encode)


@st.composite
def chunked_bodies(draw):
    kind = draw(st.sampled_from(["none"] * 4 + ["bare-lf", "drop-byte", "insert-byte",
                                                 "truncate"]))
    # raw bytes only in well-formed bodies: a corruption that shifts the
    # framing then finds text, where the features of _explained() mean something
    data = st.one_of(_data, st.binary(min_size=1, max_size=300)) if kind == "none" else _data
    chunks = draw(st.lists(data, max_size=6))
    out = []
    for data in chunks:
        size = "%x" % len(data)
        size = "0" * draw(st.integers(0, 15 - len(size))) + size
        if draw(st.booleans()):
            size = size.upper()
        out.append(size.encode() + draw(_ext).encode() + b"\r\n" + data + b"\r\n")
    out.append(b"0" + draw(_ext).encode() + b"\r\n")
    for name, value in draw(st.lists(st.tuples(_token, _value), max_size=3)):
        out.append(("%s:%s%s\r\n" % (name, draw(st.sampled_from(["", " ", "\t "])), value))
                   .encode())
    out.append(b"\r\n")
    body = b"".join(out)
    # then, sometimes, one corruption
    if kind != "none" and body:
        i = draw(st.integers(0, len(body) - 1))
        if kind == "bare-lf":
            j = body.find(b"\r\n", i)
            if j >= 0:
                body = body[:j] + body[j + 1:]
        elif kind == "drop-byte":
            body = body[:i] + body[i + 1:]
        elif kind == "insert-byte":
            body = body[:i] + draw(st.sampled_from([b"x", b" ", b"\r", b"\n", b";", b"0",
                                                     b"\x00"])) + body[i:]
        else:
            body = body[:i]
    cuts = draw(st.lists(st.integers(0, len(body)), max_size=5).map(sorted))
    return body, cuts, kind


_FEATURES = {
    # what in a generated body can run into a listed difference
    "trailer-bare-lf": re.compile(rb"(?<!\r)\n"),
    "chunk-bare-cr-ext": re.compile(rb"\r(?!\n)"),
    "chunk-ext-ctl": re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"),
    "trailer-ctl-value": re.compile(rb"\x00"),
    "chunk-size-trailing-ows": re.compile(rb"(?m)^[0-9A-Fa-f]+(?:;[^\r\n]*)?[ \t]+\r?$"),
    "chunk-ext-bws": re.compile(rb"(?m)^[0-9A-Fa-f]+[ \t]+;"),
    "chunk-size-16-digits": re.compile(rb"(?m)^[0-9A-Fa-f]{16}"),
    "chunk-size-huge": re.compile(rb"(?m)^[0-9A-Fa-f]{16}"),
    "trailer-obs-fold": re.compile(rb"(?m)^[ \t]"),
    "trailer-name-not-token": re.compile(rb"(?m)^(?![!#$%&'*+.^_`|~0-9A-Za-z-]+:)[^\r\n]*:"),
}


def _explained(raw, a, b):
    """The listed difference a generated mismatch falls under, or None."""
    if (a[0], b[0]) == (ERR, INC):
        # h11 reads the whole trailer section before it judges: end it
        b = theirs(raw + b"\r\n\r\n")
        if b[0] == ERR:
            return "trailer-bad-line-early"
    body = raw[len(CHUNKED_HEAD):]
    for cid, rx in _FEATURES.items():
        if DIFFERENCES[cid][:2] == (a[0], b[0]) and rx.search(body):
            return cid
    return None


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunked_bodies())
def test_generated_chunked_bodies(case):
    body, cuts, kind = case
    raw = CHUNKED_HEAD + body
    a, b = ours(raw, cuts), theirs(raw)
    assert a == ours(raw), "the result depends on how the bytes are split"
    if a != b:
        assert kind != "none" and _explained(raw, a, b), (a, b)

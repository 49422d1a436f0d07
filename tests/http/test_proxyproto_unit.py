"""kore_http.proxyproto in process: v1 and v2 headers, and the same answers
as the read loop the connection used before (kept below as the oracle),
however the bytes arrive."""

import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kore_http import proxyproto
from kore_http.parser import HttpError

SIG = proxyproto.V2_SIGNATURE
REQ = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def v2(command, family, body, version=0x20):
    return SIG + bytes([version | command, family]) + struct.pack("!H", len(body)) + body


def v4_body(src="192.0.2.1", dst="198.51.100.2", sport=1234, dport=443):
    return socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)


def v6_body(src="2001:db8::1", dst="2001:db8::2"):
    return (socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst)
            + struct.pack("!HH", 1, 2))


class Gone(Exception):
    pass


def old_read(pieces):
    """The former conn.read_proxy_header over a list of reads: (address, rest)."""
    it = iter(pieces)

    def recv():
        try:
            return next(it)
        except StopIteration:
            raise Gone() from None
    address = None
    buf = b""
    while len(buf) < 16:
        buf += recv()
        if buf[:5] == b"PROXY" and b"\n" in buf:
            break
        if not (b"PROXY".startswith(buf[:5]) or SIG.startswith(buf[:12])):
            raise HttpError(400, "PROXY protocol header expected")
    if buf.startswith(b"PROXY"):
        while b"\r\n" not in buf:
            if len(buf) > 107:
                raise HttpError(400, "PROXY header too long")
            buf += recv()
        line, _, rest = buf.partition(b"\r\n")
        parts = line.split(b" ")
        if len(parts) == 6 and parts[1] in (b"TCP4", b"TCP6"):
            address = parts[2].decode("ascii", "replace")
        elif len(parts) >= 2 and parts[1] == b"UNKNOWN":
            pass
        else:
            raise HttpError(400, "bad PROXY header")
        return address, rest
    if buf[:12] != SIG:
        raise HttpError(400, "PROXY protocol header expected")
    ln = int.from_bytes(buf[14:16], "big")
    while len(buf) < 16 + ln:
        buf += recv()
    fam = buf[13]
    body = buf[16:16 + ln]
    if buf[12] & 0x0F == 1:
        if fam >> 4 == 1 and len(body) >= 12:
            address = socket.inet_ntop(socket.AF_INET, body[0:4])
        elif fam >> 4 == 2 and len(body) >= 36:
            address = socket.inet_ntop(socket.AF_INET6, body[0:16])
    return address, buf[16 + ln:]


def new_read(pieces):
    """What the connection does with proxyproto.parse."""
    buf = b""
    it = iter(pieces)
    while True:
        try:
            buf += next(it)
        except StopIteration:
            raise Gone() from None
        r = proxyproto.parse(buf)
        if r is not None:
            address, n = r
            return address, buf[n:]


def outcome(fn, pieces):
    try:
        return fn(pieces)
    except HttpError as exc:
        return ("error", exc.status, exc.reason)
    except Gone:
        return ("incomplete",)


@pytest.mark.parametrize("header,address", [
    (b"PROXY TCP4 192.0.2.1 198.51.100.2 1234 443\r\n", "192.0.2.1"),
    (b"PROXY TCP6 2001:db8::1 2001:db8::2 1234 443\r\n", "2001:db8::1"),
    (b"PROXY UNKNOWN\r\n", None),
    (b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n", None),
    (b"PROXY TCP4 not-checked 198.51.100.2 1 2\r\n", "not-checked"),     # as before
    (v2(1, 0x11, v4_body()), "192.0.2.1"),                                 # PROXY, TCP4
    (v2(1, 0x12, v4_body("203.0.113.9")), "203.0.113.9"),                  # PROXY, UDP4
    (v2(1, 0x21, v6_body()), "2001:db8::1"),                               # PROXY, TCP6
    (v2(0, 0x00, b""), None),                                              # LOCAL
    (v2(0, 0x11, v4_body()), None),                                # LOCAL ignores addresses
    (v2(1, 0x31, b"/tmp/a".ljust(108, b"\0") + b"/tmp/b".ljust(108, b"\0")), None),  # unix
    (v2(1, 0x00, b""), None),                                              # UNSPEC
    (v2(1, 0x11, v4_body() + b"\x04\x00\x03abc" + b"\x20\x00\x05\x01\x00\x00\x00\x00"),
     "192.0.2.1"),                                                         # TLVs skipped
    (v2(1, 0x21, v6_body() + b"\x01\x00\x02h2"), "2001:db8::1"),
    (v2(1, 0x11, v4_body()[:8]), None),                                    # too short: no address
])
def test_headers(header, address):
    assert proxyproto.parse(header + REQ) == (address, len(header))
    assert new_read([header + REQ]) == (address, REQ)
    # every prefix is incomplete, never an error
    for i in range(len(header)):
        assert proxyproto.parse(header[:i]) is None, i
    # and one byte per read gives the same (the last read brings the request too)
    pieces = [header[i:i + 1] for i in range(len(header) - 1)] + [header[-1:] + REQ]
    assert new_read(pieces) == (address, REQ)
    assert outcome(old_read, pieces) == (address, REQ)
    assert outcome(old_read, [header + REQ]) == (address, REQ)


@pytest.mark.parametrize("data,reason", [
    (REQ, "PROXY protocol header expected"),
    (b"PROXX TCP4 1 2 3 4\r\n", "PROXY protocol header expected"),
    (b"\r\n\r\n\x00\r\nQUIX\n" + b"\x21\x11\x00\x00", "PROXY protocol header expected"),
    (b"\r\n\r\nGET", "PROXY protocol header expected"),
    (b"PROXY TCP4 1.2.3.4\r\n", "bad PROXY header"),
    (b"PROXY\r\n", "bad PROXY header"),
    (b"PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "bad PROXY header"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n", "bad PROXY header"),
    (b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "bad PROXY header"),         # two spaces
    (b"PROXY " + b"x" * 102, "PROXY header too long"),
    (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n" + b"x" * 80, "PROXY header too long"),  # bare LF
])
def test_refused(data, reason):
    with pytest.raises(HttpError) as ei:
        proxyproto.parse(data)
    assert (ei.value.status, ei.value.reason) == (400, reason)
    assert outcome(old_read, [data]) == ("error", 400, reason)


def test_v1_limit_is_on_what_has_arrived_without_crlf():
    line = b"PROXY TCP4 " + b"1" * 90 + b" 5.6.7.8 1 2\r\n"       # longer than 107
    assert proxyproto.parse(line)[1] == len(line)                   # arrived whole: as before
    with pytest.raises(HttpError):
        proxyproto.parse(line[:108])


def test_v2_waits_for_its_whole_length():
    h = v2(1, 0x11, v4_body() + b"\0" * 1000)
    assert proxyproto.parse(h[:-1]) is None
    assert proxyproto.parse(h) == ("192.0.2.1", len(h))


_pieces = st.one_of(
    st.sampled_from([b"PROXY TCP4 192.0.2.1 198.51.100.2 1234 443\r\n", b"PROXY UNKNOWN\r\n",
                     b"PROXY TCP6 ::1 ::2 1 2\r\n", b"PROXY ", b"PROXY TCP4 a b c d\n",
                     v2(1, 0x11, v4_body()), v2(1, 0x21, v6_body()), v2(0, 0, b""),
                     v2(1, 0x11, v4_body() + b"\x04\x00\x01z"), SIG, SIG[:7], REQ]),
    st.binary(max_size=20))


@settings(max_examples=500, deadline=None)
@given(st.lists(_pieces, min_size=1, max_size=4), st.lists(st.integers(0, 200), max_size=6),
       st.integers(0, 3))
def test_same_as_the_old_loop(chunks, cuts, mutate):
    data = b"".join(chunks)
    if mutate and data:
        i = cuts[0] % len(data) if cuts else 0
        data = data[:i] + bytes([data[i] ^ (1 << mutate)]) + data[i + 1:]
    points = sorted({c for c in cuts if 0 < c < len(data)})
    pieces = [data[a:b] for a, b in zip([0] + points, points + [len(data)])]
    pieces = [p for p in pieces if p]
    assert outcome(new_read, pieces) == outcome(old_read, pieces)

"""An h2spec-style negative battery over h2c (RFC 9113), raw frames built
by hand.  A connection error passes on GOAWAY with the expected code or a
close; a stream error on RST_STREAM with the code, GOAWAY with it, or a
close.  "serves" cases must get their answer (a PING ACK, a response)."""

import socket
import struct
import time

import pytest
from hpack import Encoder

from h2client import PREFACE

pytestmark = pytest.mark.timeout(120)

NO_ERROR, PROTOCOL, INTERNAL, FLOW, SETTINGS_TO, CLOSED, FRAME_SIZE, REFUSED, CANCEL, \
    COMPRESSION = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9
DATA, HEADERS, PRIORITY, RST, SETTINGS, PUSH, PING, GOAWAY, WINDOW, CONT = range(10)
ES, EH, PADDED, PRIO, ACK = 0x1, 0x4, 0x8, 0x20, 0x1


def frame(ftype, flags, sid, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", sid) + payload


def req(enc, path="/", extra=(), base=True):
    hs = [(":method", "GET"), (":scheme", "http"), (":path", path),
          (":authority", "x")] if base else []
    return enc.encode(hs + list(extra))


def headers(enc, sid, flags=ES | EH, **kw):
    return frame(HEADERS, flags, sid, req(enc, **kw))


def post(enc, sid, extra=()):
    return frame(HEADERS, EH, sid, enc.encode([(":method", "POST"), (":scheme", "http"),
                                               (":path", "/echo"), (":authority", "x")]
                                              + list(extra)))


def setting(ident, value):
    return frame(SETTINGS, 0, 0, struct.pack(">HI", ident, value))


PING8 = b"probe-01"

# (name, builder(enc) -> bytes, expectation, codes)
#   expectation: "conn" connection error, "stream" stream error, "serves"
CASES = [
    ("3.5 invalid preface", None, "conn", (PROTOCOL,)),
    ("4.2 DATA larger than SETTINGS_MAX_FRAME_SIZE",
     lambda e: post(e, 1) + frame(DATA, 0, 1, b"x" * 16385), "conn", (FRAME_SIZE,)),
    ("4.2 SETTINGS larger than max frame size",
     lambda e: frame(SETTINGS, 0, 0, b"\x00" * 16386 + b"\x00" * 4), "conn", (FRAME_SIZE,)),
    ("4.3 invalid header block",
     lambda e: frame(HEADERS, ES | EH, 1, b"\xff\xff\xff\xff\xff"), "conn",
     (COMPRESSION, PROTOCOL)),
    ("4.3 header block interrupted by another frame",
     lambda e: frame(HEADERS, ES, 1, req(e)) + frame(PING, 0, 0, PING8), "conn", (PROTOCOL,)),
    ("5.1 DATA on an idle stream", lambda e: frame(DATA, ES, 1, b"x"), "conn", (PROTOCOL,)),
    ("5.1 RST_STREAM on an idle stream", lambda e: frame(RST, 0, 1, struct.pack(">I", 8)),
     "conn", (PROTOCOL,)),
    ("5.1 WINDOW_UPDATE on an idle stream",
     lambda e: frame(WINDOW, 0, 1, struct.pack(">I", 1)), "conn", (PROTOCOL,)),
    ("5.1 DATA on a half-closed (remote) stream",
     lambda e: headers(e, 1, path="/slow?ms=500") + frame(DATA, ES, 1, b"x"), "stream",
     (CLOSED,)),
    ("5.1 HEADERS on a half-closed (remote) stream",
     lambda e: headers(e, 1, path="/slow?ms=500") + headers(e, 1), "stream", (CLOSED,)),
    ("5.1.1 even stream id from a client", lambda e: headers(e, 2), "conn", (PROTOCOL,)),
    ("5.1.1 stream id lower than a previous one (reuse)",
     lambda e: headers(e, 5) + headers(e, 3), "conn", (PROTOCOL,)),
    ("5.1.1 stream id reused after close",
     lambda e: [headers(e, 1), headers(e, 1)], "conn", (PROTOCOL, CLOSED)),
    ("5.3.1 PRIORITY depending on itself",
     lambda e: frame(PRIORITY, 0, 1, struct.pack(">IB", 1, 16)), "stream", (PROTOCOL,)),
    ("5.3.1 HEADERS depending on itself",
     lambda e: frame(HEADERS, ES | EH | PRIO, 1, struct.pack(">IB", 1, 16) + req(e)),
     "stream", (PROTOCOL,)),
    ("5.5 unknown frame type is ignored",
     lambda e: frame(0x42, 0, 0, b"junk") + frame(PING, 0, 0, PING8), "serves", ()),
    ("5.5 unknown SETTINGS id is ignored",
     lambda e: setting(0x99, 1) + frame(PING, 0, 0, PING8), "serves", ()),
    ("6.1 DATA on stream 0", lambda e: frame(DATA, 0, 0, b"x"), "conn", (PROTOCOL,)),
    ("6.1 DATA with padding longer than the payload",
     lambda e: post(e, 1) + frame(DATA, PADDED | ES, 1, b"\x09abc"), "conn", (PROTOCOL,)),
    ("6.2 HEADERS on stream 0", lambda e: headers(e, 0), "conn", (PROTOCOL,)),
    ("6.2 HEADERS with padding longer than the payload",
     lambda e: frame(HEADERS, PADDED | ES | EH, 1, b"\xff" + req(e)), "conn", (PROTOCOL,)),
    ("6.3 PRIORITY on stream 0",
     lambda e: frame(PRIORITY, 0, 0, struct.pack(">IB", 1, 16)), "conn", (PROTOCOL,)),
    ("6.3 PRIORITY of length 4",
     lambda e: frame(PRIORITY, 0, 1, b"\x00\x00\x00\x03"), "stream", (FRAME_SIZE,)),
    ("6.4 RST_STREAM on stream 0", lambda e: frame(RST, 0, 0, struct.pack(">I", 8)), "conn",
     (PROTOCOL,)),
    ("6.4 RST_STREAM of length 3",
     lambda e: headers(e, 1, path="/slow?ms=500") + frame(RST, 0, 1, b"\x00\x00\x08"), "conn",
     (FRAME_SIZE,)),
    ("6.5 SETTINGS ACK with a payload", lambda e: frame(SETTINGS, ACK, 0, b"\x00" * 6),
     "conn", (FRAME_SIZE, PROTOCOL)),
    ("6.5 SETTINGS on a stream", lambda e: frame(SETTINGS, 0, 1, b""), "conn", (PROTOCOL,)),
    ("6.5 SETTINGS length not a multiple of 6", lambda e: frame(SETTINGS, 0, 0, b"\x00" * 3),
     "conn", (FRAME_SIZE,)),
    ("6.5.2 SETTINGS_ENABLE_PUSH = 2", lambda e: setting(2, 2), "conn", (PROTOCOL,)),
    ("6.5.2 SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1", lambda e: setting(4, 2 ** 31),
     "conn", (FLOW,)),
    ("6.5.2 SETTINGS_MAX_FRAME_SIZE below 16384", lambda e: setting(5, 16383), "conn",
     (PROTOCOL,)),
    ("6.5.2 SETTINGS_MAX_FRAME_SIZE above 2^24-1", lambda e: setting(5, 2 ** 24), "conn",
     (PROTOCOL,)),
    ("6.7 PING is answered", lambda e: frame(PING, 0, 0, PING8), "serves", ()),
    ("6.7 PING on a stream", lambda e: frame(PING, 0, 1, PING8), "conn", (PROTOCOL,)),
    ("6.7 PING of length 7", lambda e: frame(PING, 0, 0, PING8[:7]), "conn", (FRAME_SIZE,)),
    ("6.8 GOAWAY on a stream", lambda e: frame(GOAWAY, 0, 1, struct.pack(">II", 0, 0)),
     "conn", (PROTOCOL,)),
    ("6.9 WINDOW_UPDATE of 0 on the connection",
     lambda e: frame(WINDOW, 0, 0, struct.pack(">I", 0)), "conn", (PROTOCOL,)),
    ("6.9 WINDOW_UPDATE of 0 on a stream",
     lambda e: headers(e, 1, path="/slow?ms=500") + frame(WINDOW, 0, 1, struct.pack(">I", 0)),
     "stream", (PROTOCOL,)),
    ("6.9 WINDOW_UPDATE of length 3", lambda e: frame(WINDOW, 0, 0, b"\x00\x00\x01"), "conn",
     (FRAME_SIZE,)),
    ("6.9.1 connection window above 2^31-1",
     lambda e: frame(WINDOW, 0, 0, struct.pack(">I", 2 ** 31 - 1)), "conn", (FLOW,)),
    ("6.9.1 stream window above 2^31-1",
     lambda e: headers(e, 1, path="/slow?ms=500")
     + frame(WINDOW, 0, 1, struct.pack(">I", 2 ** 31 - 1)), "stream", (FLOW,)),
    ("6.9.2 SETTINGS_INITIAL_WINDOW_SIZE overflowing an open stream",
     lambda e: headers(e, 1, path="/slow?ms=500")
     + frame(WINDOW, 0, 1, struct.pack(">I", 2 ** 31 - 1 - 65535)) + setting(4, 65536),
     "stream", (FLOW,)),
    ("6.10 CONTINUATION without HEADERS", lambda e: frame(CONT, EH, 1, req(e)), "conn",
     (PROTOCOL,)),
    ("6.10 CONTINUATION after a finished header block",
     lambda e: post(e, 1) + frame(CONT, EH, 1, e.encode([("x-a", "b")])), "conn",
     (PROTOCOL,)),
    ("6.10 CONTINUATION flood (100 empty frames)",
     lambda e: frame(HEADERS, ES, 1, req(e)) + frame(CONT, 0, 1, b"") * 100, "conn",
     (PROTOCOL, INTERNAL, 11)),
    ("8.2.1 upper-case header name",
     lambda e: headers(e, 1, extra=[("X-Upper", "v")]), "stream", (PROTOCOL,)),
    ("8.2.2 connection-specific header",
     lambda e: headers(e, 1, extra=[("connection", "keep-alive")]), "stream", (PROTOCOL,)),
    ("8.2.2 TE other than trailers", lambda e: headers(e, 1, extra=[("te", "gzip")]),
     "stream", (PROTOCOL,)),
    ("8.3 pseudo-header after a regular one",
     lambda e: frame(HEADERS, ES | EH, 1, e.encode([(":method", "GET"), (":scheme", "http"),
                                                    ("x-a", "b"), (":path", "/")])),
     "stream", (PROTOCOL,)),
    ("8.3 unknown pseudo-header", lambda e: headers(e, 1, extra=[(":foo", "bar")]), "stream",
     (PROTOCOL,)),
    ("8.3 response pseudo-header in a request",
     lambda e: headers(e, 1, extra=[(":status", "200")]), "stream", (PROTOCOL,)),
    ("8.3 missing :method",
     lambda e: frame(HEADERS, ES | EH, 1, e.encode([(":scheme", "http"), (":path", "/")])),
     "stream", (PROTOCOL,)),
    ("8.3 duplicate :path",
     lambda e: headers(e, 1, extra=[(":path", "/again")]), "stream", (PROTOCOL,)),
    ("8.3 empty :path",
     lambda e: frame(HEADERS, ES | EH, 1, e.encode([(":method", "GET"), (":scheme", "http"),
                                                    (":path", ""), (":authority", "x")])),
     "stream", (PROTOCOL,)),
    ("8.1 trailers with a pseudo-header",
     lambda e: post(e, 1) + frame(DATA, 0, 1, b"x")
     + frame(HEADERS, ES | EH, 1, e.encode([(":path", "/")])), "stream", (PROTOCOL,)),
    ("8.1.1 content-length greater than the DATA",
     lambda e: post(e, 1, [("content-length", "10")]) + frame(DATA, ES, 1, b"abc"), "stream",
     (PROTOCOL,)),
    ("8.1.1 DATA beyond content-length",
     lambda e: post(e, 1, [("content-length", "1")]) + frame(DATA, ES, 1, b"abc"), "stream",
     (PROTOCOL,)),
]


def parse(buf):
    out = []
    while len(buf) >= 9:
        n = struct.unpack(">I", b"\x00" + buf[:3])[0]
        if len(buf) < 9 + n:
            break
        out.append((buf[3], buf[4], struct.unpack(">I", buf[5:9])[0] & 0x7fffffff,
                    buf[9:9 + n]))
        buf = buf[9 + n:]
    return out, buf


def run_case(port, builder, timeout=4.0):
    """Frames the server sent and whether it closed the connection."""
    enc = Encoder()
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    frames = []
    closed = False
    try:
        if builder is None:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + frame(SETTINGS, 0, 0))
        else:
            s.sendall(PREFACE + frame(SETTINGS, 0, 0) + frame(SETTINGS, ACK, 0))
            parts = builder(enc)
            if isinstance(parts, list):
                # send the first part, wait for its response to end
                s.sendall(parts.pop(0))
                buf = b""
                while not any(f[0] in (HEADERS, DATA) and f[1] & ES for f in frames):
                    fs, buf = parse(buf + s.recv(65536))
                    frames += fs
                frames = []
                parts = b"".join(parts)
            s.sendall(parts)
        buf = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                data = s.recv(65536)
            except (ConnectionResetError, socket.timeout):
                closed = True
                break
            if not data:
                closed = True
                break
            fs, buf = parse(buf + data)
            frames += fs
            if any(f[0] in (GOAWAY, RST) for f in frames) or \
                    any(f[0] == PING and f[1] & ACK for f in frames):
                break
    finally:
        s.close()
    return frames, closed


def judge(frames, closed, kind, codes, raw_preface=False):
    goaways = [struct.unpack(">I", f[3][4:8])[0] for f in frames if f[0] == GOAWAY]
    rsts = [struct.unpack(">I", f[3][:4])[0] for f in frames if f[0] == RST]
    if kind == "serves":
        return any(f[0] == PING and f[1] & ACK and f[3] == PING8 for f in frames) \
            and not goaways
    if raw_preface:
        return closed or bool(goaways) or not any(f[0] == SETTINGS for f in frames)
    if goaways:
        return goaways[0] in codes
    if kind == "stream" and rsts:
        return rsts[0] in codes
    return closed


@pytest.fixture(scope="module")
def port(h2srv):
    return h2srv.port


@pytest.mark.parametrize("name, builder, kind, codes", CASES, ids=[c[0] for c in CASES])
def test_negative(port, name, builder, kind, codes):
    frames, closed = run_case(port, builder)
    assert judge(frames, closed, kind, codes, raw_preface=builder is None), \
        "%s: got %r closed=%s" % (name, [(f[0], f[1], f[2], f[3][:8]) for f in frames], closed)

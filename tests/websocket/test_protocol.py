"""kore_websocket.protocol.MessageReader in process: the RFC 6455 rules the
server enforces on what a client sends, case by case (the Autobahn|Testsuite
groups they correspond to are named), without a socket."""

import struct
import zlib

import pytest

from kore_websocket.frames import (OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, Deflate,
                                   ProtocolError, negotiate_deflate)
from kore_websocket.protocol import (FAIL, MessageReader, close_frame, close_reply,
                                     fail_frame, pong_frame)
from ws_raw import frame

MAX = 16384


def events(data, maxframe=MAX, deflate=None, reader=None):
    r = reader or MessageReader(maxframe, deflate)
    out = list(r.feed(data))
    return [(k, (v.code, str(v)) if k == FAIL else v) for k, v in out]


def fail_code(data, **kw):
    ev = events(data, **kw)
    assert ev and ev[-1][0] == FAIL, ev
    return ev[-1][1][0]


def close(code, reason=b""):
    return frame(OP_CLOSE, struct.pack("!H", code) + reason)


def deflated(data, z=None):
    """A client's permessage-deflate payload (the sync-flush tail removed)."""
    z = z or zlib.compressobj(6, zlib.DEFLATED, -15)
    out = z.compress(data) + z.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


# ---------------------------------------------------------------------------
# messages and fragmentation (Autobahn 1.x, 5.x)
# ---------------------------------------------------------------------------

def test_text_is_str_binary_is_bytes():
    assert events(frame(OP_TEXT, "héllo".encode()) + frame(OP_BINARY, b"\x00\xff")) == [
        (OP_TEXT, "héllo"), (OP_BINARY, b"\x00\xff")]


def test_empty_and_long_lengths():
    big = b"x" * 70000                       # 64-bit length
    mid = b"y" * 300                         # 16-bit length
    assert events(frame(OP_BINARY, b"") + frame(OP_BINARY, mid) + frame(OP_BINARY, big),
                  maxframe=100000) == [(OP_BINARY, b""), (OP_BINARY, mid), (OP_BINARY, big)]


def test_bytes_fed_one_at_a_time():
    data = frame(OP_TEXT, b"abc", fin=False) + frame(0, b"def") + frame(OP_BINARY, b"z" * 200)
    r = MessageReader(MAX)
    got = []
    for i in range(len(data)):
        got.extend(r.feed(data[i:i + 1]))
    assert got == [(OP_TEXT, "abcdef"), (OP_BINARY, b"z" * 200)]


def test_fragmented_text_with_utf8_sequences_split_between_fragments():
    text = "κόσμε €𝄞"
    raw = text.encode("utf-8")
    # cut inside every multi-byte sequence: one byte per fragment
    data = b"".join(frame(OP_TEXT if i == 0 else 0, raw[i:i + 1], fin=i == len(raw) - 1)
                    for i in range(len(raw)))
    assert events(data) == [(OP_TEXT, text)]


def test_fragmented_binary_and_empty_fragments():
    data = (frame(OP_BINARY, b"", fin=False) + frame(0, b"ab", fin=False)
            + frame(0, b"", fin=False) + frame(0, b"c"))
    assert events(data) == [(OP_BINARY, b"abc")]


def test_ping_between_fragments_comes_first():
    data = (frame(OP_TEXT, b"ab", fin=False) + frame(OP_PING, b"mid")
            + frame(0, b"cd", fin=False) + frame(OP_PONG, b"p") + frame(0, b"ef"))
    r = MessageReader(MAX)
    got = list(r.feed(data[:len(data) - 4]))
    assert got == [(OP_PING, b"mid"), (OP_PONG, b"p")] and r.in_message
    got = list(r.feed(data[len(data) - 4:]))
    assert got == [(OP_TEXT, "abcdef")] and not r.in_message


def test_control_frames_at_the_limit():
    assert events(frame(OP_PING, b"p" * 125)) == [(OP_PING, b"p" * 125)]
    assert events(frame(OP_PONG, b"")) == [(OP_PONG, b"")]


@pytest.mark.parametrize("data, why", [
    (frame(0, b"stray"), "continuation without a message"),
    (frame(0, b"stray", fin=False), "continuation without a message"),
    (frame(OP_TEXT, b"a", fin=False) + frame(OP_TEXT, b"b"), "new message inside"),
    (frame(OP_TEXT, b"a", fin=False) + frame(OP_BINARY, b"b"), "new message inside"),
], ids=["stray", "stray-unfinished", "text-inside-text", "binary-inside-text"])
def test_bad_continuation_1002(data, why):
    ev = events(data)
    assert ev[-1][0] == FAIL and ev[-1][1][0] == 1002 and why in ev[-1][1][1]


# ---------------------------------------------------------------------------
# framing errors (Autobahn 2.x, 3.x, 4.x)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("op", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_reserved_opcodes_1002(op):
    assert fail_code(frame(op, b"x")) == 1002


@pytest.mark.parametrize("rsv", [0x10, 0x20, 0x30, 0x40, 0x70])
def test_reserved_bits_without_deflate_1002(rsv):
    assert fail_code(frame(OP_TEXT, b"x", rsv=rsv)) == 1002


def test_reserved_bits_with_deflate():
    d = Deflate()
    assert fail_code(frame(OP_TEXT, b"x", rsv=0x20), deflate=d) == 1002
    assert fail_code(frame(OP_PING, b"x", rsv=0x40), deflate=d) == 1002       # control
    assert fail_code(frame(OP_BINARY, deflated(b"ab"), fin=False, rsv=0x40)
                     + frame(0, b"", rsv=0x40), deflate=d) == 1002           # continuation


def test_oversized_and_fragmented_control_frames_1002():
    assert fail_code(frame(OP_PING, b"x" * 126)) == 1002
    assert fail_code(frame(OP_CLOSE, struct.pack("!H", 1000) + b"r" * 124)) == 1002
    assert fail_code(frame(OP_PING, b"frag", fin=False)) == 1002
    assert fail_code(frame(OP_PONG, b"", fin=False)) == 1002


def test_unmasked_frame_1002():
    assert fail_code(frame(OP_BINARY, b"x", mask=False)) == 1002


def test_length_with_top_bit_1002():
    assert fail_code(bytes((0x82, 0xFF)) + struct.pack("!Q", 1 << 63) + b"mask") == 1002


def test_messages_before_an_error_are_delivered_then_nothing():
    r = MessageReader(MAX)
    ev = events(frame(OP_TEXT, b"one") + frame(OP_PING, b"") + frame(3, b"") + frame(
        OP_TEXT, b"after"), reader=r)
    assert [k for k, _ in ev] == [OP_TEXT, OP_PING, FAIL] and ev[0] == (OP_TEXT, "one")
    assert r.finished and list(r.feed(frame(OP_TEXT, b"more"))) == []


# ---------------------------------------------------------------------------
# UTF-8 (Autobahn 6.x)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80",   # a surrogate
    b"\xff", b"\xc0\xaf",                                          # invalid, overlong
    b"\xf4\x90\x80\x80",                                           # above U+10FFFF
    b"ok \xf0\x90",                                                # truncated at the end
])
def test_invalid_utf8_in_one_frame_1007(raw):
    assert fail_code(frame(OP_TEXT, raw)) == 1007


def test_invalid_utf8_caught_in_the_fragment_that_holds_it():
    r = MessageReader(MAX)
    assert list(r.feed(frame(OP_TEXT, b"ok \xf0\x90", fin=False))) == []   # may continue
    ev = events(frame(0, b"\x80\x28", fin=False), reader=r)                  # cannot
    assert ev == [(FAIL, (1007, "invalid UTF-8 in a text message"))]


def test_message_ending_inside_a_utf8_sequence_1007():
    assert fail_code(frame(OP_TEXT, b"ok \xf0\x90", fin=False) + frame(0, b"\x80")) == 1007


def test_binary_is_not_validated():
    assert events(frame(OP_BINARY, b"\xff\xfe")) == [(OP_BINARY, b"\xff\xfe")]


# ---------------------------------------------------------------------------
# close (Autobahn 7.x)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                                  1012, 1013, 1014, 3000, 3999, 4000, 4999])
def test_valid_close_codes(code):
    assert events(close(code, "bye é".encode())) == [(OP_CLOSE, (code, "bye é"))]


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999,
                                  5000, 65535])
def test_invalid_close_codes_1002(code):
    assert fail_code(close(code)) == 1002


def test_close_payloads():
    assert events(frame(OP_CLOSE, b"")) == [(OP_CLOSE, (1005, ""))]
    assert fail_code(frame(OP_CLOSE, b"\x03")) == 1002                    # 1 byte
    assert fail_code(close(1000, b"\xff")) == 1007                        # reason not UTF-8


def test_nothing_after_the_close_frame():
    r = MessageReader(MAX)
    ev = events(frame(OP_TEXT, b"last") + close(1000) + frame(OP_TEXT, b"after"), reader=r)
    assert ev == [(OP_TEXT, "last"), (OP_CLOSE, (1000, ""))]
    assert r.finished and list(r.feed(frame(OP_PING, b""))) == []


def test_reply_frames():
    assert close_reply(1005) == b"\x88\x00"
    assert close_reply(4000) == b"\x88\x02" + struct.pack("!H", 4000)
    assert close_frame(1001, "idle") == b"\x88\x06" + struct.pack("!H", 1001) + b"idle"
    assert close_frame(None) == b"\x88\x00"
    assert fail_frame(ProtocolError(1007, "bad")) == b"\x88\x05\x03\xefbad"
    assert pong_frame(b"hi") == b"\x8a\x02hi"


# ---------------------------------------------------------------------------
# size limits (Autobahn 9.x with a small limit)
# ---------------------------------------------------------------------------

def test_frame_over_the_limit_fails_from_its_header():
    head = frame(OP_BINARY, b"x" * 1025)[:8]          # header and mask key only
    assert fail_code(head, maxframe=1024) == 1009
    assert events(frame(OP_BINARY, b"x" * 1024), maxframe=1024) == [(OP_BINARY, b"x" * 1024)]


def test_fragments_adding_up_over_the_limit_1009():
    data = frame(OP_BINARY, b"x" * 600, fin=False) + frame(0, b"x" * 600)
    assert fail_code(data, maxframe=1024) == 1009
    data = frame(OP_TEXT, b"x" * 512, fin=False) + frame(0, b"x" * 512)
    assert events(data, maxframe=1024) == [(OP_TEXT, "x" * 1024)]


# ---------------------------------------------------------------------------
# permessage-deflate (Autobahn 12.x, 13.x)
# ---------------------------------------------------------------------------

def test_deflated_messages_with_context_takeover():
    z = zlib.compressobj(6, zlib.DEFLATED, -15)
    text = "compress me " * 100
    data = (frame(OP_TEXT, deflated(text.encode(), z), rsv=0x40)
            + frame(OP_TEXT, deflated(text.encode(), z), rsv=0x40)     # uses the history
            + frame(OP_BINARY, b"plain"))                              # uncompressed
    assert events(data, deflate=Deflate()) == [
        (OP_TEXT, text), (OP_TEXT, text), (OP_BINARY, b"plain")]


def test_client_no_context_takeover_gets_a_fresh_inflater():
    _, d = negotiate_deflate(["permessage-deflate; client_no_context_takeover"])
    r = MessageReader(MAX, d)
    for _ in range(3):                       # each message compressed on its own
        assert list(r.feed(frame(OP_BINARY, deflated(b"abc" * 50), rsv=0x40))) == [
            (OP_BINARY, b"abc" * 50)]


def test_deflated_fragments_with_utf8_split_and_ping_between():
    text = "κόσμε " * 200
    z = deflated(text.encode())
    third = len(z) // 3
    data = (frame(OP_TEXT, z[:third], fin=False, rsv=0x40) + frame(OP_PING, b"")
            + frame(0, z[third:2 * third], fin=False) + frame(0, z[2 * third:]))
    assert events(data, deflate=Deflate()) == [(OP_PING, b""), (OP_TEXT, text)]


def test_inflated_size_limit_1009():
    bomb = deflated(b"\x00" * 1_000_000)       # about 1 KB on the wire
    assert len(bomb) < 2048
    assert fail_code(frame(OP_BINARY, bomb, rsv=0x40), maxframe=MAX, deflate=Deflate()) == 1009
    ok = deflated(b"\x00" * MAX)
    assert events(frame(OP_BINARY, ok, rsv=0x40), deflate=Deflate()) == [
        (OP_BINARY, b"\x00" * MAX)]


def test_corrupt_deflate_stream_1002():
    assert fail_code(frame(OP_BINARY, b"\xff\xff\xff\xff", rsv=0x40), deflate=Deflate()) == 1002


def test_deflated_text_with_invalid_utf8_1007():
    assert fail_code(frame(OP_TEXT, deflated(b"ok \xff"), rsv=0x40), deflate=Deflate()) == 1007

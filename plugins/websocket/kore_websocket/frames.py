"""RFC 6455 framing and RFC 7692 permessage-deflate, without I/O.

The parser works on a ``bytearray`` the connection appends to; the encoder
returns whole frames as bytes.  Unmasking XORs the payload as one big
integer, which runs at memory speed in CPython without a C extension.
"""

import struct
import zlib

OP_CONT = 0
OP_TEXT = 1
OP_BINARY = 2
OP_CLOSE = 8
OP_PING = 9
OP_PONG = 10

_H16 = struct.Struct("!BBH")
_H64 = struct.Struct("!BBQ")
_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")

# close codes a peer may send (RFC 6455 7.4.1 and the IANA registry)
VALID_CLOSE = frozenset((1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011,
                         1012, 1013, 1014))


class ProtocolError(Exception):
    """Fail the connection with ``code`` (1002, 1007, 1009)."""

    def __init__(self, code, reason):
        Exception.__init__(self, reason)
        self.code = code
        self.reason = reason


def unmask(mask, data):
    n = len(data)
    if n == 0:
        return b""
    if n < 8:
        return bytes(b ^ mask[i & 3] for i, b in enumerate(data))
    key = (mask * ((n >> 2) + 1))[:n]
    return (int.from_bytes(data, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def encode(op, payload, rsv1=False, fin=True):
    """One unmasked (server) frame."""
    n = len(payload)
    b0 = op | (0x80 if fin else 0) | (0x40 if rsv1 else 0)
    if n < 126:
        return bytes((b0, n)) + payload
    if n < 65536:
        return _H16.pack(b0, 126, n) + payload
    return _H64.pack(b0, 127, n) + payload


def close_payload(code, reason=""):
    if code is None:
        return b""
    r = reason.encode("utf-8") if isinstance(reason, str) else bytes(reason)
    return _U16.pack(code) + r[:123]


def parse_close(payload):
    """(code, reason) of a received close frame; ProtocolError if invalid."""
    n = len(payload)
    if n == 0:
        return 1005, ""
    if n == 1:
        raise ProtocolError(1002, "close frame with a 1-byte payload")
    code = _U16.unpack_from(payload)[0]
    if not (code in VALID_CLOSE or 3000 <= code <= 4999):
        raise ProtocolError(1002, "invalid close code %d" % code)
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(1007, "close reason is not UTF-8") from None
    return code, reason


def parse_frame(buf, pos, maxframe):
    """Parse one client frame at ``buf[pos:]``.

    Returns None when more bytes are needed, else ``(b0, payload, next_pos)``
    where ``b0`` is the first header byte (FIN, RSV and opcode).
    """
    avail = len(buf) - pos
    if avail < 2:
        return None
    b0 = buf[pos]
    b1 = buf[pos + 1]
    if not b1 & 0x80:
        raise ProtocolError(1002, "unmasked client frame")
    n = b1 & 0x7F
    hdr = 6
    if n == 126:
        if avail < 8:
            return None
        n = _U16.unpack_from(buf, pos + 2)[0]
        hdr = 8
    elif n == 127:
        if avail < 14:
            return None
        n = _U64.unpack_from(buf, pos + 2)[0]
        if n >> 63:
            raise ProtocolError(1002, "frame length has the top bit set")
        hdr = 14
    if b0 & 0x08 and (n > 125 or not b0 & 0x80):
        raise ProtocolError(1002, "control frame too long or fragmented")
    if n > maxframe:
        raise ProtocolError(1009, "frame of %d bytes exceeds websocket_maxframe" % n)
    end = pos + hdr + n
    if len(buf) < end:
        return None
    mask = bytes(buf[pos + hdr - 4:pos + hdr])
    return b0, unmask(mask, buf[pos + hdr:end]), end


# ---------------------------------------------------------------------------
# permessage-deflate (RFC 7692)
# ---------------------------------------------------------------------------

_TAIL = b"\x00\x00\xff\xff"


def _parse_offers(header_values):
    """[(name, {param: value|None})] from Sec-WebSocket-Extensions values."""
    offers = []
    for value in header_values:
        for ext in value.split(","):
            parts = [p.strip() for p in ext.split(";")]
            if not parts[0]:
                continue
            params = {}
            dup = False
            for p in parts[1:]:
                if not p:
                    continue
                k, _, v = p.partition("=")
                k = k.strip().lower()
                v = v.strip().strip('"') if _ else None
                if k in params:
                    dup = True
                params[k] = v
            offers.append((parts[0].lower(), params, dup))
    return offers


def negotiate_deflate(header_values):
    """Accept the first acceptable permessage-deflate offer.

    Returns ``(response_header_value, Deflate)`` or ``(None, None)``.
    """
    for name, params, dup in _parse_offers(header_values):
        if name != "permessage-deflate" or dup:
            continue
        ok = True
        server_bits = 15
        resp = ["permessage-deflate"]
        for k, v in params.items():
            if k == "server_no_context_takeover":
                if v is not None:
                    ok = False
            elif k == "client_no_context_takeover":
                if v is not None:
                    ok = False
            elif k == "server_max_window_bits":
                if v is None or not v.isdigit() or not 8 <= int(v) <= 15 or v[0] == "0":
                    ok = False
                else:
                    server_bits = int(v)
            elif k == "client_max_window_bits":
                if v is not None and (not v.isdigit() or not 8 <= int(v) <= 15
                                      or v[0] == "0"):
                    ok = False
            else:
                ok = False
        if not ok:
            continue
        snct = "server_no_context_takeover" in params
        cnct = "client_no_context_takeover" in params
        if snct:
            resp.append("server_no_context_takeover")
        if cnct:
            resp.append("client_no_context_takeover")
        if "server_max_window_bits" in params:
            resp.append("server_max_window_bits=%d" % server_bits)
        return "; ".join(resp), Deflate(server_bits, snct, cnct)
    return None, None


class Deflate:
    """Per-connection compression state."""

    __slots__ = ("bits", "snct", "cnct", "_c", "_d", "min_size")

    def __init__(self, server_bits=15, server_no_context_takeover=False,
                 client_no_context_takeover=False, min_size=64):
        # zlib cannot produce a raw deflate stream with a 256-byte window:
        # with server_max_window_bits=8 we send messages uncompressed, which
        # RFC 7692 allows.
        self.bits = server_bits if server_bits > 8 else 0
        self.snct = server_no_context_takeover
        self.cnct = client_no_context_takeover
        self._c = None
        self._d = None
        self.min_size = min_size

    def compress(self, data):
        """Compressed payload (RSV1 frame), or None to send it as is."""
        if not self.bits or len(data) < self.min_size:
            return None
        c = self._c
        if c is None:
            c = zlib.compressobj(6, zlib.DEFLATED, -self.bits, 8)
            if not self.snct:
                self._c = c
        out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
        if out.endswith(_TAIL):
            out = out[:-4]
        return out

    def decompressor(self):
        d = self._d
        if d is None:
            d = zlib.decompressobj(-15)
            if not self.cnct:
                self._d = d
        return d

    @staticmethod
    def inflate(d, data, limit):
        """Inflate ``data`` with at most ``limit`` bytes out; ProtocolError
        1009 above, 1002 on a corrupt stream."""
        try:
            out = d.decompress(data, limit + 1)
        except zlib.error as exc:
            raise ProtocolError(1002, "invalid deflate data: %s" % exc) from None
        if len(out) > limit or d.unconsumed_tail:
            raise ProtocolError(1009, "decompressed message exceeds websocket_maxframe")
        return out

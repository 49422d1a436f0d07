"""The RFC 6455 message layer of a server connection, without I/O.

``MessageReader`` takes the bytes a client sent, in whatever pieces they
arrived, and turns them into events; the connection's read loop only reads
the socket and acts on those events (``transport.py``)::

    reader = MessageReader(maxframe=16384, deflate=None)
    for kind, value in reader.feed(data):
        ...

An event is a ``(kind, value)`` tuple; ``kind`` is the opcode, so that the
read loop dispatches on one small int:

``(OP_TEXT, str)`` / ``(OP_BINARY, bytes)``
    one whole message: fragments reassembled, permessage-deflate inflated,
    text validated as UTF-8 (incrementally across fragments, so a sequence
    split between two fragments is fine and an invalid one is caught in the
    fragment that holds it);
``(OP_PING, bytes)`` / ``(OP_PONG, bytes)``
    a control frame, possibly between the fragments of a message (the reply
    to a ping is ``pong_frame(payload)``);
``(OP_CLOSE, (code, reason))``
    the client's close frame (code 1005 when it had no payload; the reply is
    ``close_reply(code)``); the reader is finished;
``(FAIL, ProtocolError)``
    the client broke the protocol: fail the connection with ``exc.code``
    (1002 protocol error, 1007 invalid UTF-8, 1009 too big; the frame is
    ``fail_frame(exc)``); the reader is finished.

Events come in the order of the frames, so the messages before a protocol
error in the same read are still delivered.  After CLOSE or FAIL, ``feed``
returns no more events.

Limits: ``maxframe`` is the largest frame payload (checked from the frame
header, before the payload arrives) and the largest message after
reassembly and inflation (inflation stops at the limit: a few bytes that
inflate to gigabytes never get allocated).
"""

import codecs

from .frames import (_TAIL, OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                     Deflate, ProtocolError, close_payload, encode, parse_close,
                     parse_frame)

FAIL = 16                  # not an opcode (those are 0-15)

_NO_EVENTS = ()
_utf8_decoder = codecs.getincrementaldecoder("utf-8")
_inflate = Deflate.inflate


class MessageReader:
    """Client frames in, message and control events out (see the module)."""

    __slots__ = ("maxframe", "deflate", "finished", "_buf", "_op", "_parts", "_size",
                 "_utf8", "_inflater")

    def __init__(self, maxframe, deflate=None):
        self.maxframe = maxframe
        self.deflate = deflate          # frames.Deflate when negotiated, else None
        self.finished = False           # a CLOSE or FAIL event was returned
        self._buf = bytearray()
        self._op = 0                    # opcode of the fragmented message being read
        self._parts = None
        self._size = 0
        self._utf8 = None               # incremental decoder of a fragmented text
        self._inflater = None           # zlib decompressor of a compressed message

    @property
    def in_message(self):
        """True between the first and the last fragment of a message."""
        return bool(self._op)

    def feed(self, data):
        """Append ``data`` and return the events of every complete frame."""
        if self.finished:
            return _NO_EVENTS
        buf = self._buf
        if buf:
            buf += data
        else:
            buf = data          # parse the read in place; keep only a partial frame
        maxframe = self.maxframe
        events = []
        pos = 0
        try:
            while True:
                r = parse_frame(buf, pos, maxframe)
                if r is None:
                    break
                b0, payload, pos = r
                op = b0 & 0x0F
                if b0 & 0x70:
                    # RSV1 only marks the first frame of a compressed message
                    if (b0 & 0x30 or self.deflate is None or op == OP_CONT
                            or op >= OP_CLOSE):
                        raise ProtocolError(1002, "reserved bits set")
                if op >= OP_CLOSE:
                    if op == OP_CLOSE:
                        events.append((OP_CLOSE, parse_close(payload)))
                        self._finish()
                        return events
                    if op != OP_PING and op != OP_PONG:
                        raise ProtocolError(1002, "reserved opcode %d" % op)
                    events.append((op, payload))
                    continue
                if op == OP_TEXT or op == OP_BINARY:
                    if self._op:
                        raise ProtocolError(1002, "new message inside a fragmented one")
                    if b0 & 0x80 and not b0 & 0x40:
                        # the common case: one uncompressed, unfragmented frame
                        if op == OP_TEXT:
                            try:
                                payload = payload.decode("utf-8")
                            except UnicodeDecodeError:
                                raise ProtocolError(1007, "invalid UTF-8 in a text "
                                                    "message") from None
                        events.append((op, payload))
                        continue
                    self._start(op, b0 & 0x40)
                elif op != OP_CONT:
                    raise ProtocolError(1002, "reserved opcode %d" % op)
                elif not self._op:
                    raise ProtocolError(1002, "continuation without a message")
                message = self._fragment(payload, b0 & 0x80)
                if message is not None:
                    events.append(message)
        except ProtocolError as exc:
            events.append((FAIL, exc))
            self._finish()
            return events
        if buf is data:
            if pos < len(data):
                self._buf = bytearray(data[pos:] if pos else data)
        elif pos:
            del buf[:pos]
        return events

    def _start(self, op, compressed):
        self._op = op
        self._parts = []
        self._size = 0
        if op == OP_TEXT:
            self._utf8 = _utf8_decoder("strict")
        if compressed:
            self._inflater = self.deflate.decompressor()

    def _fragment(self, payload, fin):
        """Add one frame of the current message; the event once it is whole."""
        limit = self.maxframe - self._size
        inflater = self._inflater
        if inflater is not None:
            payload = _inflate(inflater, payload, limit)
            if fin:
                payload += _inflate(inflater, _TAIL, limit - len(payload))
        self._size += len(payload)
        if self._size > self.maxframe:
            raise ProtocolError(1009, "message exceeds websocket_maxframe")
        utf8 = self._utf8
        if utf8 is not None:
            try:
                self._parts.append(utf8.decode(payload, bool(fin)))
            except UnicodeDecodeError:
                raise ProtocolError(1007, "invalid UTF-8 in a text message") from None
        else:
            self._parts.append(payload)
        if not fin:
            return None
        op = self._op
        data = "".join(self._parts) if utf8 is not None else b"".join(self._parts)
        self._op = 0
        self._parts = self._utf8 = self._inflater = None
        return op, data

    def _finish(self):
        self.finished = True
        self._buf = bytearray()
        self._parts = self._utf8 = self._inflater = None


def pong_frame(payload):
    """The answer to a ping."""
    return encode(OP_PONG, payload)


def close_frame(code=1000, reason=""):
    """A close frame with ``code`` (None: without a payload)."""
    return encode(OP_CLOSE, close_payload(code, reason))


def close_reply(code):
    """The answer to the client's close frame: the same code, or no payload
    when the client sent none (1005)."""
    return close_frame(None if code == 1005 else code)


def fail_frame(exc):
    """The close frame that fails the connection for ``ProtocolError`` exc."""
    return close_frame(exc.code, exc.reason)

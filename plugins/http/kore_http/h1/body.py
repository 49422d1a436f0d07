"""Reading an HTTP/1.1 request body: Content-Length or chunked (RFC 9112
section 7.1), with trailers validated and discarded.

``read(conn, req, sink)`` consumes the body of the current request from the
connection's buffer (``conn.buf`` from ``conn.pos``) and the socket, feeds
``sink`` and leaves ``conn.buf``/``conn.pos`` just past the body (where a
pipelined request may start).  Raises HttpError (400, 408, 413, 431) or
ClientGone.
"""

import time

from ..parser import HttpError, chunk_size
from ..settings import SETTINGS as S

monotonic = time.monotonic
CHUNK_LINE_MAX = 4096


def read(c, req, sink):
    buf, pos = c.buf, c.pos
    length = c.blen
    deadline = monotonic() + S.body_timeout - c.paused_total
    if req.expect_continue:
        req.expect_continue = False
        if len(buf) - pos == 0:
            c.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    recv = c.recv_before
    if not c.bchunked:
        avail = len(buf) - pos
        if avail >= length:
            sink.write(buf[pos:pos + length])
            sink.done()
            c.pos = pos + length
            return
        if avail:
            sink.write(buf[pos:] if pos else buf)
        need = length - avail
        while need > 0:
            data = recv(deadline)
            if len(data) > need:
                sink.write(data[:need])
                sink.done()
                c.buf, c.pos = data, need
                return
            sink.write(data)
            need -= len(data)
        sink.done()
        c.buf, c.pos = b"", 0
        return
    # chunked
    total = 0
    while True:
        nl = buf.find(b"\n", pos)
        while nl < 0:
            if len(buf) - pos > CHUNK_LINE_MAX:
                raise HttpError(400, "chunk size line too long")
            buf = buf[pos:] + recv(deadline)
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
        if total > S.body_max:
            raise HttpError(413, "body too large")
        while len(buf) - pos < size + 2:
            if len(buf) - pos > 65536 and len(buf) - pos < size:
                # stream big chunks through the sink
                piece = buf[pos:]
                sink.write(piece)
                size -= len(piece)
                buf, pos = recv(deadline), 0
                continue
            buf = buf[pos:] + recv(deadline)
            pos = 0
        sink.write(buf[pos:pos + size])
        pos += size
        if buf[pos:pos + 2] != b"\r\n":
            raise HttpError(400, "chunk data not followed by CRLF")
        pos += 2
    # trailer section: field lines up to an empty line
    tsize = 0
    while True:
        nl = buf.find(b"\n", pos)
        while nl < 0:
            if len(buf) - pos > S.header_max:
                raise HttpError(431, "trailers too large")
            buf = buf[pos:] + recv(deadline)
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
        if tsize > S.header_max:
            raise HttpError(431, "trailers too large")
    sink.done()
    c.buf, c.pos = buf, pos

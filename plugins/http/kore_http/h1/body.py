"""Reading an HTTP/1.1 request body: Content-Length or chunked (RFC 9112
section 7.1, ``chunked.ChunkedDecoder``), trailers validated and discarded.

``read(conn, req, sink)`` consumes the body of the current request from the
connection's buffer (``conn.buf`` from ``conn.pos``) and the socket, feeds
``sink`` and leaves ``conn.buf``/``conn.pos`` just past the body (where a
pipelined request may start).  Raises HttpError (400, 408, 413, 431) or
ClientGone.
"""

import time

from ..settings import SETTINGS as S
from .chunked import ChunkedDecoder

monotonic = time.monotonic


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
    # chunked: the sans-I/O decoder, fed what is buffered, then each read
    dec = ChunkedDecoder(S.body_max, S.header_max)
    data = buf[pos:] if pos else buf
    while True:
        for piece in dec.feed(data):
            sink.write(piece)
        if dec.done:
            break
        data = recv(deadline)
    sink.done()
    c.buf, c.pos = dec.rest, 0

"""``H1Connection``: one HTTP/1.1 client connection, and the stream of the
request it is serving.

HTTP/1.1 runs one request at a time per connection, so the connection object
itself implements the ``Stream`` interface for its current request (no
object per request): status lines, Content-Length or chunked bodies (close-
delimited for HTTP/1.0), ``Connection:`` keep-alive/close, ``100 Continue``,
switching protocols, pause/resume and the disconnect watcher that cancels a
suspended handler when the client goes away.  Each complete response is one
``send`` (head and body joined), made by the event loop once it has run
every connection that was readable, the way an asyncio server's transport
writes (see ``hold``); the responses to requests pipelined in one read go
out together in that one send.
"""

import socket
import ssl
import time

from gevent import GreenletExit, get_hub
from gevent.event import Event

from ..net import Client, CONNS, Expired, FRESH_GRACE
from ..parser import HttpError
from ..response import DONE
from ..settings import SETTINGS as S
from ..status import HEADERS, REASONS, STATUS_LINES, status_line
from ..stream import ClientGone, Stream
from . import body as _body
from .errors import send_error

monotonic = time.monotonic

# held pipelined responses are sent once they reach this many bytes
BATCH_MAX = 65536


def _header_block(rh):
    """(bytes of the header lines, has Content-Length, has Date) of
    [[name, value]]; a handler (a proxy relaying its upstream's) may set
    its own Date."""
    hs = "\r\n".join(map(": ".join, rh))
    # values hold no CR/LF, so only a name can follow a line start
    low = "\n" + hs.lower()
    return hs.encode("latin-1") + b"\r\n", "\ncontent-length:" in low, "\ndate:" in low


class H1Connection(Client, Stream):
    __slots__ = ("keepalive", "hsts", "watcher", "rwatcher", "idle", "req",
                 "buffered", "requests", "pause_evt", "pause_t0", "paused_total",
                 "watch_paused", "buf", "pos", "blen", "bchunked", "chunked",
                 "pending", "corked", "http_version", "batch", "batch_len",
                 "flush_cb", "wwatcher")

    def __init__(self, client):
        self.adopt(client)
        self.hsts = (b"Strict-Transport-Security: max-age=%d; includeSubDomains\r\n"
                     % S.hsts if self.tls and S.hsts > 0 else None)
        self.keepalive = True
        self.watcher = None
        self.rwatcher = None
        self.idle = False
        self.req = None
        self.buffered = b""
        self.requests = 0
        self.pause_evt = None
        self.pause_t0 = 0.0
        self.paused_total = 0.0
        self.watch_paused = False
        self.buf = b""
        self.pos = 0
        self.blen = 0
        self.bchunked = False
        self.chunked = False
        self.pending = None
        self.corked = None
        self.http_version = "1.1"
        self.batch = None
        self.batch_len = 0
        self.flush_cb = None
        self.wwatcher = None

    # -- writing -------------------------------------------------------------

    def send(self, data):
        # one non-blocking send usually takes it all; gevent waits otherwise
        if self.batch is not None:
            data = self.take_batch() + data
        if self.tls:
            self.sock.sendall(data)
            return
        try:
            n = self.sock._sock.send(data)
        except BlockingIOError:
            n = 0
        if n < len(data):
            self.sock.sendall(memoryview(data)[n:])

    # -- held responses ----------------------------------------------------------
    #
    # A complete response under BATCH_MAX bytes to a plain-TCP keep-alive
    # request is held (``hold``), not sent, and a loop callback
    # (``_flush_soon``) sends what the connection holds once the connection's
    # greenlet waits for anything: its next request, or a handler's I/O.  The
    # event loop runs its callbacks after it has run every connection that
    # was readable, so the responses to one poll's requests go out after all
    # of them are handled: the client, woken by the first, usually finds
    # the others ready as well instead of sleeping and being woken for each
    # (on loopback that wake-up is most of the kernel time of a send).
    # Responses to requests pipelined in one read join the held bytes and
    # go out in the same send.  Held bytes go out first on any other write,
    # and at once when they reach BATCH_MAX.  What a non-blocking send
    # leaves over is written by a write watcher (``_send_held``), so the
    # greenlet can wait for the next request meanwhile.  The invariant: while
    # ``batch`` is set, ``flush_cb`` is queued or ``wwatcher`` is started.

    def hold(self, data):
        b = self.batch
        if b is None:
            self.batch = [data]
            self.batch_len = len(data)
            if self.flush_cb is None and not self._writing():
                self.flush_cb = get_hub().loop.run_callback(self._flush_soon)
        else:
            b.append(data)
            self.batch_len += len(data)
            if self.batch_len >= BATCH_MAX:
                self.flush()

    def _writing(self):
        w = self.wwatcher
        return w is not None and w.active

    def take_batch(self):
        b, self.batch = self.batch, None
        self.batch_len = 0
        return b[0] if len(b) == 1 else b"".join(b)

    def flush(self):
        """Send the held responses, if any (blocks until they are sent)."""
        if self.batch is not None:
            self.send(b"")

    def _flush_soon(self):
        self.flush_cb = None
        self._send_held()

    def _send_held(self):
        # in the hub: a non-blocking send of what is held; the write watcher
        # sends the rest when the socket takes more
        b = self.batch
        if b is not None:
            data = b[0] if len(b) == 1 else b"".join(b)
            try:
                n = self.sock._sock.send(data)
            except BlockingIOError:
                n = 0
            except OSError:
                n = len(data)   # gone: the greenlet's next read or write says so
            if n < len(data):
                self.batch = [data[n:]]
                self.batch_len = len(data) - n
                w = self.wwatcher
                if w is None:
                    w = self.wwatcher = get_hub().loop.io(self.fd, 2)
                if not w.active:
                    w.start(self._send_held)
                return
            self.batch = None
        if self._writing():
            self.wwatcher.stop()

    def _out(self, req, data):
        if self.corked is not None:
            self.corked.append(data)
            return
        req.bytes_sent += len(data)
        self.send(data)

    def cork(self, on):
        if on:
            if self.corked is None:
                self.corked = []
            return
        out, self.corked = self.corked, None
        if out and self.req is not None:
            self._out(self.req, b"".join(out))

    def send_response(self, req, status, body, ctype=None, close=False):
        # the hot path: _header_block and _out inlined
        line = STATUS_LINES.get(status) if type(status) is int else None
        if line is None:
            line, status = status_line(status)
        req._status = status
        head = line + HEADERS.value
        if self.hsts is not None:
            head += self.hsts
        if ctype is not None:
            head += b"Content-Type: " + ctype + b"\r\n"
        rh = req._rheaders
        has_cl = False
        if rh:
            hs = "\r\n".join(map(": ".join, rh))
            # values hold no CR/LF, so only a name can follow a line start
            low = "\n" + hs.lower()
            has_cl = "\ncontent-length:" in low
            if "\ndate:" in low:
                # a handler (a proxy relaying its upstream's) set its own Date
                head = line + HEADERS.nodate + head[len(line) + len(HEADERS.value):]
            head += hs.encode("latin-1") + b"\r\n"
        if close or not self.keepalive:
            req.keepalive = False
        bodyless = status < 200 or status == 204 or status == 304
        if not bodyless and not has_cl:
            head += b"Content-Length: %d\r\n" % len(body)
        if not req.keepalive:
            head += b"Connection: close\r\n\r\n"
        elif req.http11:
            head += b"\r\n"
        else:
            head += b"Connection: keep-alive\r\n\r\n"
        if not bodyless and req._meth != "HEAD":
            head += body
        if self.corked is not None:
            self.corked.append(head)
            return
        req.bytes_sent += len(head)
        if req.keepalive and not self.tls and len(head) < BATCH_MAX:
            self.hold(head)
            return
        if self.batch is not None:
            head = self.take_batch() + head
        if self.tls:
            self.sock.sendall(head)
            return
        try:
            n = self.sock._sock.send(head)
        except BlockingIOError:
            n = 0
        if n < len(head):
            self.sock.sendall(memoryview(head)[n:])

    def send_head(self, req, status, ctype=None):
        line = STATUS_LINES.get(status) if type(status) is int else None
        if line is None:
            line, status = status_line(status)
        req._status = status
        parts = [line, HEADERS.value]
        if self.hsts is not None:
            parts.append(self.hsts)
        if ctype is not None:
            parts.append(b"Content-Type: " + ctype + b"\r\n")
        rh = req._rheaders
        has_cl = False
        if rh:
            block, has_cl, has_date = _header_block(rh)
            parts.append(block)
            if has_date:
                parts[1] = HEADERS.nodate
        head_only = req._meth == "HEAD" or status in (204, 304)
        if has_cl or head_only:
            self.chunked = False
        elif req.http11:
            self.chunked = True
            parts.append(b"Transfer-Encoding: chunked\r\n")
        else:
            # HTTP/1.0: the end of the body is the end of the connection
            self.chunked = False
            req.keepalive = False
        if not req.keepalive or not self.keepalive:
            req.keepalive = False
            parts.append(b"Connection: close\r\n\r\n")
        elif not req.http11:
            parts.append(b"Connection: keep-alive\r\n\r\n")
        else:
            parts.append(b"\r\n")
        # held until the first data: head and first chunk go in one write
        self.pending = b"".join(parts)

    def send_data(self, req, data, end=False):
        out = b""
        if data and req._meth != "HEAD" and req._status not in (204, 304):
            out = b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data
        if end and self.chunked:
            out += b"0\r\n\r\n"
            self.chunked = False
        if self.pending is not None:
            out = self.pending + out
            self.pending = None
        if out:
            self._out(req, out)

    def send_informational(self, req, status, headers=()):
        if not req.http11:
            return        # HTTP/1.0 clients get no 1xx (RFC 9110 15.2)
        line = STATUS_LINES.get(status) if type(status) is int else None
        if line is None:
            line, status = status_line(status)
        if not 100 <= status <= 199 or status == 101:
            raise ValueError("not an informational status: %r" % (status,))
        head = line
        if headers:
            head += _header_block([list(h) for h in headers])[0]
        self.send(head + b"\r\n")

    def upgrade(self, req, handler, status, headers):
        line = STATUS_LINES.get(status) or b"HTTP/1.1 %d %s\r\n" % (
            status, REASONS.get(status, "").encode("latin-1"))
        head = line
        if headers:
            head += _header_block([list(h) for h in headers])[0]
        self.send(head + b"\r\n")
        req.bytes_sent += len(head) + 2

    # -- reading ----------------------------------------------------------------

    def recv_before(self, deadline, status=408):
        """One read before ``deadline`` (taken at the start of a read phase
        as ``monotonic() + timeout - self.paused_total``: time spent paused
        does not count); HttpError(status) past it, ClientGone at EOF."""
        if self.pause_evt is not None:
            self.pause_evt.wait()
        deadline += self.paused_total
        if monotonic() >= deadline:
            raise HttpError(status, "timeout")
        self.deadline = deadline
        try:
            data = self.sock.recv(65536)
        except Expired:
            raise HttpError(status, "timeout") from None
        finally:
            self.deadline = 0.0
        if not data:
            raise ClientGone()
        return data

    # -- the request body ------------------------------------------------------

    def read_body(self, req, sink):
        try:
            _body.read(self, req, sink)
            return True
        except HttpError as exc:
            if exc.status == 500 and req._sent:
                return False
            send_error(self, exc.status, method=req._meth, target=req.target,
                       version=self.http_version)
            return False
        except ClientGone:
            return False

    # -- flow, cancellation, stop ------------------------------------------------

    @property
    def paused(self):
        return self.pause_evt is not None

    def pause(self):
        # socketify's res.pause(): stop reading from the client (request
        # body, next request) and its timeouts until resumed
        if self.pause_evt is None and not self.closed:
            self.pause_evt = Event()
            self.pause_t0 = monotonic()
            w = self.watcher
            if w is not None and w.active:
                w.stop()
                self.watch_paused = True

    def resume(self):
        evt = self.pause_evt
        if evt is None:
            return
        self.pause_evt = None
        self.paused_total += monotonic() - self.pause_t0
        if self.watch_paused:
            # restart the client watch only while the handler still runs
            # (watch_client's stop is the watcher's own, which leaves the
            # flag behind; after the handler the response is DONE)
            self.watch_paused = False
            req = self.req
            if self.watcher is not None and req is not None and req._sent != DONE:
                self.watcher.start(self._readable)
        evt.set()

    def disconnect(self):
        self.keepalive = False
        Client.disconnect(self)

    def watch_client(self, req):
        w = self.watcher
        if w is None:
            w = self.watcher = get_hub().loop.io(self.fd, 1)
        if self.pause_evt is None:
            w.start(self._readable)
            return w.stop
        self.watch_paused = True      # resume() starts it
        return self._unwatch

    def _unwatch(self):
        self.watcher.stop()
        self.watch_paused = False

    def _readable(self):
        # a handler is running: watch for EOF (the client went away)
        w = self.watcher
        if self.tls:
            # a TLS peer's close arrives as a close_notify record, which a
            # peek would take for data: read through OpenSSL instead and keep
            # what is a pipelined request for the connection loop
            try:
                data = self.sock._sslobj.read(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return   # part of a record: wait for the rest
            except (ssl.SSLError, OSError, ValueError, AttributeError):
                data = b""
            w.stop()
            if data:
                self.buffered += data
                return
        else:
            try:
                data = self.sock._sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            w.stop()
            if data:
                return       # a pipelined request: nothing to tell
        req = self.req
        if req is not None and req._sent != DONE:
            req._aborted = True
            self.keepalive = False
            self.glet.throw(GreenletExit())
        elif self.tls:
            self.keepalive = False     # the peer closed: no next request

    def drain(self, now):
        # the worker stops (TERM, or a reload retiring it): a busy connection
        # closes after its response; an idle one, fresh or keep-alive, gets
        # FRESH_GRACE seconds in which a request already on its way is still
        # answered (with Connection: close) instead of being lost to a close
        # racing it, then ends (the sweep expires its wait)
        self.keepalive = False
        if self.idle:
            limit = now + FRESH_GRACE
            if not self.deadline or self.deadline > limit:
                self.deadline = limit

    def close_watchers(self):
        if self.watcher is not None:
            self.watcher.close()
        if self.rwatcher is not None:
            self.rwatcher.close()
        if self.wwatcher is not None:
            self.wwatcher.close()


__all__ = ["H1Connection", "CONNS"]

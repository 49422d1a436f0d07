"""``H2Stream``: one HTTP/2 stream as the ``kore_http.stream.Stream`` a
request talks to.

A response is a HEADERS frame (``:status``, lower-case names, no
connection-specific fields) and DATA frames cut to the peer's
SETTINGS_MAX_FRAME_SIZE and sent only within its flow-control windows: a
handler whose window is empty waits until the connection's reader greenlet
sees a WINDOW_UPDATE.  The request body arrives in a per-stream queue the
reader fills; the window is given back to the client (WINDOW_UPDATE) as the
handler consumes it, so a handler that does not read holds at most one
window of body in memory.  A RST_STREAM from the client cancels the
handler (GreenletExit, as the HTTP/1.1 disconnect watcher does).
"""

from collections import deque
import time

from gevent.event import Event
from h2.errors import ErrorCodes
from h2.exceptions import H2Error

from kore_http.connection import Connection
from kore_http.parser import HttpError
from kore_http.response import DONE
from kore_http.settings import SETTINGS as S
from kore_http.status import HEADERS, status_line
from kore_http.stream import ClientGone, Stream

monotonic = time.monotonic

BURST = 65536     # bytes a stream queues before its frames must be written
# connection-specific fields have no place in HTTP/2 (RFC 9113 8.2.2)
_DROP = frozenset(("connection", "keep-alive", "proxy-connection",
                   "transfer-encoding", "upgrade"))
_STATUS = {code: str(code).encode() for code in range(100, 600)}


class _Common:
    """Server and Date fields, rebuilt when the http plugin's cache is."""
    second = -1
    pairs = []

    @classmethod
    def get(cls):
        if HEADERS.second != cls.second:
            cls.second = HEADERS.second
            out = []
            for line in HEADERS.value.split(b"\r\n"):
                if line:
                    n, _, v = line.partition(b": ")
                    out.append((n.lower(), v))
            cls.pairs = out
        return cls.pairs


class H2Stream(Stream):
    __slots__ = ("conn", "sid", "glet", "req", "keepalive", "closed", "body",
                 "body_evt", "body_ended", "received", "declared", "win_evt",
                 "reset", "out_started", "out_done", "corked", "paused_evt",
                 "expect", "_facade", "started", "cancel_on_resume")

    http_version = "2.0"

    @property
    def log_fields(self):
        """The access log's ``stream`` field (see kore_http.stream.Stream)."""
        return {"stream": self.sid}

    def __init__(self, conn, sid):
        self.conn = conn
        self.sid = sid
        self.glet = None
        self.req = None
        self.keepalive = True
        self.closed = False
        self.body = deque()
        self.body_evt = Event()
        self.body_ended = False
        self.received = 0
        self.declared = None
        self.win_evt = Event()
        self.reset = False
        self.out_started = False
        self.out_done = False
        self.corked = False
        self.paused_evt = None
        self.expect = False
        self._facade = None
        self.started = False
        self.cancel_on_resume = False

    # -- what the connection knows ---------------------------------------------

    @property
    def tls(self):
        return self.conn.tls

    @property
    def server(self):
        return self.conn.server

    @property
    def listener(self):
        return self.conn.listener

    @property
    def trusted(self):
        return self.conn.trusted

    @property
    def proxied_address(self):
        return self.conn.proxied_address

    @property
    def fd(self):
        return self.conn.fd

    @property
    def sock(self):
        # req.get_native_handle(): the connection's socket (shared by its
        # streams: a handler must not read or write it)
        return self.conn.sock

    @property
    def family(self):
        return self.conn.family

    @property
    def paused(self):
        return self.paused_evt is not None

    def remote_address(self):
        return self.conn.remote_address()

    def log_peer(self):
        return self.conn.log_peer()

    def peer_cert_der(self):
        return self.conn.peer_cert_der()

    def peer_cert_dict(self):
        return self.conn.peer_cert_dict()

    def facade(self):
        f = self._facade
        if f is None:
            f = self._facade = Connection(self)
        return f

    def set_facade(self, obj):
        self._facade = obj

    # -- responses -------------------------------------------------------------

    def _head(self, req, status, ctype):
        code = status if type(status) is int else status_line(status)[1]
        if code not in _STATUS:
            status_line(code)        # raises the http plugin's ValueError
        req._status = code
        hs = [(b":status", _STATUS[code])]
        hs.extend(_Common.get())
        if self.conn.tls and S.hsts > 0:
            hs.append((b"strict-transport-security",
                       b"max-age=%d; includeSubDomains" % S.hsts))
        if ctype is not None:
            hs.append((b"content-type", ctype))
        has_cl = False
        rh = req._rheaders
        if rh:
            for n, v in rh:
                n = n.lower()
                if n in _DROP:
                    continue
                if n == "content-length":
                    has_cl = True
                hs.append((n.encode("latin-1"), v.encode("latin-1")))
        return code, hs, has_cl

    def _headers(self, hs, end):
        if self.reset:
            raise ClientGone()
        try:
            self.conn.h2.send_headers(self.sid, hs, end_stream=end)
        except H2Error:
            raise ClientGone() from None
        self.out_started = True
        if end:
            self.out_done = True

    def send_response(self, req, status, body, ctype=None, close=False):
        code, hs, has_cl = self._head(req, status, ctype)
        bodyless = code < 200 or code == 204 or code == 304
        if not bodyless and not has_cl:
            hs.append((b"content-length", b"%d" % len(body)))
        if bodyless or req._meth == "HEAD" or not body:
            self._headers(hs, True)
            self.conn.flush(self, True)
            return
        self._headers(hs, False)
        req.bytes_sent += len(body)
        self._write(body, True)

    def send_head(self, req, status, ctype=None):
        code, hs, _ = self._head(req, status, ctype)
        end = req._meth == "HEAD" or code in (204, 304)
        self._headers(hs, end)
        if not self.corked:
            self.conn.flush(self, True)

    def send_data(self, req, data, end=False):
        if self.out_done:
            return
        if req._meth == "HEAD" or req._status in (204, 304):
            data = b""
        req.bytes_sent += len(data)
        self._write(data, end)

    def send_informational(self, req, status, headers=()):
        code = status if type(status) is int else status_line(status)[1]
        if not 100 <= code <= 199 or code == 101:
            raise ValueError("not an informational status: %r" % (status,))
        hs = [(b":status", _STATUS[code])]
        for n, v in headers:
            hs.append((n.lower().encode("latin-1"), v.encode("latin-1")))
        if self.reset:
            raise ClientGone()
        try:
            self.conn.h2.send_headers(self.sid, hs)
        except H2Error:
            raise ClientGone() from None
        self.conn.flush(self)

    def cork(self, on):
        self.corked = bool(on)
        if not on:
            self.conn.flush(self)

    def _write(self, data, end):
        """DATA frames within the windows; waits for WINDOW_UPDATEs."""
        conn = self.conn
        h = conn.h2
        sid = self.sid
        n = len(data)
        view = memoryview(data)
        off = 0
        queued = 0
        try:
            while off < n:
                if self.reset or conn.dead:
                    raise ClientGone()
                w = h.local_flow_control_window(sid)
                if w <= 0 or queued >= BURST:
                    conn.flush(self)
                    queued = 0
                    if w <= 0:
                        self.win_evt.clear()
                        if h.local_flow_control_window(sid) <= 0:
                            self.win_evt.wait()
                    continue
                k = min(w, n - off, h.max_outbound_frame_size, BURST)
                last = end and off + k == n
                h.send_data(sid, view[off:off + k], end_stream=last)
                off += k
                queued += k
            if end and not self.out_done:
                if n == 0:
                    h.end_stream(sid)
                self.out_done = True
        except H2Error:
            raise ClientGone() from None
        if not self.corked or end:
            conn.flush(self, n <= BURST)
        if self.reset:
            raise ClientGone()

    # -- the request body -------------------------------------------------------

    def feed(self, data, flow):
        """Reader greenlet: DATA for this stream (``flow`` bytes of window)."""
        self.received += len(data)
        if self.declared is not None and self.received > self.declared:
            self.conn.stream_error(self, ErrorCodes.PROTOCOL_ERROR)
            return
        if self.req is None or self.req._sent == DONE or self.started is None:
            # nobody reads it any more: give the window straight back
            self.conn.ack(self.sid, flow)
            return
        self.body.append((data, flow))
        self.body_evt.set()

    def end_body(self):
        self.body_ended = True
        if self.declared is not None and self.received != self.declared:
            self.conn.stream_error(self, ErrorCodes.PROTOCOL_ERROR)
            return
        self.body_evt.set()

    def _error(self, req, status):
        if not req._sent and not self.reset:
            req._rheaders = None
            try:
                req._respond(status, b"")
            except ClientGone:
                pass

    def read_body(self, req, sink):
        if self.declared is not None and self.declared > S.body_max:
            self._error(req, 413)
            return False
        if self.expect and not self.body and not self.body_ended:
            self.expect = False
            self.send_informational(req, 100)
        deadline = monotonic() + S.body_timeout
        total = 0
        conn = self.conn
        try:
            while True:
                while self.body:
                    if self.paused_evt is not None:
                        # socketify's pause(): no reading (and no window
                        # given back) until resume()
                        conn.flush(self)
                        self.paused_evt.wait()
                        deadline = monotonic() + S.body_timeout
                        continue
                    data, flow = self.body.popleft()
                    total += len(data)
                    if total > S.body_max:
                        self._error(req, 413)
                        return False
                    sink.write(data)
                    conn.ack(self.sid, flow)
                if self.reset:
                    return False
                if self.body_ended:
                    break
                if self.paused_evt is not None:
                    self.paused_evt.wait()
                    deadline = monotonic() + S.body_timeout
                    continue
                self.body_evt.clear()
                conn.flush(self)        # the WINDOW_UPDATEs for what was read
                left = deadline - monotonic()
                if left <= 0 or not self.body_evt.wait(left):
                    if not self.body and not self.body_ended:
                        self._error(req, 408)
                        return False
            sink.done()
            return True
        except HttpError as exc:
            if exc.status == 500 and req._sent:
                return False
            self._error(req, exc.status)
            return False
        finally:
            conn.flush(self)

    def discard_body(self):
        """The handler is done: window of unread body back to the client."""
        self.started = None
        body, self.body = self.body, deque()
        for _, flow in body:
            self.conn.ack(self.sid, flow)

    # -- flow and lifetime ---------------------------------------------------------

    def pause(self):
        if self.paused_evt is None and not self.closed:
            self.paused_evt = Event()

    def resume(self):
        evt, self.paused_evt = self.paused_evt, None
        if evt is not None:
            evt.set()
            if self.cancel_on_resume:
                # the client reset the stream while it was paused
                self.cancel_on_resume = False
                self.conn.cancel_handler(self)

    def disconnect(self):
        """Kore's ``c.disconnect()``: ends this stream (RST_STREAM CANCEL);
        the connection's other streams go on."""
        self.closed = True
        self.keepalive = False
        if not self.reset:
            self.conn.stream_error(self, ErrorCodes.CANCEL, cancel=False)

    def wake(self):
        self.win_evt.set()
        self.body_evt.set()
        evt = self.paused_evt
        if evt is not None and self.reset:
            self.paused_evt = None
            evt.set()

    def __repr__(self):
        return "<H2Stream %d>" % self.sid

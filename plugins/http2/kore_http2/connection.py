"""``Http2Connection``: one HTTP/2 client connection.

The connection's own greenlet (the one the net layer started) is its only
reader: it feeds received bytes to the h2 state machine and turns events
into work: a new request spawns a greenlet running ``pipeline.handle`` on an
``H2Stream``; DATA goes to that stream's body queue; WINDOW_UPDATE and
SETTINGS wake the streams waiting to send; RST_STREAM cancels only that
stream's handler.  Any greenlet may queue frames on the state machine;
``flush`` writes them, one writer at a time, in the order h2 produced them.

Timeouts use the net layer's deadline sweep on the reader: an idle
connection (no open stream) closes after ``http_keepalive_time`` with
GOAWAY(NO_ERROR); one with open streams but a silent client gets a PING
after ``http2_ping_interval`` and is closed when it is not answered within
``http2_ping_timeout``.  ``drain`` (the worker stops or reloads) sends
GOAWAY(NO_ERROR, last stream id), refuses newer streams and closes the
connection once its streams are done.
"""

import sys
import time

import gevent
from gevent import GreenletExit, getcurrent
from gevent.event import Event
from h2 import events as ev
from h2.errors import ErrorCodes
from h2.exceptions import H2Error, ProtocolError
from hyperframe.frame import GoAwayFrame

from kore.trace import report
from kore_http.net import Client, CONNS, Expired
from kore_http.pipeline import LOAD, handle
from kore_http.request import HttpRequest
from kore_http.response import DONE
from kore_http.settings import SETTINGS as S
from kore_http.stream import ClientGone

from .machine import machine
from .options import SETTINGS2 as P
from .stream import H2Stream

monotonic = time.monotonic

URI_MAX = 1999          # as HTTP/1.1: a :path of 1999 bytes or more gets 414
PING_DATA = b"kore-h2\x00"
RESET_WINDOW = 10.0


class _Close(Exception):
    """The connection ends (protocol error, GOAWAY, drained)."""


class Http2Connection(Client):
    __slots__ = ("h2", "streams", "writer", "drained", "dead", "closing",
                 "last_sid", "ping_out", "reading", "resets", "reset_t0",
                 "raw", "requests", "spawned", "batching")

    def __init__(self, client):
        self.adopt(client)
        self.h2 = machine(P)
        self.streams = {}
        self.writer = None          # the greenlet writing to the socket now
        self.drained = Event()
        self.drained.set()
        self.dead = False
        self.closing = False        # GOAWAY sent: no new streams
        self.last_sid = 0
        self.ping_out = False
        self.reading = False
        self.resets = 0
        self.reset_t0 = 0.0
        self.raw = []               # frames written outside h2 (GOAWAY on drain)
        self.requests = 0
        self.spawned = 0
        self.batching = False

    # -- writing ------------------------------------------------------------------

    def flush(self, stream=None, soon=False):
        """Write what h2 queued.  Only one greenlet writes at a time; the
        others return at once (the writer takes their frames too), handlers
        wait until it has (backpressure)."""
        if soon and self.batching:
            return          # small: the reader writes once its batch has run
        if self.writer is not None:
            if stream is not None and not self.dead and getcurrent() is not self.glet:
                while self.writer is not None:
                    self.drained.wait()
                if self.dead:
                    raise ClientGone()
            return
        me = getcurrent()
        h = self.h2
        data = h.data_to_send()
        if self.raw:
            data += b"".join(self.raw)
            del self.raw[:]
        if not data:
            return
        self.writer = me
        self.drained.clear()
        reader = me is self.glet
        try:
            while data:
                if reader:
                    # a client that reads nothing must not hold the reader
                    self.deadline = monotonic() + S.body_timeout
                self.sock.sendall(data)
                data = h.data_to_send()
                if self.raw:
                    data += b"".join(self.raw)
                    del self.raw[:]
        except (OSError, Expired):
            self.dead = True
            if reader:
                raise _Close() from None
            raise ClientGone() from None
        finally:
            if reader:
                self.deadline = 0.0
            self.writer = None
            self.drained.set()
            if self.dead:
                self._wake_all()

    def ack(self, sid, flow):
        """Give ``flow`` bytes of receive window back to the client."""
        if flow and not self.dead:
            try:
                self.h2.acknowledge_received_data(flow, sid)
            except H2Error:
                pass

    def goaway(self, code, last_sid=None):
        f = GoAwayFrame(0)
        f.last_stream_id = self.h2.highest_inbound_stream_id if last_sid is None else last_sid
        f.error_code = code
        self.raw.append(f.serialize())

    # -- the reader -----------------------------------------------------------------

    def run(self, preface):
        h = self.h2
        h.initiate_connection()
        extra = max(P.window, 1 << 20) - 65535
        if extra > 0:
            h.increment_flow_control_window(extra)
        self.flush()
        data = preface
        sock = self.sock
        while True:
            if data:
                self.ping_out = False
                self.feed(data)
            if self.closing and not self.streams:
                self.flush()          # the GOAWAY, if drain's flush has not run yet
                return
            now = monotonic()
            if self.streams:
                if P.ping_interval:
                    self.deadline = now + (P.ping_timeout if self.ping_out else P.ping_interval)
            else:
                self.deadline = now + (min(S.keepalive_time, 2.0) if CONNS.stopping
                                       else S.keepalive_time)
            self.reading = True
            try:
                data = sock.recv(65536)
            except Expired:
                data = None
            finally:
                self.reading = False
                self.deadline = 0.0
            if data is None:
                if self.closing and not self.streams:
                    self.flush()
                    return
                if self.streams and P.ping_interval and not self.ping_out:
                    self.ping_out = True
                    h.ping(PING_DATA)
                    self.flush()
                    continue
                # idle past http_keepalive_time, or a PING went unanswered
                self.goaway(ErrorCodes.NO_ERROR)
                self.flush()
                return
            if not data:
                return

    def feed(self, data):
        h = self.h2
        try:
            events = h.receive_data(data)
        except ProtocolError:
            # h2 queued GOAWAY with the error code
            self.flush()
            raise _Close() from None
        streams = self.streams
        for e in events:
            t = type(e)
            if t is ev.RequestReceived:
                self.open_stream(e.stream_id, e.headers, e.stream_ended is not None)
            elif t is ev.DataReceived:
                s = streams.get(e.stream_id)
                if s is not None:
                    s.feed(e.data, e.flow_controlled_length)
                else:
                    self.ack(e.stream_id, e.flow_controlled_length)
            elif t is ev.StreamEnded:
                s = streams.get(e.stream_id)
                if s is not None:
                    s.end_body()
            elif t is ev.WindowUpdated:
                if e.stream_id:
                    s = streams.get(e.stream_id)
                    if s is not None:
                        s.win_evt.set()
                else:
                    for s in streams.values():
                        s.win_evt.set()
            elif t is ev.StreamReset:
                s = streams.get(e.stream_id)
                if s is not None:
                    self.peer_reset(s)
            elif t is ev.RemoteSettingsChanged:
                for s in streams.values():
                    s.win_evt.set()
            elif t is ev.PingAckReceived:
                self.ping_out = False
            elif t is ev.ConnectionTerminated:
                # the client leaves: finish what it asked for, take nothing new
                self.closing = True
                self.last_sid = h.highest_inbound_stream_id
            elif t is ev.TrailersReceived:
                pass      # trailers are validated by h2 and dropped, as HTTP/1.1's
        if self.spawned > 1:
            # let the handlers just started run first: those that answer at
            # once leave their frames to the flush below (one write for
            # all the responses of one read, instead of one each).  A single
            # handler writes its own response: yielding for it would cost a
            # loop iteration (a poll) per request to save at most one write
            self.spawned = 0
            self.batching = True
            try:
                gevent.sleep(0)
            finally:
                self.batching = False
        self.spawned = 0
        self.flush()

    # -- streams -------------------------------------------------------------------

    def open_stream(self, sid, headers, ended):
        h = self.h2
        if (self.closing and sid > self.last_sid) or len(self.streams) >= P.max_streams:
            h.reset_stream(sid, ErrorCodes.REFUSED_STREAM)
            return
        s = H2Stream(self, sid)
        s.body_ended = ended
        method = path = authority = None
        fields = []
        cookies = None
        size = 0
        for n, v in headers:
            if n[0] == 58:      # ':'
                if n == b":method":
                    method = v.decode("latin-1")
                elif n == b":path":
                    path = v.decode("latin-1")
                elif n == b":authority":
                    authority = v.decode("latin-1")
                continue
            size += len(n) + len(v) + 4
            if n == b"cookie":
                cookies = v if cookies is None else cookies + b"; " + v
                continue
            name = n.decode("latin-1")
            value = v.decode("latin-1")
            if name == "content-length":
                try:
                    s.declared = int(value)
                except ValueError:
                    self.stream_error(s, ErrorCodes.PROTOCOL_ERROR, cancel=False)
                    return
            elif name == "expect" and value.lower() == "100-continue":
                s.expect = True
            elif name == "host" and authority is None:
                authority = value
                continue
            fields.append((name, value))
        if cookies is not None:
            fields.append(("cookie", cookies.decode("latin-1")))
        host = authority or ""
        fields.insert(0, ("host", host))
        if path is None:        # CONNECT: no :path
            path = "*"
        req = HttpRequest(s, method, path, True, fields)
        req.host = host
        s.req = req
        self.streams[sid] = s
        self.requests += 1
        status = 0
        if size > S.header_max:
            status = 431
        elif len(path) >= URI_MAX:
            status = 414
        elif not host or (path[0] != "/" and not (path == "*" and method == "OPTIONS")):
            status = 400
        elif LOAD.inflight >= S.request_limit:
            status = 503
        if status:
            s.started = None
            req._respond(status, b"")
            self.done(s)
            return
        if not ended:
            req._has_body = True
        elif s.declared:
            self.stream_error(s, ErrorCodes.PROTOCOL_ERROR, cancel=False)
            return
        if self.closing or CONNS.stopping:
            req.keepalive = False
        s.glet = gevent.spawn(self.run_stream, s, req)
        self.spawned += 1

    def push(self, stream, req, uri):
        """PUSH_PROMISE ``uri`` on ``stream`` and serve it on the promised
        stream as a GET (``req.hint_promise``)."""
        h = self.h2
        pid = h.get_next_available_stream_id()
        scheme = "https" if self.tls else "http"
        try:
            h.push_stream(stream.sid, pid, [(b":method", b"GET"), (b":path", uri.encode()),
                                            (b":scheme", scheme.encode()),
                                            (b":authority", req.host.encode("latin-1"))])
        except H2Error:
            return
        s = H2Stream(self, pid)
        s.body_ended = True
        preq = HttpRequest(s, "GET", uri, True, [("host", req.host)])
        preq.host = req.host
        s.req = preq
        self.streams[pid] = s
        s.glet = gevent.spawn(self.run_stream, s, preq)
        self.flush(stream)

    def run_stream(self, s, req):
        s.started = True
        LOAD.inflight += 1
        try:
            handle(req)
        except (ClientGone, GreenletExit):
            pass
        except Exception:
            report(sys.exc_info(), where="http2 stream", req=req)
        finally:
            LOAD.inflight -= 1
            try:
                self.done(s)
            except (ClientGone, _Close):
                pass

    def done(self, s):
        """The handler returned (or the stream was refused): end the stream."""
        s.discard_body()
        if self.streams.pop(s.sid, None) is None:
            return
        h = self.h2
        if not self.dead and not s.reset:
            try:
                if not s.out_done:
                    # the handler died mid-response
                    h.reset_stream(s.sid, ErrorCodes.INTERNAL_ERROR)
                elif not s.body_ended:
                    # answered before the whole body came: stop the upload
                    h.reset_stream(s.sid, ErrorCodes.NO_ERROR)
            except H2Error:
                pass
        if getcurrent() is not self.glet:
            self.flush(s, True)
        if self.closing and not self.streams and self.reading:
            self.deadline = monotonic()       # the sweep wakes the reader

    def stream_error(self, s, code, cancel=True):
        """Reset stream ``s`` with ``code`` (a stream error)."""
        if not s.reset:
            s.reset = True
            try:
                self.h2.reset_stream(s.sid, code)
            except H2Error:
                pass
        s.wake()
        if cancel:
            self.cancel_handler(s)
        if s.glet is None:
            self.streams.pop(s.sid, None)

    def peer_reset(self, s):
        s.reset = True
        # req.pause(): as over HTTP/1.1, the client's leaving is acted on
        # when the request is resumed (H2Stream.resume)
        deferred = s.paused_evt is not None and s.started
        if deferred:
            s.cancel_on_resume = True
        else:
            s.wake()
        now = monotonic()
        if now - self.reset_t0 > RESET_WINDOW:
            self.reset_t0 = now
            self.resets = 0
        self.resets += 1
        if not deferred:
            self.cancel_handler(s)
        if s.glet is None or s.glet.dead:
            self.streams.pop(s.sid, None)
        if self.resets > P.max_resets:
            # Rapid Reset (CVE-2023-44487): refuse to go on with this client
            self.goaway(ErrorCodes.ENHANCE_YOUR_CALM)
            self.flush()
            raise _Close()

    def cancel_handler(self, s):
        g = s.glet
        if g is None or g.dead:
            return
        req = s.req
        if req is not None and req._sent != DONE:
            req._aborted = True
        if not s.started:
            # not started yet: it never will (Rapid Reset costs no handler)
            g.kill(block=False)
            self.streams.pop(s.sid, None)
            return
        if self.writer is g:
            return     # mid-write: its write raises ClientGone when it returns
        g.kill(GreenletExit, block=False)

    def _wake_all(self):
        for s in list(self.streams.values()):
            s.reset = True
            s.wake()

    # -- stop ---------------------------------------------------------------------

    def drain(self, now):
        """The worker stops: GOAWAY(NO_ERROR, last stream id), in-flight
        streams finish, newer ones are refused, then the connection closes."""
        if self.closing:
            return
        self.closing = True
        self.last_sid = self.h2.highest_inbound_stream_id
        self.goaway(ErrorCodes.NO_ERROR, self.last_sid)
        if self.writer is None and not self.dead:
            gevent.spawn(self._flush_quietly)
        if not self.streams and self.reading:
            self.deadline = now

    def _flush_quietly(self):
        try:
            self.flush()
        except (ClientGone, _Close):
            pass

    def close_streams(self):
        self.dead = True
        for s in list(self.streams.values()):
            s.reset = True
            s.wake()
            if s.glet is not None and not s.glet.dead:
                if s.req is not None:
                    s.req._aborted = True
                s.glet.kill(block=False)
        self.streams.clear()


def serve(client, preface):
    """Serve an accepted connection as HTTP/2 until it ends."""
    c = Http2Connection(client)
    try:
        c.run(preface)
    except (_Close, OSError, Expired, ClientGone):
        pass
    finally:
        c.close_streams()

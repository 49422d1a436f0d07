"""Kore's websocket API on the http plugin's connection upgrade.

``req.websocket_handshake(onconnect, onmsg, ondisconnect)`` validates the
RFC 6455 opening handshake, answers 101 and hands the socket to
``WebSocket.run`` in the connection's greenlet once the route handler
returned.  That greenlet reads frames and runs the callbacks in order;
sending never blocks the caller: a frame the socket does not take at once is
queued and written by a helper greenlet, so one slow client cannot stall a
broadcast.

Broadcasts and topics reach the other workers through the kernel's IPC (the
master routes ``ALL_WORKERS`` messages to every worker, the sender
included: the sender skips its own message and delivers locally itself, so
every client gets a message exactly once).
"""

import base64
import codecs
import hashlib
import json
import socket
import struct
import sys
import time
from collections import deque
from inspect import isawaitable

import gevent
from gevent import GreenletExit, getcurrent

from kore import _state, ipc
from kore.log import LOG, LOG_WARNING
from kore.trace import report
from kore_http.connection import Connection

from . import frames
from .frames import (OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT,
                     Deflate, ProtocolError, encode, parse_frame)

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
BROADCAST_LOCAL = 1
BROADCAST_GLOBAL = 2

MSG_BROADCAST = "websocket.broadcast"
MSG_PUBLISH = "websocket.publish"
MSG_SUBS = "websocket.subs"          # one topic's subscriber count in a worker
MSG_HELLO = "websocket.hello"        # a (re)started worker asks for counts
MSG_SUBSALL = "websocket.subsall"    # every topic count of a worker (JSON)

CLOSE_TIMEOUT = 2.0        # seconds to wait for the peer's close frame
WRITE_QUEUE_MAX = 64 * 1024 * 1024

OPEN, CLOSING, CLOSED = 1, 2, 3

_time = time.monotonic
_PUB = struct.Struct("!H")
_SEND_FLAGS = int(socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)   # an int: no enum "|" per send


class _Idle(Exception):
    """Thrown into a connection greenlet waiting for data past half the
    timeout (see ``WebSocket._idle_check``)."""


class Settings:
    maxframe = 16384
    timeout = 120.0
    multi = False           # more than one worker: use IPC
    deflate = True

    @classmethod
    def load(cls):
        get = _state.registry.get
        cls.maxframe = int(get("websocket_maxframe"))
        cls.timeout = float(get("websocket_timeout"))
        cls.deflate = bool(get("websocket_deflate"))
        try:
            cls.multi = int(get("workers")) > 1
        except Exception:
            cls.multi = True


LOCAL = set()       # open WebSocket objects of this worker
TOPICS = {}         # topic -> set of local WebSocket
REMOTE = {}         # topic -> {worker id: subscriber count}


# ---------------------------------------------------------------------------
# the connection
# ---------------------------------------------------------------------------

class WebSocket(Connection):
    """kore.connection of a websocket client (``c`` in the callbacks)."""

    __slots__ = ("sock", "raw", "onconnect", "onmsg", "ondisconnect", "deflate",
                 "state", "topics", "_queue", "_qbytes", "_glet", "_watchdog",
                 "_connected", "_rx", "_rwatch", "_idle_timer", "__weakref__")

    def __init__(self, c, onconnect, onmsg, ondisconnect, deflate):
        Connection.__init__(self, c)
        self.sock = None
        self.raw = None
        self.onconnect = onconnect
        self.onmsg = onmsg
        self.ondisconnect = ondisconnect
        self.deflate = deflate
        self.state = OPEN
        self.topics = None
        self._queue = None
        self._qbytes = 0
        self._glet = None
        self._watchdog = None
        self._connected = False
        self._rx = 0.0              # when data last arrived (or the last ping went out)
        self._rwatch = None         # read watcher while the plain-TCP read loop runs
        self._idle_timer = None

    def __repr__(self):
        return "<kore.connection websocket fd=%s>" % self._c.fd

    # -- Kore API ---------------------------------------------------------------

    def websocket_send(self, op, data):
        """Send one message: ``op`` WEBSOCKET_OP_TEXT or _BINARY (PING and
        PONG work too); ``data`` bytes or str.  False if the connection is
        closing."""
        if self.state != OPEN:
            return False
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif not isinstance(data, bytes):
            data = bytes(data)
        if op == OP_TEXT or op == OP_BINARY:
            d = self.deflate
            if d is not None:
                z = d.compress(data)
                if z is not None:
                    return self._write(encode(op, z, True))
            return self._write(encode(op, data))
        if op == OP_PING or op == OP_PONG:
            if len(data) > 125:
                raise ValueError("websocket_send: control payload over 125 bytes")
            return self._write(encode(op, data))
        if op == OP_CLOSE:
            code = 1000
            if len(data) >= 2:
                code = struct.unpack("!H", data[:2])[0]
            self.close(code, data[2:].decode("utf-8", "replace"))
            return True
        raise ValueError("websocket_send: invalid op %r" % (op,))

    def disconnect(self):
        """Close the connection (close code 1000)."""
        self.close(1000, "")
        return True

    def close(self, code=1000, reason=""):
        """Start the close handshake with ``code``."""
        if self.state != OPEN:
            return False
        self.state = CLOSING
        self._write(encode(OP_CLOSE, frames.close_payload(code, reason)), force=True)
        if self._watchdog is None and self._glet is not None:
            self._watchdog = gevent.spawn_later(CLOSE_TIMEOUT, self._force_close)
        return True

    # -- socketify topics -----------------------------------------------------------

    def subscribe(self, topic):
        topic = _topic(topic)
        if self.state == CLOSED:
            return False
        if self.topics is None:
            self.topics = set()
        if topic in self.topics:
            return True
        self.topics.add(topic)
        subs = TOPICS.get(topic)
        if subs is None:
            subs = TOPICS[topic] = set()
        subs.add(self)
        _announce(topic)
        return True

    def unsubscribe(self, topic):
        topic = _topic(topic)
        if not self.topics or topic not in self.topics:
            return False
        self.topics.discard(topic)
        subs = TOPICS.get(topic)
        if subs is not None:
            subs.discard(self)
            if not subs:
                del TOPICS[topic]
        _announce(topic)
        return True

    def is_subscribed(self, topic):
        return bool(self.topics) and _topic(topic) in self.topics

    def subscriptions(self):
        return sorted(self.topics or ())

    def publish(self, topic, data, op=None):
        """Publish to ``topic`` (every worker), except to this connection."""
        return publish(topic, data, op, _exclude=self)

    # -- writing -------------------------------------------------------------------

    def _write(self, data, force=False):
        if self.state == CLOSED or (self.state == CLOSING and not force):
            return False
        q = self._queue
        if q is not None:
            q.append(data)
            self._qbytes += len(data)
            if self._qbytes > WRITE_QUEUE_MAX:
                LOG.write(LOG_WARNING, "websocket client fd %s reads too slowly: "
                          "dropping it" % self._c.fd)
                self._abort()
                return False
            return True
        raw = self.raw
        n = 0
        if raw is not None:
            try:
                n = raw.send(data, _SEND_FLAGS)
            except BlockingIOError:
                n = 0
            except OSError:
                self._abort()
                return False
            if n == len(data):
                return True
            if n:
                data = data[n:]
        self._enqueue(data)
        return True

    def _enqueue(self, data):
        """Queue what the socket did not take (the queue is empty) and start
        the greenlet that writes it; later frames queue behind it."""
        self._queue = deque((data,))
        self._qbytes = len(data)
        gevent.spawn(self._drain)

    def _drain(self):
        q = self._queue
        try:
            while q:
                if len(q) == 1:
                    data = q.popleft()
                else:
                    data = b"".join(q)
                    q.clear()
                self._qbytes = 0
                self.sock.sendall(data)
        except (OSError, AttributeError):
            self._abort()
        finally:
            self._queue = None

    def _abort(self):
        """Drop the connection without a close handshake."""
        self.state = CLOSED
        self._queue = None
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _force_close(self):
        if self._glet is not None and self.state != CLOSED:
            self._abort()

    # -- the connection greenlet -------------------------------------------------------

    def run(self, sock, buffered):
        """Serve the upgraded connection (called by the http plugin)."""
        self.sock = sock
        self._glet = getcurrent()
        if not self._c.tls:
            self.raw = getattr(sock, "_sock", None)
        killed = False
        try:
            LOCAL.add(self)
            self._connected = True
            pm = _state.pm
            if pm is not None:
                pm.hook.kore_websocket_connect(conn=self)
            if self.onconnect is not None and not self._call(self.onconnect, "onconnect", self):
                self.close(1011, "internal error")
            self._read(buffered)
        except GreenletExit:
            killed = True
        except OSError:
            pass
        except Exception:
            report(sys.exc_info(), where="websocket connection")
        finally:
            self._teardown(killed)

    def _call(self, fn, where, *args):
        try:
            r = fn(*args)
            if r is not None and isawaitable(r):
                from kore.aio import drive
                drive(r)
            return True
        except GreenletExit:
            raise
        except Exception:
            report(sys.exc_info(), where="websocket %s callback" % where)
            return False

    def _idle_check(self, half):
        """Timer callback (in the hub): throw _Idle into the connection
        greenlet when it has waited for data for ``half`` the timeout, else
        look again when that would be the case.  One timer per half timeout
        instead of a gevent Timeout per read."""
        self._idle_timer = None
        rw = self._rwatch
        if rw is None or self.state == CLOSED:
            return
        idle = _time() - self._rx
        if idle >= half:
            if rw.active:
                # the greenlet is parked in the read wait (the watcher only
                # runs there): the exception lands in that wait
                self._glet.throw(_Idle())
                return
            delay = min(half, 0.05)       # busy in a callback: look again soon
        else:
            delay = half - idle
        t = self._idle_timer = rw.loop.timer(delay)
        t.start(self._idle_check, half)

    def _read(self, buffered):
        sock = self.sock
        maxframe = Settings.maxframe
        half = max(Settings.timeout / 2.0, 0.05)
        raw = self.raw
        if raw is not None:
            # plain TCP: park on an io watcher that switches straight back to
            # this greenlet, then one recv; the idle timeout is a timer per
            # half timeout (_idle_check), not a gevent Timeout per read.
            raw_recv = raw.recv
            hub = gevent.get_hub()
            hub_switch = hub.switch
            wake = getcurrent().switch
            rw = self._rwatch = hub.loop.io(self._c.fd, 1)
            self._rx = _time()
            t = self._idle_timer = hub.loop.timer(half)
            t.start(self._idle_check, half)
        else:
            sock.settimeout(half)
            recv = sock.recv
        buf = bytearray(buffered)
        pos = 0
        msg_op = 0            # opcode of the message being reassembled
        parts = None
        size = 0
        udec = None           # incremental UTF-8 decoder of a fragmented text
        inflater = None       # zlib decompressor of a compressed message
        deflate = self.deflate
        last_rx = _time()
        while True:
            try:
                while True:
                    r = parse_frame(buf, pos, maxframe)
                    if r is None:
                        break
                    b0, payload, pos = r
                    op = b0 & 0x0F
                    if b0 & 0x70:
                        if (b0 & 0x30 or deflate is None or op == OP_CONT
                                or op >= OP_CLOSE):
                            raise ProtocolError(1002, "reserved bits set")
                    if op >= OP_CLOSE:
                        if op == OP_PING:
                            if self.state == OPEN:
                                self._write(encode(OP_PONG, payload))
                        elif op == OP_CLOSE:
                            code, reason = frames.parse_close(payload)
                            if self.state == OPEN:
                                self.state = CLOSING
                                self._write(encode(OP_CLOSE, b"" if code == 1005 else
                                                   frames.close_payload(code)), True)
                            return
                        elif op != OP_PONG:
                            raise ProtocolError(1002, "reserved opcode %d" % op)
                        continue
                    fin = b0 & 0x80
                    if op == OP_CONT:
                        if not msg_op:
                            raise ProtocolError(1002, "continuation without a message")
                    elif op == OP_TEXT or op == OP_BINARY:
                        if msg_op:
                            raise ProtocolError(1002, "new message inside a fragmented one")
                        if b0 & 0x40:
                            inflater = deflate.decompressor()
                        if fin and inflater is None:
                            # the common case: one unfragmented frame
                            if op == OP_TEXT:
                                try:
                                    data = payload.decode("utf-8")
                                except UnicodeDecodeError:
                                    raise ProtocolError(1007, "invalid UTF-8 in a text "
                                                        "message") from None
                            else:
                                data = payload
                            if self.state == OPEN:
                                self._deliver(op, data)
                            continue
                        msg_op = op
                        parts = []
                        size = 0
                        if op == OP_TEXT:
                            udec = codecs.getincrementaldecoder("utf-8")("strict")
                    else:
                        raise ProtocolError(1002, "reserved opcode %d" % op)
                    if inflater is not None:
                        payload = Deflate.inflate(inflater, payload, maxframe - size)
                        if fin:
                            payload += Deflate.inflate(inflater, frames._TAIL,
                                                       maxframe - size - len(payload))
                    size += len(payload)
                    if size > maxframe:
                        raise ProtocolError(1009, "message exceeds websocket_maxframe")
                    if udec is not None:
                        try:
                            parts.append(udec.decode(payload, bool(fin)))
                        except UnicodeDecodeError:
                            raise ProtocolError(1007, "invalid UTF-8 in a text "
                                                "message") from None
                    else:
                        parts.append(payload)
                    if fin:
                        if udec is not None:
                            data = "".join(parts)
                        else:
                            data = b"".join(parts)
                        op = msg_op
                        msg_op = 0
                        parts = udec = inflater = None
                        if self.state == OPEN:
                            self._deliver(op, data)
            except ProtocolError as exc:
                if self.state == OPEN:
                    self.state = CLOSING
                    self._write(encode(OP_CLOSE, frames.close_payload(exc.code, exc.reason)),
                                True)
                return
            if pos:
                del buf[:pos]
                pos = 0
            if self.state == CLOSED:
                return
            try:
                if raw is not None:
                    rw.start(wake)
                    try:
                        hub_switch()
                    finally:
                        rw.stop()
                    try:
                        data = raw_recv(262144)
                    except BlockingIOError:
                        continue        # woken early (nothing to read yet)
                    except InterruptedError:
                        continue
                else:
                    data = recv(262144)
            except (socket.timeout, _Idle):
                if self.state != OPEN:
                    return
                now = _time()
                if now - last_rx >= Settings.timeout:
                    self.close(1001, "idle timeout")
                    return
                self._write(encode(OP_PING, b""))
                if raw is not None:
                    self._rx = now
                    t = self._idle_timer = rw.loop.timer(half)
                    t.start(self._idle_check, half)
                continue
            if not data:
                return
            buf += data
            last_rx = self._rx = _time()

    def _deliver(self, op, data):
        fn = self.onmsg
        if fn is None:
            return
        if not self._call(fn, "onmsg", self, op, data):
            self.close(1011, "internal error")

    def _teardown(self, killed):
        rw = self._rwatch
        if rw is not None:
            self._rwatch = None
            rw.close()
        t = self._idle_timer
        if t is not None:
            self._idle_timer = None
            t.close()
        was_open = self.state
        if self.state != CLOSED:
            sock = self.sock
            if not killed:
                # let queued frames (the close frame) out before the FIN
                deadline = _time() + CLOSE_TIMEOUT
                while self._queue is not None and _time() < deadline:
                    gevent.sleep(0.01)
            self.state = CLOSED
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            if not killed and was_open == CLOSING:
                # read what the peer still sends until its FIN, so that
                # closing does not reset the connection under our close frame
                try:
                    sock.settimeout(1.0)
                    while sock.recv(65536):
                        pass
                except (OSError, socket.timeout, GreenletExit):
                    pass
        w = self._watchdog
        if w is not None:
            self._watchdog = None
            w.kill(block=False)
        LOCAL.discard(self)
        for topic in list(self.topics or ()):
            self.unsubscribe(topic)
        if self._connected:
            self._connected = False
            if self.ondisconnect is not None:
                self._call(self.ondisconnect, "ondisconnect", self)
            pm = _state.pm
            if pm is not None:
                try:
                    pm.hook.kore_websocket_disconnect(conn=self)
                except Exception:
                    report(sys.exc_info(), where="kore_websocket_disconnect hook")


def _topic(topic):
    if isinstance(topic, bytes):
        topic = topic.decode("utf-8")
    if not isinstance(topic, str):
        raise TypeError("topic must be str")
    return topic


# ---------------------------------------------------------------------------
# the handshake
# ---------------------------------------------------------------------------

def _resolve(cb, what):
    if cb is None or callable(cb):
        return cb
    if isinstance(cb, str):
        app = _state.app
        mod = getattr(app, "module", None) if app is not None else None
        fn = getattr(mod, cb, None) if mod is not None else None
        if fn is None or not callable(fn):
            raise RuntimeError("websocket_handshake: %s '%s' is not a function of "
                               "the application module" % (what, cb))
        return fn
    raise TypeError("websocket_handshake: %s must be callable or a function name" % what)


def _tokens(values):
    out = set()
    for v in values:
        for t in v.split(","):
            t = t.strip().lower()
            if t:
                out.add(t)
    return out


def handshake_error(req):
    """Why ``req`` is not a valid RFC 6455 opening handshake, or None."""
    if req.method_name != "GET":
        return "method is not GET"
    if not req.http11:
        return "not HTTP/1.1"
    h = {}
    for n, v in req.headers_list():
        h.setdefault(n, []).append(v)
    if "websocket" not in _tokens(h.get("upgrade", ())):
        return "no 'Upgrade: websocket'"
    if "upgrade" not in _tokens(h.get("connection", ())):
        return "no 'Connection: Upgrade'"
    ver = h.get("sec-websocket-version", ())
    if len(ver) != 1 or ver[0].strip() != "13":
        return "Sec-WebSocket-Version is not 13"
    key = h.get("sec-websocket-key", ())
    if len(key) != 1:
        return "no Sec-WebSocket-Key"
    try:
        raw = base64.b64decode(key[0].strip().encode("ascii"), validate=True)
    except (ValueError, UnicodeError):
        return "Sec-WebSocket-Key is not base64"
    if len(raw) != 16:
        return "Sec-WebSocket-Key is not 16 bytes"
    return None


def websocket_handshake(req, onconnect, onmsg, ondisconnect):
    """req.websocket_handshake(onconnect, onmsg, ondisconnect)."""
    onconnect = _resolve(onconnect, "onconnect")
    onmsg = _resolve(onmsg, "onmsg")
    ondisconnect = _resolve(ondisconnect, "ondisconnect")
    err = handshake_error(req)
    if err is not None:
        if req.request_header("sec-websocket-version") not in (None, "13"):
            req.response_header("sec-websocket-version", "13")
        req.response(400, b"")
        return False
    key = req.request_header("sec-websocket-key").strip().encode("ascii")
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    head = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept.decode("ascii"))]
    deflate = None
    if Settings.deflate:
        offers = [v for n, v in req.headers_list() if n == "sec-websocket-extensions"]
        if offers:
            resp, deflate = frames.negotiate_deflate(offers)
            if resp:
                head.append(("Sec-WebSocket-Extensions", resp))
    proto = req.__dict__.get("websocket_protocol")
    if proto:
        head.append(("Sec-WebSocket-Protocol", proto))
    ws = WebSocket(req.stream, onconnect, onmsg, ondisconnect, deflate)
    req.stream.set_facade(ws)    # req.connection is the websocket from now on
    req.upgrade(ws.run, 101, head)
    return True


# ---------------------------------------------------------------------------
# broadcast and topics
# ---------------------------------------------------------------------------

def _data(op, data):
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError("data must be bytes or str")


def _send_all(msg):
    w = _state.worker
    if w is None:
        return
    try:
        w.send(msg)
    except ipc.ChannelClosed:
        pass


def websocket_broadcast(src, op, data, scope):
    """kore.websocket_broadcast(src, op, data, scope): every websocket client
    but ``src`` gets the message once; GLOBAL reaches every worker."""
    if op not in (OP_TEXT, OP_BINARY):
        raise ValueError("websocket_broadcast: op must be WEBSOCKET_OP_TEXT or _BINARY")
    if scope not in (BROADCAST_LOCAL, BROADCAST_GLOBAL):
        raise ValueError("websocket_broadcast: scope must be WEBSOCKET_BROADCAST_LOCAL "
                         "or _GLOBAL")
    frame = encode(op, _data(op, data))
    _deliver_local(LOCAL, frame, src)
    if scope == BROADCAST_GLOBAL and Settings.multi:
        _send_all(ipc.Message(MSG_BROADCAST, frame, ipc.ALL_WORKERS))
    return True


def _deliver_local(conns, frame, exclude=None):
    """Write ``frame`` (encoded once: a server frame is the same bytes for
    every client) to every open connection in ``conns`` but ``exclude``.
    Plain TCP with nothing queued: one non-blocking send straight from
    here (no method call per client); what the socket does not take is
    queued, and a connection with a queue (or TLS) goes through _write, so
    frames on one connection never interleave or reorder."""
    n = 0
    size = len(frame)
    flags = _SEND_FLAGS
    for ws in list(conns):
        if ws.state != OPEN or ws is exclude:
            continue
        n += 1
        raw = ws.raw
        if raw is None or ws._queue is not None:
            ws._write(frame)
            continue
        try:
            k = raw.send(frame, flags)
        except BlockingIOError:
            k = 0
        except OSError:
            ws._abort()
            continue
        if k != size:
            ws._enqueue(frame[k:] if k else frame)
    return n


def publish(topic, data, op=None, _exclude=None):
    """kore.publish(topic, data, op=None): send to every subscriber of
    ``topic`` in every worker.  ``op`` defaults to TEXT for str and BINARY
    for bytes."""
    topic = _topic(topic)
    if op is None:
        op = OP_TEXT if isinstance(data, str) else OP_BINARY
    elif op not in (OP_TEXT, OP_BINARY):
        raise ValueError("publish: op must be WEBSOCKET_OP_TEXT or _BINARY")
    frame = encode(op, _data(op, data))
    subs = TOPICS.get(topic)
    if subs:
        _deliver_local(subs, frame, _exclude)
    if Settings.multi:
        t = topic.encode("utf-8")
        _send_all(ipc.Message(MSG_PUBLISH, _PUB.pack(len(t)) + t + frame, ipc.ALL_WORKERS))
    return True


def num_subscribers(topic):
    """Subscribers of ``topic`` in all workers (the other workers' counts
    arrive through IPC: eventually consistent)."""
    topic = _topic(topic)
    n = len(TOPICS.get(topic, ()))
    r = REMOTE.get(topic)
    if r:
        n += sum(r.values())
    return n


def _announce(topic):
    if Settings.multi:
        t = topic.encode("utf-8")
        _send_all(ipc.Message(MSG_SUBS, struct.pack("!I", len(TOPICS.get(topic, ()))) + t,
                              ipc.ALL_WORKERS))


def hello():
    if Settings.multi:
        _send_all(ipc.Message(MSG_HELLO, b"", ipc.ALL_WORKERS))


def on_message(worker, msg):
    kind = msg.kind
    if not kind.startswith("websocket."):
        return None
    if msg.src == worker.id:
        return True          # our own ALL_WORKERS message: delivered already
    if kind == MSG_BROADCAST:
        _deliver_local(LOCAL, msg.payload)
    elif kind == MSG_PUBLISH:
        p = msg.payload
        n = _PUB.unpack_from(p)[0]
        subs = TOPICS.get(p[2:2 + n].decode("utf-8"))
        if subs:
            _deliver_local(subs, p[2 + n:])
    elif kind == MSG_SUBS:
        count = struct.unpack_from("!I", msg.payload)[0]
        _set_remote(msg.payload[4:].decode("utf-8"), msg.src, count)
    elif kind == MSG_HELLO:
        # a worker (re)started with no subscribers: forget what it had
        for counts in REMOTE.values():
            counts.pop(msg.src, None)
        if TOPICS:
            mine = {t: len(s) for t, s in TOPICS.items()}
            _send_all(ipc.Message(MSG_SUBSALL, json.dumps(mine).encode("utf-8"), msg.src))
    elif kind == MSG_SUBSALL:
        for topic, count in json.loads(msg.payload.decode("utf-8")).items():
            _set_remote(topic, msg.src, count)
    else:
        return None
    return True


def _set_remote(topic, wid, count):
    counts = REMOTE.get(topic)
    if count:
        if counts is None:
            counts = REMOTE[topic] = {}
        counts[wid] = count
    elif counts is not None:
        counts.pop(wid, None)
        if not counts:
            del REMOTE[topic]


def close_all(code=1001, reason="server shutting down"):
    for ws in list(LOCAL):
        ws.close(code, reason)


def abort_all():
    for ws in list(LOCAL):
        ws._abort()

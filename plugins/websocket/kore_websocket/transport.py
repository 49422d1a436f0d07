"""The socket side of one websocket connection: read loops, writes, teardown.

``Transport.run`` is the upgraded connection's greenlet.  It reads the
socket, feeds ``protocol.MessageReader`` and acts on its events: messages go
to the connection object (``connection.WebSocket``), pings are answered,
close frames and protocol errors end the reading.

Plain TCP (the fast path): the greenlet parks on its own io watcher, which
switches straight back to it, and then reads once (no EAGAIN read, no
gevent ``Timeout`` or ``Waiter`` per message); the idle timeout is one timer
per half ``websocket_timeout`` that throws into that wait.  TLS reads
through the gevent socket with a timeout.

Writing never blocks the caller: a frame goes out with one non-blocking
``send``; what the socket does not take is queued and a helper greenlet
writes it (later frames queue behind it, so they keep their order).  The
fan-out in ``pubsub.fanout`` inlines the same send for speed.
"""

import socket
import sys
import time
from collections import deque

import gevent
from gevent import GreenletExit, getcurrent

from kore.log import LOG, LOG_WARNING
from kore.trace import report

from .frames import OP_CLOSE, OP_PING, OP_PONG, encode
from .protocol import MessageReader, close_frame, close_reply, fail_frame, pong_frame

OPEN, CLOSING, CLOSED = 1, 2, 3

CLOSE_TIMEOUT = 2.0        # seconds to wait for the peer's close frame
WRITE_QUEUE_MAX = 64 * 1024 * 1024
# bytes per recv: under glibc's initial mmap threshold (128 KiB), so that
# the buffer of every read comes from the heap; 256 KiB buffers were mmap'ed,
# shrunk and unmapped per read (three system calls per message) unless the
# process's dynamic threshold happened to have risen
RECV_SIZE = 65536
SEND_FLAGS = int(socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)   # an int: no enum "|" per send

_time = time.monotonic
_PING = encode(OP_PING, b"")


class _Idle(Exception):
    """Thrown into a connection greenlet waiting for data past half the
    timeout (see ``Transport._idle_check``)."""


class Transport:
    """The socket of one websocket client and the greenlets that serve it.

    ``endpoint`` is the connection object the events go to; it has
    ``on_open()``, ``on_message(op, data)`` and ``on_close()``.
    """

    __slots__ = ("endpoint", "fd", "tls", "settings", "deflate", "state", "sock", "raw",
                 "queue", "queued", "_glet", "_watchdog", "_rx", "_rwatch", "_idle_timer")

    def __init__(self, endpoint, fd, tls, settings, deflate):
        self.endpoint = endpoint
        self.fd = fd
        self.tls = tls
        self.settings = settings    # service.Settings of this worker
        self.deflate = deflate      # frames.Deflate when negotiated, else None
        self.state = OPEN
        self.sock = None            # the gevent socket (TLS: the SSL socket)
        self.raw = None             # plain TCP: the OS socket under it
        self.queue = None           # frames waiting for the socket (a deque)
        self.queued = 0             # their bytes
        self._glet = None
        self._watchdog = None       # aborts a close handshake the peer never answers
        self._rx = 0.0              # when data last arrived (or the last ping went out)
        self._rwatch = None         # read watcher while the plain-TCP read loop runs
        self._idle_timer = None

    # -- writing -------------------------------------------------------------

    def write(self, data, force=False):
        """Send one encoded frame without blocking; False if the connection
        is closing (``force``: the close frame itself) or gone."""
        if self.state == CLOSED or (self.state == CLOSING and not force):
            return False
        q = self.queue
        if q is not None:
            q.append(data)
            self.queued += len(data)
            if self.queued > WRITE_QUEUE_MAX:
                LOG.write(LOG_WARNING, "websocket client fd %s reads too slowly: "
                          "dropping it" % self.fd)
                self.abort()
                return False
            return True
        raw = self.raw
        n = 0
        if raw is not None:
            # the twin of this send is inlined in pubsub.fanout
            try:
                n = raw.send(data, SEND_FLAGS)
            except BlockingIOError:
                n = 0
            except OSError:
                self.abort()
                return False
            if n == len(data):
                return True
            if n:
                data = data[n:]
        self.enqueue(data)
        return True

    def enqueue(self, data):
        """Queue what the socket did not take (the queue is empty) and start
        the greenlet that writes it; later frames queue behind it."""
        self.queue = deque((data,))
        self.queued = len(data)
        gevent.spawn(self._drain)

    def _drain(self):
        q = self.queue
        try:
            while q:
                if len(q) == 1:
                    data = q.popleft()
                else:
                    data = b"".join(q)
                    q.clear()
                self.queued = 0
                self.sock.sendall(data)
        except (OSError, AttributeError):
            self.abort()
        finally:
            self.queue = None

    def close(self, code=1000, reason=""):
        """Start the close handshake with ``code``; False if already closing."""
        if self.state != OPEN:
            return False
        self.state = CLOSING
        self.write(close_frame(code, reason), force=True)
        if self._watchdog is None and self._glet is not None:
            self._watchdog = gevent.spawn_later(CLOSE_TIMEOUT, self._force_close)
        return True

    def abort(self):
        """Drop the connection without a close handshake."""
        self.state = CLOSED
        self.queue = None
        sock = self.sock
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _force_close(self):
        if self._glet is not None and self.state != CLOSED:
            self.abort()

    # -- the connection greenlet -----------------------------------------------

    def run(self, sock, buffered):
        """Serve the upgraded connection: ``sock`` and the bytes the http
        plugin read past the handshake."""
        self.sock = sock
        self._glet = getcurrent()
        if not self.tls:
            self.raw = getattr(sock, "_sock", None)
        endpoint = self.endpoint
        killed = False
        try:
            endpoint.on_open()
            self._read(buffered)
        except GreenletExit:
            killed = True
        except OSError:
            pass
        except Exception:
            report(sys.exc_info(), where="websocket connection")
        finally:
            self._teardown(killed)
            endpoint.on_close()

    def _read(self, buffered):
        if self.state == CLOSED:
            return
        reader = MessageReader(self.settings.maxframe, self.deflate)
        if buffered and not self._dispatch(reader.feed(buffered)):
            return
        if self.raw is not None:
            self._read_plain(reader)
        else:
            self._read_tls(reader)

    def _dispatch(self, events):
        """Act on the reader's events in order; False when reading is over
        (the client's close frame, a protocol error, the connection closed).
        The plain-TCP loop has this loop inline (one call less per read)."""
        for kind, value in events:
            if kind < OP_CLOSE:                   # OP_TEXT, OP_BINARY: a message
                if self.state == OPEN:
                    self.endpoint.on_message(kind, value)
            elif not self._control(kind, value):
                return False
        return self.state != CLOSED

    def _control(self, kind, value):
        """A control event; False when reading is over."""
        if kind == OP_PING:
            if self.state == OPEN:
                self.write(pong_frame(value))
            return True
        if kind == OP_PONG:
            return True
        if self.state == OPEN:
            self.state = CLOSING
            if kind == OP_CLOSE:
                self.write(close_reply(value[0]), True)
            else:                                 # FAIL: a protocol error
                self.write(fail_frame(value), True)
        return False

    def _read_plain(self, reader):
        half = max(self.settings.timeout / 2.0, 0.05)
        raw_recv = self.raw.recv
        hub = gevent.get_hub()
        hub_switch = hub.switch
        wake = getcurrent().switch
        rw = self._rwatch = hub.loop.io(self.fd, 1)
        self._rx = last_rx = _time()
        t = self._idle_timer = hub.loop.timer(half)
        t.start(self._idle_check, half)
        feed = reader.feed
        on_message = self.endpoint.on_message
        while True:
            rw.start(wake)
            try:
                try:
                    hub_switch()
                finally:
                    rw.stop()
                data = raw_recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                continue            # woken early (nothing to read yet)
            except _Idle:
                if not self._idle(last_rx):
                    return
                t = self._idle_timer = rw.loop.timer(half)
                t.start(self._idle_check, half)
                continue
            if not data:
                return
            last_rx = self._rx = _time()
            for kind, value in feed(data):        # _dispatch, inline
                if kind < OP_CLOSE:
                    if self.state == OPEN:
                        on_message(kind, value)
                elif not self._control(kind, value):
                    return
            if self.state == CLOSED:
                return

    def _read_tls(self, reader):
        sock = self.sock
        sock.settimeout(max(self.settings.timeout / 2.0, 0.05))
        recv = sock.recv
        last_rx = _time()
        while True:
            try:
                data = recv(RECV_SIZE)
            except socket.timeout:
                if not self._idle(last_rx):
                    return
                continue
            if not data:
                return
            last_rx = _time()
            if not self._dispatch(reader.feed(data)):
                return

    # -- the idle timeout --------------------------------------------------------

    def _idle(self, last_rx):
        """Half the timeout passed without data: ping, or close with 1001
        after the whole timeout.  False when reading is over."""
        if self.state != OPEN:
            return False
        now = _time()
        if now - last_rx >= self.settings.timeout:
            self.close(1001, "idle timeout")
            return False
        self.write(_PING)
        self._rx = now
        return True

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

    # -- teardown ------------------------------------------------------------------

    def _teardown(self, killed):
        rw = self._rwatch
        if rw is not None:
            self._rwatch = None
            rw.close()
        t = self._idle_timer
        if t is not None:
            self._idle_timer = None
            t.close()
        was = self.state
        if was != CLOSED:
            sock = self.sock
            if not killed:
                # let queued frames (the close frame) out before the FIN
                deadline = _time() + CLOSE_TIMEOUT
                while self.queue is not None and _time() < deadline:
                    gevent.sleep(0.01)
            self.state = CLOSED
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            if not killed and was == CLOSING:
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

"""The upstream side: a streaming HTTP/1.1 client on gevent sockets.

``h1client`` (sans-I/O, the client role) frames requests and parses
responses; this module
owns the sockets: connecting with a timeout, sending the head and body
pieces, reading events with a read timeout, and a keep-alive pool per node
(``Node.idle``) whose connections are checked for an upstream close before
reuse.  Nothing here knows about the client request.
"""

import select
import socket as _stdsocket
import ssl
import time

from gevent import socket

from . import h1client as h11

monotonic = time.monotonic


class ConnectFailed(Exception):
    """The upstream could not be reached (refused, unreachable, timeout)."""


class UpstreamError(Exception):
    """The upstream connection failed after it was open.

    ``fresh``: nothing of a response had arrived (a reused connection the
    upstream had closed while idle reads like this).
    """

    def __init__(self, msg, fresh=False):
        Exception.__init__(self, msg)
        self.fresh = fresh


class UpstreamTimeout(Exception):
    """The upstream did not answer within the read timeout."""


class Upstream:
    """One connection to a node."""

    __slots__ = ("node", "sock", "h11", "idle_since", "reused", "got_bytes")

    def __init__(self, node, sock):
        self.node = node
        self.sock = sock
        self.h11 = h11.Connection(max_incomplete_event_size=65536)
        self.idle_since = 0.0
        self.reused = False
        self.got_bytes = False

    def send(self, event):
        try:
            data = self.h11.send(event)
            if data:
                self.sock.sendall(data)
        except _stdsocket.timeout:
            raise UpstreamTimeout("upstream send timed out") from None
        except OSError as exc:
            raise UpstreamError("send: %s" % (exc.strerror or exc),
                                fresh=not self.got_bytes) from None

    def next_event(self):
        conn = self.h11
        while True:
            try:
                ev = conn.next_event()
            except h11.RemoteProtocolError as exc:
                raise UpstreamError("bad response: %s" % exc) from None
            if ev is not h11.NEED_DATA:
                return ev
            try:
                data = self.sock.recv(65536)
            except _stdsocket.timeout:
                raise UpstreamTimeout("upstream read timed out") from None
            except OSError as exc:
                raise UpstreamError("read: %s" % (exc.strerror or exc),
                                    fresh=not self.got_bytes) from None
            if data:
                self.got_bytes = True
            elif not self.got_bytes:
                raise UpstreamError("upstream closed the connection", fresh=True)
            conn.receive_data(data)

    def reusable(self):
        c = self.h11
        return c.our_state is h11.DONE and c.their_state is h11.DONE

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def connect(node, timeout, read_timeout, ssl_context=None, server_hostname=None):
    """A new Upstream to ``node``; ConnectFailed when it cannot be reached."""
    m = node.member
    try:
        sock = socket.create_connection((m.host, m.port), timeout=timeout)
    except _stdsocket.timeout:
        raise ConnectFailed("connect timed out after %gs" % timeout) from None
    except OSError as exc:
        raise ConnectFailed(exc.strerror or str(exc)) from None
    try:
        sock.setsockopt(_stdsocket.IPPROTO_TCP, _stdsocket.TCP_NODELAY, 1)
        if ssl_context is not None:
            sock = ssl_context.wrap_socket(sock, server_hostname=server_hostname or m.host)
    except (OSError, ssl.SSLError) as exc:
        sock.close()
        raise ConnectFailed("TLS: %s" % exc) from None
    sock.settimeout(read_timeout)
    return Upstream(node, sock)


def _closed_while_idle(sock):
    """True when the upstream closed (or sent junk on) an idle connection."""
    if isinstance(sock, ssl.SSLSocket):
        # a TLS close arrives as a close_notify record: anything readable
        # on an idle connection means it is not reusable
        try:
            p = select.poll()
            p.register(sock.fileno(), select.POLLIN)
            return bool(p.poll(0))
        except (OSError, ValueError):
            return True
    raw = getattr(sock, "_sock", None) or sock
    try:
        data = raw.recv(1, _stdsocket.MSG_PEEK | _stdsocket.MSG_DONTWAIT)
    except (BlockingIOError, ssl.SSLWantReadError):
        return False
    except (OSError, ValueError):
        return True
    return True     # EOF (b"") or unsolicited bytes: not reusable


class Pool:
    """Keep-alive connections per node: at most ``size`` idle ones, each
    dropped after ``idle_timeout`` seconds unused (kept below the usual
    upstream keep-alive timeouts so that a close rarely races a reuse)."""

    def __init__(self, size, idle_timeout):
        self.size = size
        self.idle_timeout = idle_timeout

    def get(self, node, now, check=True):
        """An idle connection to ``node``, or None.  ``check=False`` skips
        the peek for an upstream close (a syscall) when the caller can send
        the request again on a fresh connection if this one turns out to be
        closed (nginx never peeks: it retries)."""
        idle = node.idle
        while idle:
            up = idle.pop()
            if now - up.idle_since > self.idle_timeout or (
                    check and _closed_while_idle(up.sock)):
                up.close()
                continue
            up.reused = True
            up.got_bytes = False
            return up
        return None

    def put(self, up, now):
        node = up.node
        if self.size <= 0 or len(node.idle) >= self.size or not up.reusable():
            up.close()
            return
        try:
            up.h11.start_next_cycle()
        except h11.LocalProtocolError:
            up.close()
            return
        up.idle_since = now
        node.idle.append(up)

    def prune(self, nodes, now):
        """Close the idle connections that timed out (the health timer)."""
        for node in nodes:
            keep = []
            for up in node.idle:
                if now - up.idle_since > self.idle_timeout:
                    up.close()
                else:
                    keep.append(up)
            node.idle[:] = keep

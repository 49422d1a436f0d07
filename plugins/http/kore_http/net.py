"""Connections before a protocol: accepting, limits, drain, TLS.

Workers inherit the master's listening sockets (``listeners``) through fork
and accept with a gevent io watcher on each listening descriptor: at most ``worker_accept_threshold`` connections per
readiness event, none while ``worker_max_connections`` are open.

Each accepted socket becomes a ``Client`` in its own greenlet: the TLS
handshake (with the ALPN ids plugins offer, ``kore_tls_alpn``), then the
``kore_connection_protocol`` hook (firstresult) picks the protocol from the
negotiated ALPN id or, on a cleartext connection when more than one protocol
is installed, from its first bytes; the chosen protocol's ``serve(client,
preface)`` runs the connection until it ends.  The http plugin itself answers
for ``http/1.1`` and for cleartext connections.

This layer lives in the http plugin, not the kernel: every protocol that
accepts connections here (HTTP/1.1, HTTP/2, ACME's tls-alpn-01) shares the
servers, domains and certificates the http plugin declares.
"""

import errno
import socket
import sys
import time

import gevent
from gevent import GreenletExit, getcurrent
from gevent import socket as gsocket
from gevent.socket import wait_read

from kore import runtime
from kore.log import LOG, LOG_ERR, LOG_INFO
from kore.trace import report

from . import proxyproto
from .listeners import LISTENERS
from .connection import Connection
from .h1.errors import send_error
from .parser import HttpError
from .settings import SETTINGS as S
from .status import HEADERS
from .tls import wants_client_hello
from .tls_hello import offered_alpn

monotonic = time.monotonic
_INET = (socket.AF_INET, socket.AF_INET6)

FRESH_GRACE = 2.0       # seconds a stopping worker waits for a new connection's request


class Expired(Exception):
    """Raised in a connection greenlet blocked past its deadline (sweep)."""


class Client:
    """An accepted connection, before and while a protocol serves it.

    ``deadline`` is a monotonic time after which the sweep timer throws
    ``Expired`` into ``glet`` (0: none); protocols set it around reads.
    """

    __slots__ = ("sock", "fd", "addr", "family", "listener", "server", "tls",
                 "trusted", "proxied_address", "glet", "deadline", "alpn", "_facade",
                 "closed", "successor", "_log_peer")

    def __init__(self, sock, addr, listener):
        self.sock = sock
        self.fd = sock.fileno()
        self.addr = addr
        self.family = sock.family
        self.listener = listener
        self.server = listener.server
        self.tls = listener.ssl_context is not None
        self.glet = getcurrent()
        self.deadline = 0.0
        self.alpn = None
        self.proxied_address = None
        self._facade = None
        self.closed = False
        self.successor = None
        self._log_peer = None
        if self.family in _INET:
            ip = addr[0] if addr else ""
            self.trusted = "*" in S.forwarded_allow or ip in S.forwarded_allow
        else:
            self.trusted = True

    def adopt(self, other):
        """Take over an accepted ``Client``'s state (a protocol's own
        connection class is built from the client the net layer made)."""
        for name in Client.__slots__:
            setattr(self, name, getattr(other, name))
        other.successor = self
        if self._facade is not None:
            self._facade._c = self
        CONNS.replace(other, self)

    def facade(self):
        f = self._facade
        if f is None:
            f = self._facade = Connection(self)
        return f

    def set_facade(self, obj):
        """What ``req.connection`` returns from now on (a websocket)."""
        self._facade = obj

    def log_peer(self):
        """``Stream.log_peer``, made once per connection (a PROXY header
        that names the client comes before it is first asked)."""
        p = self._log_peer
        if p is None:
            p = self._log_peer = (self.tls, self.remote_address(), self.proxied_address,
                                  self.trusted)
        return p

    def remote_address(self):
        """The peer's IP; for a unix socket "unix:" and the socket's path."""
        if self.family in _INET:
            return self.addr[0] if self.addr else ""
        return "unix:%s" % (self.listener.address[1],)

    def peer_cert_der(self):
        if not self.tls:
            return None
        try:
            return self.sock.getpeercert(True)
        except (ValueError, OSError):
            return None

    def peer_cert_dict(self):
        if not self.tls:
            return None
        try:
            cert = self.sock.getpeercert()
        except (ValueError, OSError):
            return None
        if not cert:
            return None
        out = {}
        for key in ("issuer", "subject"):
            d = {}
            for rdn in cert.get(key, ()):
                for k, v in rdn:
                    d[k] = v
            out[key] = d
        return out

    def disconnect(self):
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def drain(self, now):
        """The worker stops: a connection without a protocol yet gets
        FRESH_GRACE seconds for its first bytes."""
        limit = now + FRESH_GRACE
        if not self.deadline or self.deadline > limit:
            self.deadline = limit

    def read_first(self):
        """The first bytes of a cleartext connection (b"" at EOF)."""
        wait = FRESH_GRACE if CONNS.stopping else S.keepalive_time
        self.deadline = monotonic() + wait
        try:
            wait_read(self.fd)
            return self.sock.recv(65536)
        finally:
            self.deadline = 0.0


class ConnectionSet:
    """This worker's open connections, its accept watchers and its stop."""

    __slots__ = ("conns", "stopping", "paused", "sweeper", "listeners")

    def __init__(self):
        self.conns = set()
        self.stopping = False
        self.paused = False
        self.sweeper = None
        self.listeners = LISTENERS

    def __len__(self):
        return len(self.conns)

    def __iter__(self):
        return iter(list(self.conns))

    def add(self, c):
        self.conns.add(c)

    def replace(self, old, new):
        self.conns.discard(old)
        self.conns.add(new)

    def discard(self, c):
        self.conns.discard(c)
        if self.paused and len(self.conns) < S.max_connections:
            self.resume()

    def sweep(self):
        """Every half second: end connections blocked past their deadline.

        Deadlines (keep-alive, header, body timeouts) are plain floats on the
        connection, so waiting for a request costs no timer per read; this
        timer runs whether or not the worker has anything else to do.
        """
        HEADERS.refresh()
        now = monotonic()
        for c in list(self.conns):
            d = c.deadline
            if d and now >= d:
                c.deadline = 0.0
                # from the hub: switches into the blocked greenlet right now,
                # so the exception cannot land anywhere but the expired read
                c.glet.throw(Expired())

    def pause(self):
        if not self.paused:
            self.paused = True
            for lst in self.listeners:
                if lst.watcher is not None:
                    lst.watcher.stop()

    def resume(self):
        if self.paused and not self.stopping:
            self.paused = False
            for lst in self.listeners:
                if lst.watcher is not None:
                    lst.watcher.start(_accept, lst)


CONNS = ConnectionSet()


# ---------------------------------------------------------------------------
# worker: accepting and stopping
# ---------------------------------------------------------------------------

def worker_serve(worker):
    S.load()
    CONNS.stopping = False
    Protocols.load()
    loop = gevent.get_hub().loop
    t = loop.timer(0.5, 0.5)
    t.start(CONNS.sweep)
    CONNS.sweeper = t
    if runtime.option("worker_no_accept"):
        # Kore: workers that only run tasks and timers; the master keeps
        # the listeners open, connections wait in the backlog unanswered
        LOG.write(LOG_INFO, "worker_no_accept: this worker accepts no connections")
        return
    for lst in CONNS.listeners:
        lst.sock.setblocking(False)
        w = loop.io(lst.sock.fileno(), 1)
        lst.watcher = w
        w.start(_accept, lst)


def _accept(lst):
    raw = lst.sock
    raw = getattr(raw, "_sock", raw)
    family = lst.family
    tcp = family in _INET
    conns = CONNS.conns
    maxc = S.max_connections
    for _ in range(S.accept_threshold):
        if len(conns) >= maxc:
            CONNS.pause()
            return
        try:
            fd, addr = raw._accept()
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                LOG.write(LOG_ERR, "accept: %s" % exc)
                CONNS.pause()
                gevent.get_hub().loop.timer(0.1).start(CONNS.resume)
                return
            if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR):
                continue
            raise
        s = gsocket.socket(family, socket.SOCK_STREAM, 0, fd)
        if tcp:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        gevent.spawn(serve, s, addr, lst)


def stop_accepting(worker):
    """Stop accepting: what is already in a listen queue is accepted (and
    answered), then this worker's copy of each listening socket is closed.
    When the master stops it closed its own first, so with the last copy
    gone new connections are refused instead of queued and later reset."""
    CONNS.stopping = True
    for lst in CONNS.listeners:
        if lst.watcher is not None:
            lst.watcher.stop()
            lst.watcher.close()
            lst.watcher = None
            _accept_queued(lst)
        try:
            lst.sock.close()
        except OSError:
            pass
    now = monotonic()
    for c in CONNS:
        c.drain(now)


def _accept_queued(lst):
    raw = getattr(lst.sock, "_sock", lst.sock)
    tcp = lst.family in _INET
    while True:
        try:
            fd, addr = raw._accept()
        except OSError:
            return
        s = gsocket.socket(lst.family, socket.SOCK_STREAM, 0, fd)
        if tcp:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        # busy() counts it before its greenlet first runs: otherwise a drain
        # checking at once sees 0 and the worker exits, resetting it
        g = gevent.spawn(serve, s, addr, lst)
        _QUEUED.add(g)
        g.link(_QUEUED.discard)


_QUEUED = set()     # greenlets of connections accepted by stop_accepting


def busy(worker):
    return len(CONNS) + len(_QUEUED)


def shutdown(worker):
    for c in CONNS:
        try:
            c.glet.kill(block=False)
        except Exception:
            pass
    for lst in CONNS.listeners:
        try:
            lst.sock.close()
        except OSError:
            pass


# ---------------------------------------------------------------------------
# one connection: TLS, the protocol choice
# ---------------------------------------------------------------------------

class Protocols:
    """Per worker: whether a cleartext connection's first bytes are needed
    to choose its protocol (``kore_cleartext_protocols``), and whether TLS
    ClientHellos are peeked at (``kore_tls_context`` is implemented)."""

    sniff = False
    peek_hello = False
    hook = None

    @classmethod
    def load(cls):
        cls.hook = runtime.hook("kore_connection_protocol")
        cls.sniff = any(runtime.notify("kore_cleartext_protocols",
                                       where="kore_cleartext_protocols hook"))
        cls.peek_hello = wants_client_hello()


def read_proxy_header(c):
    """Read a PROXY protocol v1/v2 header (``proxyproto``); set the client's
    proxied address; return the bytes read past it."""
    deadline = monotonic() + S.header_timeout
    buf = b""
    while True:
        c.deadline = deadline
        try:
            data = c.sock.recv(65536)
        except Expired:
            raise HttpError(400, "timeout") from None
        finally:
            c.deadline = 0.0
        if not data:
            raise OSError("closed before the PROXY header")
        buf += data
        r = proxyproto.parse(buf)
        if r is not None:
            break
    address, n = r
    if address is not None:
        c.proxied_address = address
        c._log_peer = None
    return buf[n:]


def _peek_alpn(sock):
    """The ALPN ids of the ClientHello waiting on ``sock`` (not consumed)."""
    deadline = monotonic() + S.header_timeout
    data = b""
    while monotonic() < deadline:
        wait_read(sock.fileno(), timeout=max(0.0, deadline - monotonic()))
        data = sock.recv(16389, socket.MSG_PEEK)
        if not data:
            return None
        ids = offered_alpn(data)
        if ids is not None or len(data) >= 16389:
            return ids
        # the record is not complete yet: wait for more bytes
        gevent.sleep(0.005)
    return None


def serve(sock, addr, listener):
    """The connection greenlet: handshake, protocol choice, the protocol."""
    c = Client(sock, addr, listener)
    CONNS.add(c)
    try:
        if S.hook_open:
            runtime.notify("kore_connection_open", where="kore_connection_open hook",
                           conn=c.facade())
        preface = None
        if S.proxy_protocol and c.trusted:
            # the PROXY header comes before anything else (TLS included)
            preface = read_proxy_header(c) or None
        if c.tls:
            sock.settimeout(S.header_timeout)
            offered = _peek_alpn(sock) if Protocols.peek_hello else None
            c.sock = sock = listener.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False)
            if offered is not None:
                sock.kore_offered_alpn = offered
            sock.do_handshake()
            sock.settimeout(None)
            c.alpn = sock.selected_alpn_protocol()
            if preface:
                raise HttpError(400, "data after the PROXY header before TLS")
        elif Protocols.sniff and not preface:
            preface = c.read_first()
            if not preface:
                return
        proto = Protocols.hook(conn=c, alpn=c.alpn, preface=preface)
        if proto is None:
            return
        proto(c, preface or b"")
    except (OSError, GreenletExit, Expired):
        pass
    except HttpError as exc:
        send_error(c, exc.status)
    except Exception:
        report(sys.exc_info(), where="http connection")
    finally:
        current = c
        while current.successor is not None:
            current = current.successor
        try:
            current.sock.close()
        except OSError:
            pass
        CONNS.conns.discard(c)
        CONNS.discard(current)
        if S.hook_close:
            runtime.notify("kore_connection_close", where="kore_connection_close hook",
                           conn=current.facade())

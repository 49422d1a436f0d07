"""Listening sockets (master) and fair accepting (workers).

The master opens every address of every server through
``arbiter.listen(key, factory)``, so a reload keeps the already open sockets.
Workers inherit them through fork and accept with a gevent io watcher on each
listening descriptor: at most ``worker_accept_threshold`` connections per
readiness event, and none while ``worker_max_connections`` are open.
"""

import errno
import os
import socket
import stat
import time

import gevent
from gevent import socket as gsocket

from kore import _state
from kore.config import ConfigError
from kore.log import LOG, LOG_ERR, LOG_INFO

from . import app as _app
from . import conn as _conn


class Listener:
    __slots__ = ("key", "address", "sock", "server", "ssl_context", "watcher", "family")

    def __init__(self, key, address, sock, server):
        self.key = key
        self.address = address
        self.sock = sock
        self.server = server
        self.ssl_context = getattr(server, "ssl_context", None)
        self.watcher = None
        self.family = sock.family

    def describe(self):
        a = self.address
        if a[0] == "unix":
            return "unix:%s" % a[1]
        host = a[1]
        if ":" in host:
            host = "[%s]" % host
        return "%s://%s:%d" % ("https" if self.server.tls else "http", host, a[2])


LISTENERS = []


def address_key(addr):
    if addr[0] == "unix":
        return "http:unix:%s" % addr[1]
    return "http:tcp:%s:%d" % (addr[1], addr[2])


def open_socket(addr):
    """A bound, listening socket for ("tcp", host, port) / ("unix", path)."""
    backlog = _state.registry.get("socket_backlog")
    if addr[0] == "unix":
        path = addr[1]
        try:
            st = os.stat(path)
            if stat.S_ISSOCK(st.st_mode):
                os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
    else:
        host, port = addr[1], addr[2]
        infos = socket.getaddrinfo(host, port, socket.AF_UNSPEC, socket.SOCK_STREAM,
                                   0, socket.AI_PASSIVE)
        if not infos:
            raise OSError("cannot resolve %s" % host)
        family, stype, proto, _, sockaddr = infos[0]
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            try:
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            except OSError:
                pass
        s.bind(sockaddr)
    s.listen(backlog)
    return s


def master_bind(arbiter):
    del LISTENERS[:]
    for srv in _app.state.servers.values():
        srv.catchall = None
        if len(srv.domains) == 1 and srv.domains[0].host == "*":
            srv.catchall = srv.domains[0]
        for addr in srv.addresses:
            key = address_key(addr)
            try:
                sock = arbiter.listen(key, lambda a=addr: open_socket(a))
            except OSError as exc:
                raise ConfigError("server '%s': cannot listen on %s: %s"
                                  % (srv.name, _fmt(addr), exc.strerror or exc)) from None
            lst = Listener(key, addr, sock, srv)
            LISTENERS.append(lst)
            LOG.write(LOG_INFO, "server '%s' listening on %s" % (srv.name, lst.describe()))


def _fmt(addr):
    if addr[0] == "unix":
        return "unix:" + addr[1]
    return "%s:%d" % (addr[1], addr[2])


_paused = [False]
_sweeper = [None]
_threshold = [16]


def worker_serve(worker):
    _conn.Settings.load()
    _conn.STOPPING[0] = False
    _threshold[0] = _state.registry.get("worker_accept_threshold")
    loop = gevent.get_hub().loop
    t = loop.timer(0.5, 0.5)
    t.start(_conn.sweep)
    _sweeper[0] = t
    for lst in LISTENERS:
        lst.sock.setblocking(False)
        w = loop.io(lst.sock.fileno(), 1)
        lst.watcher = w
        w.start(_accept, lst)


def _accept(lst):
    raw = lst.sock
    raw = getattr(raw, "_sock", raw)
    family = lst.family
    tcp = family in (socket.AF_INET, socket.AF_INET6)
    conns = _conn.CONNS
    maxc = _conn.Settings.max_connections
    for _ in range(_threshold[0]):
        if len(conns) >= maxc:
            pause()
            return
        try:
            fd, addr = raw._accept()
        except BlockingIOError:
            return
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                LOG.write(LOG_ERR, "accept: %s" % exc)
                pause()
                gevent.get_hub().loop.timer(0.1).start(resume)
                return
            if exc.errno in (errno.ECONNABORTED, errno.EPROTO, errno.EINTR):
                continue
            raise
        s = gsocket.socket(family, socket.SOCK_STREAM, 0, fd)
        if tcp:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        gevent.spawn(_conn.serve, s, addr, lst)


def pause():
    if not _paused[0]:
        _paused[0] = True
        for lst in LISTENERS:
            if lst.watcher is not None:
                lst.watcher.stop()


def resume():
    if _paused[0] and not _conn.STOPPING[0]:
        _paused[0] = False
        for lst in LISTENERS:
            if lst.watcher is not None:
                lst.watcher.start(_accept, lst)


def connection_closed():
    if _paused[0] and len(_conn.CONNS) < _conn.Settings.max_connections:
        resume()


def stop_accepting(worker):
    _conn.STOPPING[0] = True
    for lst in LISTENERS:
        if lst.watcher is not None:
            lst.watcher.stop()
            lst.watcher.close()
            lst.watcher = None
    # idle keep-alive connections close now; busy ones after their response;
    # one accepted but without a request yet gets FRESH_GRACE seconds to send
    # it (its client has not seen this connection refuse anything)
    now = time.monotonic()
    for c in list(_conn.CONNS):
        c.keepalive = False
        if c.idle:
            if not c.requests:
                limit = now + _conn.FRESH_GRACE
                if not c.deadline or c.deadline > limit:
                    c.deadline = limit
                continue
            try:
                c.sock.shutdown(socket.SHUT_RD)    # its read returns EOF
            except OSError:
                pass


def busy(worker):
    return len(_conn.CONNS)


def shutdown(worker):
    for c in list(_conn.CONNS):
        try:
            c.glet.kill(block=False)
        except Exception:
            pass
    for lst in LISTENERS:
        try:
            lst.sock.close()
        except OSError:
            pass

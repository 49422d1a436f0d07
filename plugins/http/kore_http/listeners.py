"""Listening sockets: opened by the master, inherited by workers.

The master opens every address of every server through
``arbiter.listen(key, factory)``, so a reload keeps the already open sockets;
``LISTENERS`` is what workers accept on (``net``).
"""

import os
import socket
import stat

from kore import runtime
from kore.config import ConfigError
from kore.log import LOG, LOG_INFO

from . import declare as _declare
from .addresses import format_address

LISTENERS = []      # [Listener] of this process


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
        return "%s://%s" % ("https" if self.server.tls else "http",
                            format_address(self.address)) \
            if self.address[0] == "tcp" else format_address(self.address)



def address_key(addr):
    if addr[0] == "unix":
        return "http:unix:%s" % addr[1]
    return "http:tcp:%s:%d" % (addr[1], addr[2])


def open_socket(addr):
    """A bound, listening socket for ("tcp", host, port) / ("unix", path)."""
    backlog = runtime.option("socket_backlog")
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


def set_catchall(srv):
    """A server whose only domain is "*" skips domain matching."""
    srv.catchall = None
    if len(srv.domains) == 1 and srv.domains[0].host == "*":
        srv.catchall = srv.domains[0]


def master_bind(arbiter):
    del LISTENERS[:]
    for srv in _declare.state.servers.values():
        set_catchall(srv)
        for n, addr in enumerate(srv.addresses):
            key = address_key(addr)
            if addr[0] == "tcp" and not addr[2]:
                # port 0 names no port: each server's address gets a socket
                # of its own (one key for every "ip:0" would hand the first
                # server's socket to the others), kept across reloads
                key = "%s:%s:%d" % (key, srv.name, n)
            try:
                sock = arbiter.listen(key, lambda a=addr: open_socket(a))
            except OSError as exc:
                raise ConfigError("server '%s': cannot listen on %s: %s"
                                  % (srv.name, format_address(addr),
                                     exc.strerror or exc)) from None
            if addr[0] == "tcp" and not addr[2]:
                # port 0: the kernel chose one; log and serve under the real
                # port (the key keeps 0, so a reload reuses the socket)
                addr = ("tcp", addr[1], sock.getsockname()[1])
            add_listener(Listener(key, addr, sock, srv))


def adopt_sockets(socks):
    """Serve already listening sockets (gunicorn's) with the application's
    first server, instead of opening its addresses (the gunicorn bridge)."""
    servers = list(_declare.state.servers.values())
    if not servers:
        raise RuntimeError("the kore app declares no server")
    srv = servers[0]
    set_catchall(srv)
    del LISTENERS[:]
    for sock in socks:
        if sock.family == socket.AF_UNIX:
            addr = ("unix", sock.getsockname())
        else:
            name = sock.getsockname()
            addr = ("tcp", name[0], name[1])
        LISTENERS.append(Listener(address_key(addr), addr, sock, srv))


def add_listener(lst):
    LISTENERS.append(lst)
    LOG.write(LOG_INFO, "server '%s' listening on %s" % (lst.server.name, lst.describe()))

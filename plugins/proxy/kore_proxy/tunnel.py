"""WebSocket (and any ``Upgrade``) pass-through, and the byte pipe a
``CONNECT`` tunnel uses.

The upgrade request goes to a node with its ``Upgrade``/``Connection``
headers kept; the node's 101 head is relayed to the client through
``req.upgrade`` and both sockets are then piped to each other until one
side closes.  A refused upgrade (any non-101 answer) is relayed as an
ordinary response.
"""

import socket as _stdsocket

import gevent

from kore.log import LOG, LOG_WARNING
from kore_http.stream import ClientGone

from . import h1client as h11
from .client import ConnectFailed, UpstreamError, UpstreamTimeout, connect
from .headers import HOP_BY_HOP, connection_tokens, request_headers


def pipe(a, b, first_a=b"", first_b=b""):
    """Copy bytes both ways between sockets ``a`` and ``b`` until one side
    ends; ``first_a`` is sent to ``a`` first (bytes read ahead), ``first_b``
    to ``b``."""
    for s in (a, b):
        try:
            s.settimeout(None)
        except OSError:
            pass

    def copy(src, dst, first):
        try:
            if first:
                dst.sendall(first)
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        finally:
            try:
                dst.shutdown(_stdsocket.SHUT_WR)
            except OSError:
                pass

    g1 = gevent.spawn(copy, a, b, first_b)
    g2 = gevent.spawn(copy, b, a, first_a)
    try:
        gevent.joinall([g1, g2])
    finally:
        g1.kill(block=False)
        g2.kill(block=False)


def websocket(mount, a, req, _error, _relay):
    """Proxy an upgrade request ``req`` to one node of alias ``a`` (``_error``
    and ``_relay`` are the mount's answers for failures and plain replies)."""
    stream = req.stream
    bal = a.balancer
    client_host = req.request_header("host") or ""
    addr = stream.proxied_address or stream.remote_address()
    tried = []
    last = "no node available"
    hl = req.headers_list()
    listed = connection_tokens(hl)
    upgrade_headers = [(n, v) for n, v in hl if n == "upgrade" or
                       (n.startswith("sec-websocket-") and n not in listed)]
    from .client import monotonic
    while True:
        node = bal.pick(monotonic(), tried)
        if node is None:
            return _error(req, 502, last, a)
        tried.append(node)
        try:
            up = connect(node, a.connect_timeout, a.read_timeout, a.ssl_context(),
                         node.member.host)
        except ConnectFailed as exc:
            bal.failed(node, monotonic(), str(exc))
            last = "%s: connect: %s" % (node.name, exc)
            continue
        heads = request_headers(hl, addr, stream.trusted, req.protocol, client_host,
                                a.upstream_host(node, client_host))
        heads = [(n, v) for n, v in heads if not n.startswith("sec-websocket-")]
        heads += upgrade_headers + [("connection", "upgrade")]
        target = mount.upstream_target(req, node.member)
        try:
            up.send(h11.Request(method=req._meth, target=target, headers=heads))
            up.send(h11.EndOfMessage())
            ev = up.next_event()
            while isinstance(ev, h11.InformationalResponse) and ev.status_code != 101:
                ev = up.next_event()
        except (UpstreamError, UpstreamTimeout) as exc:
            up.close()
            bal.failed(node, monotonic(), str(exc))
            last = "%s: %s" % (node.name, exc)
            if isinstance(exc, UpstreamTimeout):
                return _error(req, 504, last, a)
            continue
        bal.succeeded(node)
        if not (isinstance(ev, h11.InformationalResponse) and ev.status_code == 101):
            node.conns += 1
            return _relay(req, up, ev, a, node)
        raw = ev.headers.text
        keep = [(n, v) for n, v in raw if n.lower() not in HOP_BY_HOP
                and n.lower() not in ("date", "server")]
        keep += [("Upgrade", ev.headers and _first(raw, "upgrade") or "websocket"),
                 ("Connection", "Upgrade")]
        extra = up.h11.trailing_data[0]
        usock = up.sock
        node.conns += 1

        def tunnel(csock, buffered):
            try:
                pipe(csock, usock, first_a=extra, first_b=buffered)
            finally:
                node.conns -= 1
                try:
                    usock.close()
                except OSError:
                    pass
        try:
            req.upgrade(tunnel, 101, keep)
        except NotImplementedError:
            node.conns -= 1
            up.close()
            LOG.write(LOG_WARNING, "proxy @%s: cannot switch protocols over %s"
                      % (a.name, stream.http_version))
            req.response(505, b"")
        except OSError:
            node.conns -= 1
            up.close()
            raise ClientGone() from None
        return


def _first(raw, name):
    for n, v in raw:
        if n.lower() == name:
            return v
    return None

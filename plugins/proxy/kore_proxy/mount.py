"""``kore.mount('/path', '@name')``: a path prefix proxied to an alias.

``serve`` picks a node, forwards the request (head, then the body streamed
from the client, or replayed from memory when it is small enough to be
retried), reads the response head and streams the body back.  Fail-over:

* a connect failure, or a reused keep-alive connection the upstream had
  closed, goes to the next node (the body was not sent yet, or is replayable);
* an error after the request was sent is retried on another node only for
  idempotent methods whose body is replayable (nginx since 1.9.13);
* a read timeout answers 504, no node left 502; once the response head went
  to the client nothing is retried (the client connection is closed).
"""

import time

from kore.log import LOG, LOG_WARNING
from kore_http.mounts import Mount
from kore_http.stream import ClientGone

from . import h1client as h11
from . import alias as _alias
from .cache import SETTINGS as CACHE
from .cachepolicy import lifetime, request_cacheable, request_wants_fresh
from .client import ConnectFailed, UpstreamError, UpstreamTimeout, connect
from .headers import request_headers, response_headers
from . import tunnel

monotonic = time.monotonic
IDEMPOTENT = frozenset(("GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE"))


class _SinkFailed(Exception):
    def __init__(self, exc):
        Exception.__init__(self, str(exc))
        self.exc = exc


class _Buffer:
    """A body sink keeping the body in memory (replayable bodies)."""

    def __init__(self):
        self.parts = []

    def write(self, data):
        if data:
            self.parts.append(data)

    def done(self):
        pass


class _Forward:
    """A body sink sending each piece upstream as it arrives.  The request
    head goes with the first piece that decoded, so a body the http plugin
    rejects at its start (a bad chunk size) sends nothing upstream; one
    rejected later leaves the upstream an incomplete message on a
    connection that is then closed."""

    def __init__(self, up, head):
        self.up = up
        self.head = head

    def write(self, data):
        if data:
            try:
                if self.head is not None:
                    head, self.head = self.head, None
                    self.up.send(head)
                self.up.send(h11.Data(data=data))
            except (UpstreamError, UpstreamTimeout) as exc:
                raise _SinkFailed(exc) from None

    def done(self):
        try:
            if self.head is not None:
                head, self.head = self.head, None
                self.up.send(head)
            self.up.send(h11.EndOfMessage())
        except (UpstreamError, UpstreamTimeout) as exc:
            raise _SinkFailed(exc) from None


class ProxyMount(Mount):
    reads_body = True

    def __init__(self, prefix, name, base):
        self.prefix = prefix
        self.name = name
        self.base = base
        self.alias = None
        self.where = "proxy %s -> @%s%s" % (prefix or "/", name, base)

    def match(self, path):
        # "OPTIONS *" and other non-path targets are not forwarded
        return path.startswith("/") and Mount.match(self, path)

    def resolve(self):
        self.alias = _alias.get(self.name, "kore.mount(%r, '@%s%s')"
                                % (self.prefix or "/", self.name, self.base))

    def upstream_target(self, req, member):
        rest = req.path[len(self.prefix):]
        path = member.basepath + self.base + rest
        if not path.startswith("/"):
            path = "/" + path
        return path + "?" + req.query if req.query else path

    def serve(self, req):
        a = self.alias
        if a is None:
            self.resolve()
            a = self.alias
        if req.request_header("upgrade") is not None:
            return tunnel.websocket(self, a, req, _error, _relay)
        cache = CACHE.cache
        if cache is None:
            return forward(self, a, req)
        hl = req.headers_list()
        if not request_cacheable(req._meth, hl):
            return forward(self, a, req, None, "PASSED")
        key = cache.key(req.protocol, req.request_header("host") or "", req.target)
        if not request_wants_fresh(hl):
            e, how = cache.lookup(key, hl)
            if e is not None:
                return _from_cache(req, e, how)
        forward(self, a, req, (cache, key, hl) if req._meth == "GET" else None, "MISS")


def _from_cache(req, e, how):
    req.write_status(e.status)
    for n, v in e.headers:
        req.write_header(n, v)
    req.write_header("Age", str(int(e.current_age(time.time()))))
    req.write_header("X-Cache-Lookup", how)
    if e.status != 204:
        req.write_header("Content-Length", str(len(e.body)))
    req.end(e.body)


def _error(req, status, why, a):
    LOG.write(LOG_WARNING, "proxy @%s: %s %s -> %d (%s)"
              % (a.name, req._meth, req.target, status, why))
    req.response_header("Content-Type", "text/plain")
    req.response(status, b"%d %s\n" % (status, REASONS[status]))


REASONS = {502: b"Bad Gateway", 504: b"Gateway Timeout"}


def forward(mount, a, req, capture=None, lookup=None):
    """Proxy ``req`` to alias ``a`` (see the module docstring)."""
    method = req._meth
    stream = req.stream
    bal = a.balancer
    replay = None          # the body as bytes when it can be sent again
    streamed = req._has_body
    if streamed:
        cl = req.request_header("content-length")
        if cl is not None and cl.isdigit() and int(cl) <= a.retry_body_max:
            buf = _Buffer()
            if not stream.read_body(req, buf):
                raise ClientGone()
            replay = b"".join(buf.parts)
            streamed = False
    client_host = req.request_header("host") or ""
    addr = stream.proxied_address or stream.remote_address()
    tried = []
    last = "no node available"
    kind = None
    body = _Progress()
    while True:
        node = bal.pick(monotonic(), tried)
        if node is None:
            break
        tried.append(node)
        m = node.member
        extra = ()
        if m.authorization and req.request_header("authorization") is None:
            extra = (("authorization", m.authorization),)
        heads = request_headers(req.headers_list(), addr, stream.trusted, req.protocol,
                                client_host, a.upstream_host(node, client_host), extra)
        if streamed:
            cl = req.request_header("content-length")
            heads.append(("content-length", cl) if cl is not None
                         else ("transfer-encoding", "chunked"))
        elif replay is not None:
            heads.append(("content-length", str(len(replay))))
        target = mount.upstream_target(req, m)
        up = None
        for attempt in (1, 2):     # a stale pooled connection: once more, fresh
            # a body not streamed can go again on a fresh connection if a
            # reused one was closed: no peek for that (see Pool.get)
            up = a.pool.get(node, monotonic(), streamed) if attempt == 1 else None
            if up is None:
                try:
                    up = connect(node, a.connect_timeout, a.read_timeout,
                                 a.ssl_context(), m.host)
                except ConnectFailed as exc:
                    bal.failed(node, monotonic(), str(exc))
                    last, kind = "%s: connect: %s" % (node.name, exc), "connect"
                    up = None
                    break
            node.conns += 1
            try:
                res = _exchange(req, up, method, target, heads, replay, body)
                break
            except _SinkFailed as exc:
                # the client's body went partly upstream: never retried, and
                # the rest of it is not read: the client connection closes
                node.conns -= 1
                up.close()
                bal.failed(node, monotonic(), str(exc))
                req.keepalive = False
                _error(req, 504 if isinstance(exc.exc, UpstreamTimeout) else 502,
                       "%s: sending the body: %s" % (node.name, exc), a)
                return
            except _ClientGone:
                node.conns -= 1
                up.close()
                raise ClientGone() from None
            except UpstreamTimeout as exc:
                node.conns -= 1
                up.close()
                bal.failed(node, monotonic(), str(exc))
                last, kind = "%s: %s" % (node.name, exc), "timeout"
                up = None
                break
            except UpstreamError as exc:
                node.conns -= 1
                up.close()
                if exc.fresh and up.reused and not body.started and attempt == 1:
                    continue          # the upstream closed an idle connection
                bal.failed(node, monotonic(), str(exc))
                last, kind = "%s: %s" % (node.name, exc), "sent"
                up = None
                break
            except BaseException:
                # the client left (GreenletExit from the http plugin's
                # watcher) or the worker stops: the exchange is abandoned
                node.conns -= 1
                up.close()
                raise
        if up is not None:
            _relay(req, up, res, a, node, capture, lookup)   # the head arrived
            return
        if kind == "timeout":
            break         # a slow upstream may be working on it: no retry
        if body.started or (kind == "sent" and method not in IDEMPOTENT):
            break
    if streamed and not body.started:
        req.keepalive = False      # the body was never read
    _error(req, 504 if kind == "timeout" else 502, last, a)


class _Progress:
    """Whether the client's streamed body started going upstream."""

    started = False


def _exchange(req, up, method, target, heads, replay, body):
    """Send the request on ``up`` and return the response head event; a
    body to stream (``replay`` None) is read from the client now."""
    head = h11.Request(method=method, target=target, headers=heads)
    if req._has_body and replay is None:
        body.started = True
        if not req.stream.read_body(req, _Forward(up, head)):
            raise _ClientGone()
    else:
        up.send(head)
        if replay:
            up.send(h11.Data(data=replay))
        up.send(h11.EndOfMessage())
    while True:
        ev = up.next_event()
        if isinstance(ev, h11.InformationalResponse):
            continue          # 100 Continue and 103 are the proxy's business
        if isinstance(ev, h11.Response):
            return ev
        raise UpstreamError("unexpected %s" % type(ev).__name__)


class _ClientGone(Exception):
    pass


def _relay(req, up, res, a, node, capture=None, lookup=None):
    """Stream the response ``res`` (and its body) from ``up`` to ``req``;
    ``capture``: (cache, key, request headers) to store it afterwards."""
    hs, length = response_headers(res.headers.text)
    req.write_status(res.status_code)
    for n, v in hs:
        req.write_header(n, v)
    if length is not None:
        req.write_header("Content-Length", length)
    if lookup is not None:
        req.write_header("X-Cache-Lookup", lookup)
    a.balancer.succeeded(node)
    ok = False
    parts = [] if capture is not None and lifetime(res.status_code, hs) else None
    size = 0
    # a small body with a Content-Length goes out with the head in one write
    small = [] if length is not None and int(length) <= 65536 else None
    try:
        while True:
            try:
                ev = up.next_event()
            except (UpstreamError, UpstreamTimeout) as exc:
                LOG.write(LOG_WARNING, "proxy @%s: %s %s: %s mid-response: closing the "
                          "client connection" % (a.name, req._meth, req.target, exc))
                req.keepalive = False
                req.stream.keepalive = False
                if not req._sent:
                    req.write(b"".join(small or ()))
                req.stream.disconnect()
                return
            if isinstance(ev, h11.Data):
                data = bytes(ev.data)
                if parts is not None:
                    size += len(data)
                    if size > capture[0].max_object:
                        parts = None
                    else:
                        parts.append(data)
                if small is not None:
                    small.append(data)
                else:
                    req.write(data)
            elif isinstance(ev, h11.EndOfMessage):
                ok = True
                break
            else:
                raise UpstreamError("unexpected %s" % type(ev).__name__)
        if small is not None:
            req.end(b"".join(small))
        else:
            req.end()
        if parts is not None:
            cache, key, hl = capture
            cache.store(key, hl, res.status_code, hs, b"".join(parts))
    finally:
        node.conns -= 1
        node.requests += 1
        if ok:
            a.pool.put(up, monotonic())
        else:
            up.close()

"""Backend calls through an alias (Skitai's ``was.get.lb`` and
``was.get.map``): ``kore.httpclient("@api/path")`` from a handler.

A request is sent to one node chosen with the alias's policy, health and
pool, with the proxy's fail-over rules (a connect failure goes to the next
node; an idempotent request whose node failed after it was sent goes to the
next node; a POST is never sent twice); ``map`` sends one request to every
node of the alias and gathers the answers in node order, an exception in
the place of a node that failed.

    client = kore.httpclient("@api/users")
    status, body = await client.get(headers={"accept": "application/json"})
    answers = await client.map("get")     # [(status, body) | exception, ...]
"""

import time

import gevent

from . import h1client as h11
from . import alias as _alias
from .client import ConnectFailed, UpstreamError, UpstreamTimeout, connect
from .members import parse_target
from .mount import IDEMPOTENT

monotonic = time.monotonic


class AliasClient:
    """What ``kore.httpclient("@name/path")`` returns."""

    def __init__(self, url, timeout=None):
        parsed = parse_target(url.split("?", 1)[0])
        if parsed is None:
            raise RuntimeError("kore.httpclient(%r): an alias URL looks like '@name/path'"
                               % (url,))
        name, path = parsed
        self.alias = _alias.ALIASES.get(name)
        if self.alias is None:
            raise RuntimeError("kore.httpclient(%r): no alias '@%s' (known: %s)"
                               % (url, name, ", ".join("@" + n for n in _alias.ALIASES)
                                  or "none"))
        query = url.split("?", 1)[1] if "?" in url else ""
        self.path = (path or "/") + ("?" + query if query else "")
        self.url = url
        self.timeout = timeout

    def __repr__(self):
        return "<kore.httpclient %s>" % self.url

    # -- Kore's verbs (curl plugin signatures) ------------------------------

    async def get(self, headers=None, curlopt=None, return_headers=False):
        return self.request("GET", None, headers, return_headers)

    async def head(self, headers=None, curlopt=None, return_headers=False):
        return self.request("HEAD", None, headers, return_headers)

    async def options(self, headers=None, curlopt=None, return_headers=False):
        return self.request("OPTIONS", None, headers, return_headers)

    async def delete(self, body=None, headers=None, curlopt=None, return_headers=False):
        return self.request("DELETE", body, headers, return_headers)

    async def put(self, body, headers=None, curlopt=None, return_headers=False):
        return self.request("PUT", body, headers, return_headers)

    async def post(self, body, headers=None, curlopt=None, return_headers=False):
        return self.request("POST", body, headers, return_headers)

    async def patch(self, body, headers=None, curlopt=None, return_headers=False):
        return self.request("PATCH", body, headers, return_headers)

    async def map(self, method="GET", body=None, headers=None, return_headers=False):
        """One request to every node, concurrently; the answers in node order
        (an exception object for a node that failed)."""
        a = self.alias
        method = method.upper()
        jobs = [gevent.spawn(self._once, node, method, body, headers, return_headers)
                for node in a.nodes]
        gevent.joinall(jobs)
        return [j.value if j.successful() else j.exception for j in jobs]

    # -- the work --------------------------------------------------------------

    def request(self, method, body, headers, return_headers):
        """Balanced, with fail-over (see the module docstring)."""
        if body is not None and not isinstance(body, bytes):
            raise TypeError("kore.httpclient: body must be bytes")
        a = self.alias
        bal = a.balancer
        tried = []
        errors = []
        while True:
            node = bal.pick(monotonic(), tried)
            if node is None:
                break
            tried.append(node)
            try:
                return self._once(node, method, body, headers, return_headers)
            except _Failed as exc:
                errors.append("%s: %s" % (node.name, exc))
                if exc.kind == "timeout" or (exc.kind == "sent" and method not in IDEMPOTENT):
                    break
        raise RuntimeError("request to '%s' failed: %s" % (
            self.url, "; ".join(errors) or "no node of @%s is available" % a.name))

    def _once(self, node, method, body, headers, return_headers):
        a = self.alias
        m = node.member
        hs = [("host", a.upstream_host(node, m.address)), ("user-agent", "kore-proxy")]
        if m.authorization:
            hs.append(("authorization", m.authorization))
        for k, v in (headers or {}).items():
            if k.lower() not in ("host", "content-length", "transfer-encoding", "connection"):
                hs.append((k, v))
        if body is not None or method in ("POST", "PUT", "PATCH"):
            hs.append(("content-length", str(len(body or b""))))
        target = m.basepath + self.path
        for attempt in (1, 2):
            up = a.pool.get(node, monotonic()) if attempt == 1 else None
            if up is None:
                try:
                    up = connect(node, a.connect_timeout, self.timeout or a.read_timeout,
                                 a.ssl_context(), m.host)
                except ConnectFailed as exc:
                    a.balancer.failed(node, monotonic(), str(exc))
                    raise _Failed("connect", "connect: %s" % exc) from None
            node.conns += 1
            try:
                up.send(h11.Request(method=method, target=target, headers=hs))
                if body:
                    up.send(h11.Data(data=body))
                up.send(h11.EndOfMessage())
                ev = up.next_event()
                while isinstance(ev, h11.InformationalResponse):
                    ev = up.next_event()
                parts = []
                while True:
                    d = up.next_event()
                    if isinstance(d, h11.Data):
                        parts.append(bytes(d.data))
                    elif isinstance(d, h11.EndOfMessage):
                        break
                    else:
                        raise UpstreamError("unexpected %s" % type(d).__name__)
            except UpstreamTimeout as exc:
                up.close()
                a.balancer.failed(node, monotonic(), str(exc))
                raise _Failed("timeout", str(exc)) from None
            except UpstreamError as exc:
                up.close()
                if exc.fresh and up.reused and attempt == 1:
                    continue
                a.balancer.failed(node, monotonic(), str(exc))
                raise _Failed("sent", str(exc)) from None
            except BaseException:
                up.close()
                raise
            finally:
                node.conns -= 1
            a.balancer.succeeded(node)
            a.pool.put(up, monotonic())
            data = b"".join(parts)
            if return_headers:
                hd = {n.decode("latin-1").lower(): v.decode("latin-1") for n, v in ev.headers}
                return ev.status_code, hd, data
            return ev.status_code, data


class _Failed(Exception):
    def __init__(self, kind, msg):
        Exception.__init__(self, msg)
        self.kind = kind


def httpclient(url, **kw):
    """kore_proxy.lbclient.httpclient("@api/path"): an AliasClient (what
    ``kore.httpclient`` returns for '@' URLs when kore-plugin-curl is
    installed)."""
    return AliasClient(url, kw.get("timeout"))

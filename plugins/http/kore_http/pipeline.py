"""One request, whatever carried it: the pipeline every transport calls.

``handle(req)`` runs, in this order (Kore's, see docs/http.md):

1. the ``kore_request_start`` hook (firstresult: a status refuses the request);
2. domain, redirect and route resolution (``routing.resolve``, pure);
3. ``client_verify`` domains refuse requests without a client certificate;
4. redirects, 404 and 405 (with Allow);
5. the route's ``on_headers`` hook;
6. the body (``req.stream.read_body`` into a ``body.BodySink``);
7. auth, ``kore.prerequest`` callbacks and the handler or mount, inside
   the ``kore_http_handle`` hook when a plugin wraps it; an uncaught
   exception becomes a 500 (or the status it names, ``http_status``);
8. the route's ``on_free`` hook, ``kore_request_done`` and the access log.

It returns True when the transport may read the next request on the
connection (the transport still honours ``req.keepalive`` and an upgrade)
and False when the connection must close now.  No protocol bytes, buffers
or offsets appear here: responses go through ``req.stream``.
"""

import sys
from types import CoroutineType
import time

from gevent import GreenletExit

from kore import runtime
from kore.aio import drive, drive_void
from kore.log import LOG, LOG_ERR, LOG_WARNING
from kore.trace import report

from . import accesslog
from . import declare as _declare
from .body import BodySink, close_body_file
from .handlechain import CHAIN
from .response import DONE, NOT_SENT, STREAMING
from .routing import MOUNT, NO_DOMAIN, REDIRECT, ROUTE, resolve
from .settings import SETTINGS as S
from .stream import ClientGone

monotonic = time.monotonic


def _is_coro(x):
    return type(x) is CoroutineType


class Load:
    """Requests in flight in this worker (``http_request_limit``)."""

    __slots__ = ("inflight", "last_nodomain")

    def __init__(self):
        self.inflight = 0
        self.last_nodomain = 0.0


LOAD = Load()


def handle(req):
    """See the module docstring."""
    if S.hook_done or S.accesslog:
        req.start = monotonic()
    if S.hook_start:
        status = runtime.notify("kore_request_start", where="kore_request_start hook",
                                req=req)
        if status is not None:
            if req._has_body and not read_body(req, None):
                return False
            if not req._sent:
                req._error(int(status))
            return finish(req)
        if req.path[:1] != "/" and req.path != "*":
            return simple(req, 400)   # a CONNECT no plugin took
    stream = req.stream
    # routing.resolve's most common answer, inlined: a catch-all domain
    # without redirects and one exact route for the path that allows the
    # method (resolve() gives the same answer, only slower)
    d = stream.server.catchall
    rs = d.exact.get(req.path) if d is not None and not d.redirects else None
    if rs is not None and len(rs) == 1 and (rs[0].methods is None
                                            or req._meth in rs[0].methods):
        kind = ROUTE
        target = rs[0]
        extra = ()
    else:
        kind, d, target, extra = resolve(stream.server, req.host, req._meth, req.path)
    req.domain = d
    if d is not None and d.client_verify and stream.tls and not stream.peer_cert_der():
        req.keepalive = False
        return simple(req, 403)
    if kind == ROUTE:
        req.route = target
        req.args = extra
        if target.on_headers is not None and not _on_headers(req, target):
            if req._has_body and not read_body(req, None):
                return False
            if not req._sent:
                req._error(500)
            return finish(req)
        if req._has_body and not read_body(req, target.on_body_chunk):
            return False
    elif kind == MOUNT:
        req.mount = target
        if req._has_body and not target.reads_body and not read_body(req, None):
            return False
    elif kind == REDIRECT:
        if req._has_body and not read_body(req, None):
            return False
        req.response_header("Location", extra)
        req._respond(target, b"")
        return finish(req)
    else:
        if kind == NO_DOMAIN:
            _log_no_domain(stream.server, req.host)
        elif extra is not None:
            req.response_header("Allow", extra)
        return simple(req, target)
    if not S.admit or admit(req, target):
        if S.wrapped:
            _run_wrapped(req, target)
        else:
            run(req, target.callback, target.auth, target.where)
    if stream.closed:
        return False
    return finish(req)


def admit(req, target):
    """``kore_http_admit``: False when an implementation stopped the
    request (it answered it; an error answers 500)."""
    for fn, plugin in S.admit:
        try:
            ok = fn(req, target)
        except (ClientGone, GreenletExit):
            raise
        except Exception:
            report(sys.exc_info(), where="kore_http_admit hook (plugin '%s')" % plugin,
                   req=req)
            if req._sent == NOT_SENT:
                req._rheaders = None
                req._error(500)
            return False
        if ok is False or req._sent:
            if req._sent == NOT_SENT:
                LOG.write(LOG_ERR, "kore_http_admit (plugin '%s') stopped the request "
                          "to %s without answering it" % (plugin, req.path))
                req._error(500)
            return False
    return True


def _log_no_domain(server, host):
    now = monotonic()
    if now - LOAD.last_nodomain > 10.0:
        LOAD.last_nodomain = now
        LOG.write(LOG_WARNING, "no domain matches host '%s' (configured: %s)"
                  % (host, ", ".join(x.host for x in server.domains)))


def _on_headers(req, route):
    try:
        ok = route.on_headers(req)
        if _is_coro(ok):
            ok = drive(ok)
    except Exception:
        report(sys.exc_info(), where="on_headers hook of route '%s'" % route.name, req=req)
        ok = False
    return ok is not False


def read_body(req, hook):
    """Read the body into memory, a file or ``hook``; False: close now."""
    if req.stream.read_body(req, BodySink(req, hook)):
        return True
    close_body_file(req)
    return False


def simple(req, status):
    """A bodyless ``status`` response (after reading any body)."""
    if req._has_body and not read_body(req, None):
        return False
    req._error(status)
    return finish(req)


def finish(req):
    """After the response: on_free, kore_request_done, the access log."""
    route = req.route
    if route is not None and route.on_free is not None:
        try:
            res = route.on_free(req)
            if _is_coro(res):
                drive(res)
        except Exception:
            report(sys.exc_info(), where="on_free hook of route '%s'" % route.name, req=req)
    if S.hook_done:
        if S.done_call is not None:
            S.done_call(req, req._status, monotonic() - req.start)
        else:
            runtime.notify("kore_request_done", where="kore_request_done hook", req=req,
                           status=req._status, duration=monotonic() - req.start)
    if S.accesslog:
        accesslog.write(req, req._status, monotonic() - req.start)
    if req._body_file is not None or req._all_files:
        close_body_file(req)
    return True


def _run_wrapped(req, target):
    """The handler inside the plugins' ``kore_http_handle`` wrappers."""
    try:
        CHAIN.call(req, target)
    except (ClientGone, GreenletExit):
        raise
    except Exception:
        report(sys.exc_info(), where="kore_http_handle wrapper", req=req)
        if req._sent == NOT_SENT:
            req._rheaders = None
            req._error(500)


def run_target(req, target):
    """The innermost ``kore_http_handle``: auth, prerequest, the handler.
    A wrapper that already answered the request skips all three."""
    if not req._sent:
        run(req, target.callback, target.auth, target.where)
    return req._status


def run(req, fn, auth, where):
    """Run auth, prerequest callbacks and the handler; 500 on errors."""
    stream = req.stream
    unwatch = stream.watch_client(req)
    try:
        if auth is not None and not check_auth(req, auth, where):
            return
        for pre in _declare.state.prerequest:
            res = pre(req)
            if _is_coro(res):
                res = drive(res)
            if res is False:
                if not req._sent:
                    LOG.write(LOG_ERR, "prerequest %s stopped the request to %s "
                              "without responding" % (getattr(pre, "__name__", pre), where))
                    req._error(500)
                return
        res = fn(req, *req.args)
        if res is not None:
            if _is_coro(res):
                drive_void(res)
            else:
                LOG.write(LOG_WARNING, "handler of %s returned %r (ignored; handlers "
                          "return None)" % (where, type(res).__name__))
        sent = req._sent
        if sent != DONE:
            if sent == NOT_SENT:
                LOG.write(LOG_ERR, "handler of %s returned without responding: "
                          "sending 500" % where)
                req._error(500)
            else:
                LOG.write(LOG_WARNING, "handler of %s did not end its response: "
                          "ending it" % where)
                req.end()
    except GreenletExit:
        if req._aborted:
            req._fire_aborted()
            stream.keepalive = False
            raise ClientGone() from None
        raise
    except (ClientGone, BrokenPipeError, ConnectionResetError):
        req._aborted = True
        req._fire_aborted()
        raise ClientGone() from None
    except Exception as exc:
        report(sys.exc_info(), where="handler %s" % where, req=req)
        if req._sent == NOT_SENT:
            req._rheaders = None
            # an exception may name its status (a full database pool: 503)
            status = getattr(exc, "http_status", 500)
            if not isinstance(status, int) or not 400 <= status <= 599:
                status = 500
            try:
                req._error(status)
            except OSError:
                raise ClientGone() from None
        elif req._sent == STREAMING:
            req.keepalive = False
            stream.keepalive = False
    finally:
        unwatch()


def check_auth(req, auth, where):
    """Kore's route/filemap auth: the header or cookie, then verify()."""
    if auth.type == "header":
        value = req.request_header(auth.value)
    else:
        value = req.cookie(auth.value)
    ok = False
    if value is not None:
        try:
            ok = auth.verify(req, value)
            if _is_coro(ok):
                ok = drive(ok)
        except Exception:
            report(sys.exc_info(), where="auth verify of %s" % where, req=req)
            ok = False
    if ok is True:
        return True
    if not req._sent:
        if auth.redirect:
            req.response_header("Location", auth.redirect)
            req._respond(302, b"")
        else:
            req._error(403)
    return False

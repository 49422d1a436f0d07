"""Connections: accept, read requests, dispatch, write responses.

One greenlet per connection runs ``serve()``: it reads into a bytes buffer,
parses every complete request head in it (pipelined requests need no extra
read), reads the body, runs the route and writes each response with one
``sendall``.  Timeouts are gevent socket timeouts, so they fire even when the
worker is otherwise idle.
"""

import errno
import os
import socket
import ssl
import sys
import tempfile
import time
from inspect import iscoroutine

import gevent
from gevent import GreenletExit, getcurrent
from gevent.event import Event

from kore import _state
from kore.log import LOG, LOG_ERR, LOG_WARNING

from . import app as _app
from .parser import HttpError, SPECIAL_RE, chunk_size, framing, parse_request, split_fields
from .request import DONE, NOT_SENT, STREAMING, Connection, HttpRequest
from .status import HEADERS, STATUS_LINES

_timeout = socket.timeout
monotonic = time.monotonic

FRESH_GRACE = 2.0       # seconds a stopping worker waits for a new connection's request
URI_MAX = 1999          # Kore: a request target of 1999 bytes or more gets 414
CHUNK_LINE_MAX = 4096


def _drive_fallback(coro):
    """Run a coroutine whose awaitables block the greenlet (no event loop)."""
    try:
        while True:
            yielded = coro.send(None)
            coro.throw(TypeError("kore cannot await %r: only kore awaitables "
                                 "work in handlers" % (yielded,)))
    except StopIteration as exc:
        return exc.value


try:
    from kore.aio import drive
except ImportError:      # pragma: no cover - the kernel provides it
    drive = _drive_fallback


class Settings:
    """kore.config values read once per worker."""

    header_max = 4096
    header_timeout = 10.0
    body_max = 1024000
    body_timeout = 60.0
    keepalive_time = 20.0
    request_limit = 1000
    request_budget = 0.010
    disk_offload = 0
    disk_path = "tmp_files"
    hsts = 31536000
    pretty_error = False
    max_connections = 512
    proxy_protocol = False
    forwarded_allow = ("127.0.0.1", "::1")
    hooks_start = ()
    hooks_done = ()
    hooks_open = ()
    hooks_close = ()
    accesslog = False

    @classmethod
    def load(cls):
        get = _state.registry.get
        cls.header_max = get("http_header_max")
        cls.header_timeout = float(get("http_header_timeout"))
        cls.body_max = get("http_body_max")
        cls.body_timeout = float(get("http_body_timeout"))
        cls.keepalive_time = float(get("http_keepalive_time"))
        cls.request_limit = get("http_request_limit")
        cls.request_budget = get("http_request_ms") / 1000.0
        cls.disk_offload = get("http_body_disk_offload")
        cls.disk_path = get("http_body_disk_path")
        cls.hsts = get("http_hsts_enable")
        cls.pretty_error = get("http_pretty_error")
        cls.max_connections = get("worker_max_connections")
        cls.proxy_protocol = get("http_proxy_protocol")
        cls.forwarded_allow = tuple(get("http_forwarded_allow_ips"))
        HEADERS.set_server(get("http_server_version"))
        HEADERS.refresh()
        pm = _state.pm
        if pm is not None:
            cls.hooks_start = tuple(pm.hook.kore_request_start.get_hookimpls())
            cls.hooks_done = tuple(pm.hook.kore_request_done.get_hookimpls())
            cls.hooks_open = tuple(pm.hook.kore_connection_open.get_hookimpls())
            cls.hooks_close = tuple(pm.hook.kore_connection_close.get_hookimpls())


S = Settings

# worker state
CONNS = set()
INFLIGHT = [0]
STOPPING = [False]


class ClientGone(Exception):
    pass


class Conn:
    """One client connection (the server side of ``req.connection``)."""

    __slots__ = ("sock", "fd", "addr", "family", "server", "tls", "keepalive", "hsts",
                 "glet", "watcher", "idle", "proxied_address", "trusted", "_facade",
                 "req", "tmo", "listener", "buffered", "closed", "requests", "deadline",
                 "deadline_status", "rwatcher", "pause_evt", "pause_t0", "paused_total",
                 "watch_paused")

    def __init__(self, sock, addr, listener):
        self.sock = sock
        self.fd = sock.fileno()
        self.addr = addr
        self.family = sock.family
        self.listener = listener
        self.server = listener.server
        self.tls = listener.ssl_context is not None
        self.hsts = (b"Strict-Transport-Security: max-age=%d; includeSubDomains\r\n" % S.hsts
                     if self.tls and S.hsts > 0 else None)
        self.keepalive = True
        self.glet = getcurrent()
        self.watcher = None
        self.idle = False
        self.proxied_address = None
        self._facade = None
        self.req = None
        self.tmo = None
        self.deadline = 0.0
        self.deadline_status = None
        self.rwatcher = None
        self.buffered = b""
        self.closed = False
        self.requests = 0
        self.pause_evt = None
        self.pause_t0 = 0.0
        self.paused_total = 0.0
        self.watch_paused = False
        if self.family in (socket.AF_INET, socket.AF_INET6):
            ip = addr[0] if addr else ""
            self.trusted = "*" in S.forwarded_allow or ip in S.forwarded_allow
        else:
            self.trusted = True

    def send(self, data):
        # one non-blocking send usually takes it all; gevent waits otherwise
        if self.tls:
            self.sock.sendall(data)
            return
        try:
            n = self.sock._sock.send(data)
        except BlockingIOError:
            n = 0
        if n < len(data):
            self.sock.sendall(memoryview(data)[n:])

    def settimeout(self, t):
        if t != self.tmo:
            self.tmo = t
            self.sock.settimeout(t)

    def facade(self):
        f = self._facade
        if f is None:
            f = self._facade = Connection(self)
        return f

    def remote_address(self):
        if self.family in (socket.AF_INET, socket.AF_INET6) and self.addr:
            return self.addr[0]
        return ""

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

    # socketify's res.pause() / res.resume(): stop reading from the client
    # (request body, next request) and its timeouts until resumed
    def pause(self):
        if self.pause_evt is None and not self.closed:
            self.pause_evt = Event()
            self.pause_t0 = monotonic()
            w = self.watcher
            if w is not None and w.active:
                w.stop()
                self.watch_paused = True

    def resume(self):
        evt = self.pause_evt
        if evt is None:
            return
        self.pause_evt = None
        self.paused_total += monotonic() - self.pause_t0
        if self.watch_paused:
            self.watch_paused = False
            if self.watcher is not None:
                self.watcher.start(self._readable)
        evt.set()

    def wait_unpaused(self):
        evt = self.pause_evt
        if evt is not None:
            evt.wait()

    def disconnect(self):
        self.keepalive = False
        self.closed = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # cancellation: watch for EOF while a handler is blocked
    def _readable(self):
        w = self.watcher
        if self.tls:
            # a TLS peer's close arrives as a close_notify record, which a
            # peek would take for data: read through OpenSSL instead and keep
            # what is a pipelined request for the connection loop
            try:
                data = self.sock._sslobj.read(65536)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
                return   # part of a record: wait for the rest
            except (ssl.SSLError, OSError, ValueError, AttributeError):
                data = b""
            w.stop()
            if data:
                self.buffered += data
                return
        else:
            try:
                data = self.sock._sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            w.stop()
            if data:
                return       # a pipelined request: nothing to tell
        req = self.req
        if req is not None and req._sent != DONE:
            req._aborted = True
            self.keepalive = False
            self.glet.throw(GreenletExit())
        elif self.tls:
            self.keepalive = False     # the peer closed: no next request


def error_response(status, close=True, headers=b""):
    body = b""
    if S.pretty_error:
        from .status import REASONS
        reason = REASONS.get(status, "")
        body = ("<html><head><title>%d %s</title></head><body><h1>%d %s</h1></body>"
                "</html>\n" % (status, reason, status, reason)).encode("latin-1")
        headers += b"Content-Type: text/html\r\n"
    return b"".join((STATUS_LINES[status], HEADERS.value, headers,
                     b"Content-Length: %d\r\n" % len(body),
                     b"Connection: close\r\n\r\n" if close else b"\r\n", body))


def send_error(c, status, close=True):
    try:
        c.sock.sendall(error_response(status, close))
    except OSError:
        pass


class Expired(Exception):
    """Raised in a connection greenlet blocked past its deadline (sweeper)."""


def _recv(c, deadline, status=408):
    """One read before ``deadline`` (taken at the start of a read phase as
    ``monotonic() + timeout - c.paused_total``: time spent paused does not
    count)."""
    if c.pause_evt is not None:
        c.pause_evt.wait()
    deadline += c.paused_total
    if monotonic() >= deadline:
        raise HttpError(status, "timeout")
    c.deadline = deadline
    c.deadline_status = status
    try:
        data = c.sock.recv(65536)
    except Expired:
        raise HttpError(status, "timeout") from None
    finally:
        c.deadline = 0.0
    if not data:
        raise ClientGone()
    return data


def sweep():
    """Every half second: end connections blocked past their deadline.

    Deadlines (keep-alive, header, body timeouts) are plain floats on the
    connection, so waiting for a request costs no timer per read; this timer
    runs whether or not the worker has anything else to do.
    """
    HEADERS.refresh()
    now = monotonic()
    for c in list(CONNS):
        d = c.deadline
        if d and now >= d:
            c.deadline = 0.0
            # from the hub: switches into the blocked greenlet right now, so
            # the exception cannot land anywhere but the expired read
            c.glet.throw(Expired())


def serve(sock, addr, listener):
    """The connection greenlet."""
    c = Conn(sock, addr, listener)
    CONNS.add(c)
    try:
        if S.hooks_open:
            _state.pm.hook.kore_connection_open(conn=c.facade())
        if c.tls:
            c.settimeout(S.header_timeout)
            c.sock = sock = listener.ssl_context.wrap_socket(
                sock, server_side=True, do_handshake_on_connect=False)
            sock.do_handshake()
            c.settimeout(None)
        buf = b""
        if S.proxy_protocol and c.trusted:
            buf = read_proxy_header(c)
        loop(c, buf)
    except (OSError, ClientGone, GreenletExit, _timeout, Expired):
        pass
    except HttpError as exc:
        send_error(c, exc.status)
    except Exception:
        from kore.trace import report
        report(sys.exc_info(), where="http connection")
    finally:
        CONNS.discard(c)
        if c.watcher is not None:
            c.watcher.close()
        if c.rwatcher is not None:
            c.rwatcher.close()
        try:
            sock.close()
        except OSError:
            pass
        if S.hooks_close:
            try:
                _state.pm.hook.kore_connection_close(conn=c.facade())
            except Exception:
                from kore.trace import report
                report(sys.exc_info(), where="kore_connection_close hook")
        from . import listen
        listen.connection_closed()


def loop(c, buf):
    sock = c.sock
    recv = sock.recv
    if c.tls:
        raw_recv = None
    else:
        # plain TCP: wait for readability, then one recv (no EAGAIN recv
        # per request as a read-first loop would do)
        raw_recv = sock._sock.recv
        hub = gevent.get_hub()
        hub_switch = hub.switch
        wake = getcurrent().switch
        rw = c.rwatcher = hub.loop.io(c.fd, 1)
    pos = 0
    run0 = 0.0
    while True:
        if pos >= len(buf):
            # wait for the next request on an idle connection
            wait = S.keepalive_time
            if not c.keepalive or STOPPING[0]:
                if c.requests or c.closed:
                    return
                # accepted just before the worker began to stop: its client
                # is about to send a request, which is served (briefly)
                wait = min(wait, FRESH_GRACE)
            if c.pause_evt is not None:
                c.pause_evt.wait()
                continue
            c.idle = True
            c.deadline = monotonic() + wait
            try:
                if raw_recv is None:
                    buf = recv(65536)
                else:
                    # hub.wait(rw) without its Waiter: the watcher switches
                    # straight back here.  Anything else that switches in
                    # early finds no data (BlockingIOError) and waits again;
                    # a throw (timeout sweep, kill) stops the watcher too.
                    rw.start(wake)
                    try:
                        hub_switch()
                    finally:
                        rw.stop()
                    try:
                        buf = raw_recv(65536)
                    except BlockingIOError:
                        buf = b""
                        continue
            except Expired:
                return
            finally:
                c.deadline = 0.0
            c.idle = False
            if not buf:
                return
            pos = 0
            run0 = 0.0
        try:
            r = parse_request(buf, pos)
        except HttpError as exc:
            send_error(c, exc.status)
            return
        if r is None:
            buf, pos = _read_head(c, buf, pos)
            if buf is None:
                return
            continue
        method, target, http11, fields, nxt = r
        if nxt - pos > S.header_max:
            send_error(c, 431)
            return
        pos = nxt
        if len(target) >= URI_MAX:
            send_error(c, 414)
            return
        buf, pos = request(c, method, target, http11, fields, buf, pos)
        if buf is None:
            return
        if pos < len(buf):
            # pipelined requests run back to back: after http_request_ms of
            # that, let the worker's other connections have a turn
            now = monotonic()
            if not run0:
                run0 = now
            elif now - run0 >= S.request_budget:
                _yield_to_io()
                run0 = 0.0


def _yield_to_io():
    """Let the event loop poll for I/O before this greenlet goes on.

    gevent.sleep(0) would not do: the hub runs callbacks queued while it
    runs callbacks for up to a switch interval, so a greenlet yielding that
    way comes straight back without the loop ever polling.  A zero timer
    fires only in the loop's next iteration, after the poll.
    """
    hub = gevent.get_hub()
    t = hub.loop.timer(0.0)
    try:
        hub.wait(t)
    finally:
        t.close()


def _read_head(c, buf, pos):
    """More bytes of an incomplete head; (None, 0) when the connection ends."""
    deadline = monotonic() + S.header_timeout - c.paused_total
    while True:
        pending = len(buf) - pos
        if pending > S.header_max:
            nl = buf.find(b"\n", pos, pos + URI_MAX + 32)
            send_error(c, 414 if nl < 0 else 431)
            return None, 0
        if buf.find(b"\n", pos) < 0 and pending >= URI_MAX + 16:
            send_error(c, 414)
            return None, 0
        try:
            data = _recv(c, deadline)
        except HttpError as exc:
            send_error(c, exc.status)
            return None, 0
        except ClientGone:
            return None, 0
        buf = buf[pos:] + data
        pos = 0
        try:
            r = parse_request(buf, 0)
        except HttpError as exc:
            send_error(c, exc.status)
            return None, 0
        if r is not None:
            return buf, 0


def _host_of(target):
    # absolute-form: http://host[:port]/path
    rest = target.split("://", 1)[1]
    slash = rest.find("/")
    if slash < 0:
        return rest, "/"
    return rest[:slash], rest[slash:]


_ALLOW_ORDER = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
_last_nodomain = [0.0]


def request(c, method, target, http11, fields, buf, pos):
    """Handle one request whose head was parsed; return (buf, pos) or
    (None, 0) to close the connection."""
    host = None
    length = 0
    chunked = False
    keepalive = http11
    expect = False
    for name, value in SPECIAL_RE.findall(fields):
        n = name.lower()
        if n == b"host":
            if host is not None:
                send_error(c, 400)
                return None, 0
            host = value.rstrip(b" \t").decode("latin-1")
        elif n == b"connection":
            tokens = value.lower()
            if b"close" in tokens:
                keepalive = False
            elif not http11 and b"keep-alive" in tokens:
                keepalive = True
        elif n == b"expect":
            if value.rstrip(b" \t").lower() == b"100-continue":
                expect = True
            else:
                send_error(c, 417)
                return None, 0
        else:
            # Content-Length / Transfer-Encoding: the careful path
            try:
                length, chunked = framing(split_fields(fields), http11)
            except HttpError as exc:
                send_error(c, exc.status)
                return None, 0
    if host is None:
        if http11:
            send_error(c, 400)
            return None, 0
        host = ""
    elif not host:
        send_error(c, 400)
        return None, 0
    if target[0] != "/":
        if target.startswith(("http://", "https://")):
            host, target = _host_of(target)
            if not host:
                send_error(c, 400)
                return None, 0
        elif target == "*" and method == "OPTIONS":
            pass
        else:
            send_error(c, 400)
            return None, 0
    if (length > S.body_max) or (chunked and S.body_max == 0):
        send_error(c, 413)
        return None, 0
    if INFLIGHT[0] >= S.request_limit:
        send_error(c, 503)
        return None, 0

    req = HttpRequest(c, method, target, http11, fields)
    req.host = host
    if not keepalive or STOPPING[0]:
        req.keepalive = False
    if expect:
        req.expect_continue = True
    c.req = req
    c.requests += 1
    INFLIGHT[0] += 1
    try:
        if S.hooks_done or S.accesslog:
            req.start = monotonic()
        return dispatch(c, req, buf, pos, length, chunked)
    finally:
        INFLIGHT[0] -= 1
        c.req = None


def select_domain(srv, host):
    d = srv.catchall
    if d is not None:
        return d
    h = host.lower()
    if h.startswith("["):
        end = h.find("]")
        h = h[:end + 1] if end > 0 else h
    else:
        colon = h.rfind(":")
        if colon >= 0:
            h = h[:colon]
    for d in srv.domains:
        if d.matches(h):
            return d
    return None


def dispatch(c, req, buf, pos, length, chunked):
    if S.hooks_start:
        status = None
        for res in _state.pm.hook.kore_request_start(req=req):
            if res is not None:
                status = res
                break
        if status is not None:
            buf, pos = read_body(c, req, buf, pos, length, chunked, None)
            if buf is None:
                return None, 0
            if not req._sent:
                req._respond(int(status), b"")
            return finish(c, req, buf, pos)

    d = select_domain(c.server, req.host)
    if d is None:
        now = monotonic()
        if now - _last_nodomain[0] > 10.0:
            _last_nodomain[0] = now
            LOG.write(LOG_WARNING, "no domain matches host '%s' (configured: %s)"
                      % (req.host, ", ".join(x.host for x in c.server.domains)))
        return simple(c, req, buf, pos, length, chunked, 404)
    req.domain = d
    if d.client_verify and c.tls and not c.peer_cert_der():
        req.keepalive = False
        return simple(c, req, buf, pos, length, chunked, 403)
    if d.redirects:
        for rx, status, dst in d.redirects:
            m = rx.search(req.path)
            if m is not None:
                loc = _expand(dst, m)
                buf, pos = read_body(c, req, buf, pos, length, chunked, None)
                if buf is None:
                    return None, 0
                req.response_header("Location", loc)
                req._respond(status, b"")
                return finish(c, req, buf, pos)

    method = req._meth
    path = req.path
    route = None
    allowed = None
    rs = d.exact.get(path)
    if rs is not None:
        for r in rs:
            if r.methods is None or method in r.methods:
                route = r
                break
            allowed = (allowed or set()) | r.methods
    if route is None and d.regex:
        for r in d.regex:
            m = r.rx.search(path)
            if m is None:
                continue
            if r.methods is None or method in r.methods:
                route = r
                args = []
                for g in m.groups():
                    if g is None:
                        break
                    args.append(g)
                req.args = tuple(args)
                break
            allowed = (allowed or set()) | r.methods
    if route is None:
        if allowed is None:
            for fm in d.filemap_list:
                if fm.match(path):
                    buf, pos = read_body(c, req, buf, pos, length, chunked, None)
                    if buf is None:
                        return None, 0
                    run_guarded(c, req, fm.serve, fm.auth, fm.where)
                    return finish(c, req, buf, pos)
            for mnt in d.mounts:
                if mnt.match(path):
                    buf, pos = read_body(c, req, buf, pos, length, chunked, None)
                    if buf is None:
                        return None, 0
                    run_guarded(c, req, mnt.serve, None, mnt.where)
                    return finish(c, req, buf, pos)
            return simple(c, req, buf, pos, length, chunked, 404)
        req.response_header("Allow", ", ".join(m for m in _ALLOW_ORDER if m in allowed))
        return simple(c, req, buf, pos, length, chunked, 405)

    req.route = route
    if route.on_headers is not None:
        try:
            ok = route.on_headers(req)
            if iscoroutine(ok):
                ok = drive(ok)
        except Exception:
            from kore.trace import report
            report(sys.exc_info(), where="on_headers hook of route '%s'" % route.name, req=req)
            ok = False
        if ok is False:
            buf, pos = read_body(c, req, buf, pos, length, chunked, None)
            if buf is None:
                return None, 0
            if not req._sent:
                req._respond(500, b"")
            return finish(c, req, buf, pos)
    if length or chunked:
        buf, pos = read_body(c, req, buf, pos, length, chunked, route.on_body_chunk)
        if buf is None:
            return None, 0
    run_guarded(c, req, route.callback, route.auth, route.where)
    if c.closed:
        return None, 0
    return finish(c, req, buf, pos)


def _expand(dst, m):
    out = []
    i = 0
    while i < len(dst):
        ch = dst[i]
        if ch == "$" and i + 1 < len(dst) and dst[i + 1].isdigit():
            j = i + 1
            while j < len(dst) and dst[j].isdigit():
                j += 1
            n = int(dst[i + 1:j])
            try:
                out.append(m.group(n) or "")
            except IndexError:
                pass
            i = j
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def simple(c, req, buf, pos, length, chunked, status):
    if length or chunked:
        buf, pos = read_body(c, req, buf, pos, length, chunked, None)
        if buf is None:
            return None, 0
    req._respond(status, b"")
    return finish(c, req, buf, pos)


def finish(c, req, buf, pos):
    """After a response: hooks, logs, upgrade, keep-alive or close."""
    if c.buffered:
        # bytes the TLS disconnect watcher read while the handler ran
        buf = buf[pos:] + c.buffered
        pos = 0
        c.buffered = b""
    on_free = req.route.on_free if req.route is not None else None
    if on_free is not None:
        try:
            res = on_free(req)
            if iscoroutine(res):
                drive(res)
        except Exception:
            from kore.trace import report
            report(sys.exc_info(), where="on_free hook of route '%s'" % req.route.name,
                   req=req)
    if S.hooks_done:
        try:
            _state.pm.hook.kore_request_done(req=req, status=req._status,
                                              duration=monotonic() - req.start)
        except Exception:
            from kore.trace import report
            report(sys.exc_info(), where="kore_request_done hook", req=req)
    if S.accesslog:
        from . import accesslog
        accesslog.write(req, req._status, monotonic() - req.start)
    bf = req._body_file
    if bf is not None:
        _close_body_file(req)
    if req._upgrade_to is not None:
        handler = req._upgrade_to
        c.idle = False
        try:
            handler(c.sock, buf[pos:])
        except Exception:
            from kore.trace import report
            report(sys.exc_info(), where="upgraded connection handler", req=req)
        return None, 0
    if not req.keepalive:
        return None, 0
    return buf, pos


def _close_body_file(req):
    f = req._body_file
    try:
        f.close()
    except OSError:
        pass
    if req.body_path:
        try:
            os.unlink(req.body_path)
        except OSError:
            pass


def run_guarded(c, req, fn, auth, where):
    """Run auth, prerequest hooks and the handler; 500 on errors."""
    w = c.watcher
    if w is None:
        w = c.watcher = gevent.get_hub().loop.io(c.fd, 1)
    if c.pause_evt is None:
        w.start(c._readable)
    else:
        c.watch_paused = True      # resume() starts it
    try:
        if auth is not None and not check_auth(req, auth, where):
            return
        for pre in _app.state.prerequest:
            res = pre(req)
            if iscoroutine(res):
                res = drive(res)
            if res is False:
                if not req._sent:
                    LOG.write(LOG_ERR, "prerequest %s stopped the request to %s "
                              "without responding" % (getattr(pre, "__name__", pre), where))
                    req._respond(500, b"")
                return
        res = fn(req, *req.args)
        if res is not None:
            if iscoroutine(res):
                drive(res)
            else:
                LOG.write(LOG_WARNING, "handler of %s returned %r (ignored; handlers "
                          "return None)" % (where, type(res).__name__))
        sent = req._sent
        if sent != DONE:
            if sent == NOT_SENT:
                LOG.write(LOG_ERR, "handler of %s returned without responding: "
                          "sending 500" % where)
                req._respond(500, b"")
            else:
                LOG.write(LOG_WARNING, "handler of %s did not end its response: "
                          "ending it" % where)
                req.end()
    except GreenletExit:
        if req._aborted:
            req._fire_aborted()
            c.keepalive = False
            raise ClientGone() from None
        raise
    except (ClientGone, BrokenPipeError, ConnectionResetError):
        req._aborted = True
        req._fire_aborted()
        raise ClientGone() from None
    except Exception as exc:
        from kore.trace import report
        report(sys.exc_info(), where="handler %s" % where, req=req)
        if req._sent == NOT_SENT:
            req._rheaders = None
            # an exception may name its status (a full database pool: 503)
            status = getattr(exc, "http_status", 500)
            if not isinstance(status, int) or not 400 <= status <= 599:
                status = 500
            try:
                req._respond(status, b"")
            except OSError:
                raise ClientGone() from None
        elif req._sent == STREAMING:
            req.keepalive = False
            c.keepalive = False
    finally:
        w.stop()
        c.watch_paused = False


def check_auth(req, auth, where):
    if auth.type == "header":
        value = req.request_header(auth.value)
    else:
        value = req.cookie(auth.value)
    ok = False
    if value is not None:
        try:
            ok = auth.verify(req, value)
            if iscoroutine(ok):
                ok = drive(ok)
        except Exception:
            from kore.trace import report
            report(sys.exc_info(), where="auth verify of %s" % where, req=req)
            ok = False
    if ok is True:
        return True
    if not req._sent:
        if auth.redirect:
            req.response_header("Location", auth.redirect)
            req._respond(302, b"")
        else:
            req._respond(403, b"")
    return False


# ---------------------------------------------------------------------------
# request bodies
# ---------------------------------------------------------------------------

class _Sink:
    """Where body bytes go: the on_body_chunk hook, memory or a file."""

    __slots__ = ("req", "hook", "parts", "size", "file")

    def __init__(self, req, hook):
        self.req = req
        self.hook = hook
        self.parts = []
        self.size = 0
        self.file = None

    def write(self, data):
        if not data:
            return
        self.size += len(data)
        hook = self.hook
        if hook is not None:
            try:
                ok = hook(self.req, data)
                if iscoroutine(ok):
                    ok = drive(ok)
            except Exception:
                from kore.trace import report
                report(sys.exc_info(), where="on_body_chunk hook", req=self.req)
                ok = False
            if ok is not True:
                raise HttpError(500, "on_body_chunk refused the body")
            return
        if self.file is not None:
            self.file.write(data)
            return
        self.parts.append(data)
        if S.disk_offload and self.size > S.disk_offload:
            self._offload()

    def _offload(self):
        path = S.disk_path
        os.makedirs(path, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="http_body.", dir=path)
        f = os.fdopen(fd, "w+b")
        for p in self.parts:
            f.write(p)
        self.parts = []
        self.file = f
        self.req.body_path = os.path.abspath(name)
        self.req._body_file = f

    def done(self):
        req = self.req
        if self.hook is not None:
            req._body_hooked = True
        elif self.file is not None:
            self.file.flush()
        elif len(self.parts) == 1:
            req._body = self.parts[0]
        elif self.parts:
            req._body = b"".join(self.parts)


def read_body(c, req, buf, pos, length, chunked, hook):
    """Read the request body; return (buf, pos) after it, or (None, 0) after
    an error response (the connection then closes)."""
    if not length and not chunked:
        return buf, pos
    try:
        return _read_body(c, req, buf, pos, length, chunked, hook)
    except HttpError as exc:
        if req._body_file is not None:
            _close_body_file(req)
        if exc.status == 500 and req._sent:
            return None, 0
        send_error(c, exc.status)
        return None, 0
    except ClientGone:
        if req._body_file is not None:
            _close_body_file(req)
        return None, 0


def _read_body(c, req, buf, pos, length, chunked, hook):
    sink = _Sink(req, hook)
    deadline = monotonic() + S.body_timeout - c.paused_total
    if req.expect_continue:
        req.expect_continue = False
        if len(buf) - pos == 0:
            c.send(b"HTTP/1.1 100 Continue\r\n\r\n")
    if not chunked:
        avail = len(buf) - pos
        if avail >= length:
            sink.write(buf[pos:pos + length])
            sink.done()
            return buf, pos + length
        if avail:
            sink.write(buf[pos:] if pos else buf)
        need = length - avail
        while need > 0:
            data = _recv(c, deadline)
            if len(data) > need:
                sink.write(data[:need])
                sink.done()
                return data, need
            sink.write(data)
            need -= len(data)
        sink.done()
        return b"", 0
    # chunked
    total = 0
    while True:
        nl = buf.find(b"\n", pos)
        while nl < 0:
            if len(buf) - pos > CHUNK_LINE_MAX:
                raise HttpError(400, "chunk size line too long")
            buf = buf[pos:] + _recv(c, deadline)
            pos = 0
            nl = buf.find(b"\n")
        if nl - pos > CHUNK_LINE_MAX:
            raise HttpError(400, "chunk size line too long")
        line = buf[pos:nl + 1]
        if not line.endswith(b"\r\n"):
            raise HttpError(400, "bad chunk line ending")
        size = chunk_size(line)
        pos = nl + 1
        if size == 0:
            break
        total += size
        if total > S.body_max:
            raise HttpError(413, "body too large")
        while len(buf) - pos < size + 2:
            if len(buf) - pos > 65536 and len(buf) - pos < size:
                # stream big chunks through the sink
                piece = buf[pos:]
                sink.write(piece)
                size -= len(piece)
                buf, pos = _recv(c, deadline), 0
                continue
            buf = buf[pos:] + _recv(c, deadline)
            pos = 0
        sink.write(buf[pos:pos + size])
        pos += size
        if buf[pos:pos + 2] != b"\r\n":
            raise HttpError(400, "chunk data not followed by CRLF")
        pos += 2
    # trailer section: field lines up to an empty line
    tsize = 0
    while True:
        nl = buf.find(b"\n", pos)
        while nl < 0:
            if len(buf) - pos > S.header_max:
                raise HttpError(431, "trailers too large")
            buf = buf[pos:] + _recv(c, deadline)
            pos = 0
            nl = buf.find(b"\n")
        line = buf[pos:nl + 1]
        pos = nl + 1
        if line == b"\r\n":
            break
        if not line.endswith(b"\r\n") or b":" not in line or b"\r" in line[:-2] \
                or line[:1] in (b" ", b"\t"):
            raise HttpError(400, "bad trailer field")
        tsize += len(line)
        if tsize > S.header_max:
            raise HttpError(431, "trailers too large")
    sink.done()
    return buf, pos


# ---------------------------------------------------------------------------
# PROXY protocol (v1 text and v2 binary), from trusted peers only
# ---------------------------------------------------------------------------

_V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def read_proxy_header(c):
    deadline = monotonic() + S.header_timeout - c.paused_total
    buf = b""
    while len(buf) < 16:
        buf += _recv(c, deadline, 400)
        if buf[:5] == b"PROXY" and b"\n" in buf:
            break
        if not (b"PROXY".startswith(buf[:5]) or _V2_SIG.startswith(buf[:12])):
            raise HttpError(400, "PROXY protocol header expected")
    if buf.startswith(b"PROXY"):
        while b"\r\n" not in buf:
            if len(buf) > 107:
                raise HttpError(400, "PROXY header too long")
            buf += _recv(c, deadline, 400)
        line, _, rest = buf.partition(b"\r\n")
        parts = line.split(b" ")
        if len(parts) == 6 and parts[1] in (b"TCP4", b"TCP6"):
            c.proxied_address = parts[2].decode("ascii", "replace")
        elif len(parts) >= 2 and parts[1] == b"UNKNOWN":
            pass
        else:
            raise HttpError(400, "bad PROXY header")
        return rest
    if buf[:12] != _V2_SIG:
        raise HttpError(400, "PROXY protocol header expected")
    ln = int.from_bytes(buf[14:16], "big")
    while len(buf) < 16 + ln:
        buf += _recv(c, deadline, 400)
    fam = buf[13]
    body = buf[16:16 + ln]
    if buf[12] & 0x0F == 1:         # PROXY command
        if fam >> 4 == 1 and len(body) >= 12:
            c.proxied_address = socket.inet_ntop(socket.AF_INET, body[0:4])
        elif fam >> 4 == 2 and len(body) >= 36:
            c.proxied_address = socket.inet_ntop(socket.AF_INET6, body[0:16])
    return buf[16 + ln:]

"""The HTTP/1.1 connection loop: keep-alive, pipelining, request framing.

``serve(client, preface)`` is what the http plugin's
``kore_connection_protocol`` answer runs for an ``http/1.1`` (or cleartext)
connection.  It reads into a bytes buffer, parses every complete request head
in it (pipelined requests need no extra read), checks the framing headers,
builds the ``HttpRequest`` and hands it to ``pipeline.handle``.  Timeouts are
deadlines on the connection that the worker's sweep timer enforces.
"""

import re
import sys
import time

import gevent
from gevent import getcurrent

from kore.trace import report

from ..net import CONNS, Expired, FRESH_GRACE
from ..parser import HttpError, framing, parse_request, split_fields
from ..pipeline import LOAD, handle
from ..request import HttpRequest
from ..settings import SETTINGS as S
from ..stream import ClientGone
from .connection import H1Connection
from .errors import send_error

monotonic = time.monotonic

URI_MAX = 1999          # Kore: a request target of 1999 bytes or more gets 414


def serve(client, preface):
    """Serve an accepted connection as HTTP/1.1 until it ends."""
    c = H1Connection(client)
    try:
        loop(c, preface)
    except (OSError, ClientGone, Expired):
        pass
    except HttpError as exc:
        send_error(c, exc.status)
    finally:
        if c.batch is not None:
            try:
                c.flush()
            except OSError:
                pass
        c.close_watchers()


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
            # wait for the next request on an idle connection (held
            # responses go out from the loop: see H1Connection.hold)
            wait = S.keepalive_time
            if not c.keepalive or CONNS.stopping:
                if c.closed or not CONNS.stopping:
                    return
                # the worker is stopping: a request already on its way is
                # answered (with Connection: close) for FRESH_GRACE seconds
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
        method, target, http11, fields, nxt, special = r
        if nxt - pos > S.header_max:
            send_error(c, 431, method=method, target=target)
            return
        pos = nxt
        if len(target) >= URI_MAX:
            send_error(c, 414, method=method, target=target[:64] + "...")
            return
        c.buf = buf
        c.pos = pos
        if not request(c, method, target, http11, fields, special):
            return
        buf = c.buf
        pos = c.pos
        if c.buffered:
            # bytes the TLS disconnect watcher read while the handler ran
            buf = buf[pos:] + c.buffered
            pos = 0
            c.buffered = b""
        req = c.req
        c.req = None
        if req._upgrade_to is not None:
            c.flush()
            c.idle = False
            try:
                req._upgrade_to(c.sock, buf[pos:])
            except Exception:
                report(sys.exc_info(), where="upgraded connection handler", req=req)
            return
        if not req.keepalive:
            return
        if pos < len(buf):
            # pipelined requests run back to back: after http_request_ms of
            # that, let the worker's other connections have a turn
            now = monotonic()
            if not run0:
                run0 = now
            elif now - run0 >= S.request_budget:
                c.flush()
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
            data = c.recv_before(deadline)
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


_AUTHORITY = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}")


def _host_of(target):
    # absolute-form: http://host[:port]/path
    rest = target.split("://", 1)[1]
    slash = rest.find("/")
    if slash < 0:
        return rest, "/"
    return rest[:slash], rest[slash:]


def _refuse(c, status, method, target, http11):
    send_error(c, status, method=method, target=target, version="1.1" if http11 else "1.0")
    return False


def request(c, method, target, http11, fields, special):
    """Check the framing of a parsed head (``special``: its framing and
    routing fields, from parse_request), then run the request; False when
    the connection must close (an error response was sent)."""
    host = None
    length = 0
    chunked = False
    keepalive = http11
    expect = False
    for name, value in special:
        n = name.lower()
        if n == b"host":
            if host is not None:
                return _refuse(c, 400, method, target, http11)
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
                return _refuse(c, 417, method, target, http11)
        elif not length and not chunked:
            # Content-Length / Transfer-Encoding: the careful path, once
            try:
                length, chunked = framing(split_fields(fields), http11)
            except HttpError as exc:
                return _refuse(c, exc.status, method, target, http11)
    if host is None:
        if http11:
            return _refuse(c, 400, method, target, http11)
        host = ""
    elif not host:
        return _refuse(c, 400, method, target, http11)
    absolute = None
    if target[0] != "/":
        if target.startswith(("http://", "https://")):
            absolute = target
            host, target = _host_of(target)
            if not host:
                return _refuse(c, 400, method, target, http11)
        elif target == "*" and method == "OPTIONS":
            pass
        elif method == "CONNECT" and S.hook_start and _AUTHORITY.fullmatch(target):
            pass      # a forward proxy may take it (kore_request_start)
        else:
            return _refuse(c, 400, method, target, http11)
    if (length > S.body_max) or (chunked and S.body_max == 0):
        return _refuse(c, 413, method, target, http11)
    load = LOAD
    if load.inflight >= S.request_limit:
        return _refuse(c, 503, method, target, http11)
    req = HttpRequest(c, method, target, http11, fields)
    req.host = host
    if absolute is not None:
        req.absolute_target = absolute
    if not keepalive or CONNS.stopping:
        req.keepalive = False
    if expect:
        req.expect_continue = True
    if length or chunked:
        req._has_body = True
        c.blen = length
        c.bchunked = chunked
    c.http_version = "1.1" if http11 else "1.0"
    c.req = req
    c.requests += 1
    load.inflight += 1
    try:
        return handle(req)
    finally:
        load.inflight -= 1

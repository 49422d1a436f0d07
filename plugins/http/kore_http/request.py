"""The request object: Kore's ``kore.http_request`` and socketify's verbs.

One ``HttpRequest`` per request, handed to handlers, validators, hooks and
prerequest callbacks.  It keeps an instance ``__dict__`` (``req.tag = x``
survives from prerequest to handler, as in Kore) and other plugins may add
class attributes (``HttpRequest.pgsql``).

Responses are buffered and written with one ``sendall``: ``response()``,
``send()`` and ``end()`` build the head and body together; ``write()``
starts a chunked response (close-delimited for HTTP/1.0 clients).
"""

import hashlib
import inspect
import re
import json as _json
import os

from kore import _state
from kore.errors import PluginMissing
from kore.log import LOG, LOG_WARNING

from . import app as _app
from . import forms
from .parser import split_fields
from .status import HEADERS, STATUS_LINES, status_line

METHOD_NUM = {"GET": 1, "POST": 2, "PUT": 4, "DELETE": 16, "HEAD": 32,
              "OPTIONS": 64, "PATCH": 128}

# _sent states
NOT_SENT = 0
STREAMING = 1
DONE = 2


class Aborted(Exception):
    """The client went away while the response was being written."""


_BAD_NAME = re.compile(r"[:\r\n \t]")
_GOOD_NAMES = set()     # response header names already checked (bounded)


def _check_name(name, value):
    if not name or _BAD_NAME.search(name):
        raise ValueError("bad response header %r: %r" % (name, value))
    if len(_GOOD_NAMES) < 512:
        _GOOD_NAMES.add(name)


def _drive(result):
    if inspect.iscoroutine(result):
        from . import conn
        return conn.drive(result)
    return result


class HttpRequest:
    """kore.http_request."""

    # the fields every request sets live in slots; the rest are class-level
    # defaults shadowed in the instance __dict__ when a request sets them
    __slots__ = ("__dict__", "conn", "_meth", "target", "path", "query", "http11",
                 "_fields", "route", "args", "_rheaders", "_status", "_sent",
                 "keepalive", "host", "bytes_sent", "domain")

    _hlist = None
    _hdict = None
    _body = b""
    _body_file = None
    body_path = None
    _body_off = 0
    _params = None
    _cookies = None
    _queries = None
    _files = None
    _aborted = False
    _on_aborted = None
    start = 0.0
    _cork = None
    _upgrade_to = None
    _body_hooked = False
    expect_continue = False
    _chunked = False
    _woff = 0            # body bytes written (socketify's write offset)

    def __init__(self, conn, method, target, http11, fields):
        self.conn = conn
        self._meth = method
        self.target = target
        q = target.find("?")
        if q < 0:
            self.path = target
            self.query = ""
        else:
            self.path = target[:q]
            self.query = target[q + 1:]
        self.http11 = http11
        self._fields = fields
        self.host = ""
        self.domain = None
        self.route = None
        self.args = ()
        self._rheaders = None
        self._status = 0
        self._sent = NOT_SENT
        self.keepalive = True
        self.bytes_sent = 0

    def __repr__(self):
        return "<kore.http_request %s %s>" % (self._meth, self.target)

    # ------------------------------------------------------------------
    # Kore getters
    # ------------------------------------------------------------------

    @property
    def method(self):
        """The method as Kore's int (kore.HTTP_METHOD_GET ...)."""
        return METHOD_NUM.get(self._meth, 0)

    @property
    def method_name(self):
        """The request method as a str ("GET")."""
        return self._meth

    @property
    def agent(self):
        """The User-Agent header (Kore returns the path here: a bug)."""
        return self.request_header("user-agent")

    @property
    def protocol(self):
        return "https" if self.conn.tls else "http"

    @property
    def body(self):
        """The whole request body as bytes."""
        if self._body_hooked:
            raise RuntimeError("the body was consumed by the on_body_chunk hook")
        if self._body_file is not None:
            f = self._body_file
            f.seek(0)
            return f.read()
        return self._body

    @property
    def body_digest(self):
        """SHA-256 (32 bytes) of the request body."""
        h = hashlib.sha256()
        if self._body_file is not None:
            f = self._body_file
            f.seek(0)
            for chunk in iter(lambda: f.read(65536), b""):
                h.update(chunk)
        else:
            h.update(self._body)
        return h.digest()

    @property
    def connection(self):
        return self.conn.facade()

    # ------------------------------------------------------------------
    # headers
    # ------------------------------------------------------------------

    def _headers_list(self):
        hl = self._hlist
        if hl is None:
            hl = self._hlist = split_fields(self._fields)
        return hl

    def headers(self):
        """dict of request headers, names lower-cased (last one wins)."""
        d = self._hdict
        if d is None:
            d = self._hdict = dict(self._headers_list())
        return dict(d)

    def request_header(self, name):
        """The first value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        for n, v in self._headers_list():
            if n == name:
                return v
        return None

    def response_header(self, name, value):
        """Add a response header; replaces one of the same name."""
        if not isinstance(name, str) or not isinstance(value, str):
            if isinstance(name, bytes):
                name = name.decode("latin-1")
            if isinstance(value, bytes):
                value = value.decode("latin-1")
            if not isinstance(name, str) or not isinstance(value, str):
                value = str(value)
        if name not in _GOOD_NAMES:
            _check_name(name, value)
        if "\r" in value or "\n" in value:
            raise ValueError("bad response header %r: %r" % (name, value))
        rh = self._rheaders
        if rh is None:
            self._rheaders = [[name, value]]
            return None
        lname = name.lower()
        for item in rh:
            if item[0].lower() == lname:
                item[1] = value
                return None
        rh.append([name, value])
        return None

    def _add_header(self, name, value):
        # add without replacing (Set-Cookie may repeat)
        if self._rheaders is None:
            self._rheaders = []
        self._rheaders.append([name, value])

    # ------------------------------------------------------------------
    # arguments, cookies, body
    # ------------------------------------------------------------------

    def _validate(self, name, value, validators):
        v = validators.get(name)
        if v is None:
            return False
        if hasattr(v, "search"):
            return v.search(value) is not None
        try:
            ok = _drive(v(self, value))
        except Exception:
            from kore.trace import report
            import sys
            report(sys.exc_info(), where="validator for param '%s' of route '%s'"
                   % (name, self.route.name if self.route else self.path), req=self)
            return False
        if ok is True:
            return True
        if ok is not False:
            LOG.write(LOG_WARNING, "validator for param '%s' returned %r, not a bool: "
                      "treated as False" % (name, ok))
        return False

    def _store_params(self, pairs, validators):
        if self._params is None:
            self._params = {}
        for name, value in pairs:
            if name in self._params:
                continue
            if validators and self._validate(name, value, validators):
                self._params[name] = value

    def populate_get(self):
        """Validate query string parameters for req.argument()."""
        r = self.route
        if r is None:
            return None
        m = self._meth
        v = {}
        if r.qs:
            v.update(r.qs)
        if m in ("GET", "HEAD") and m in r.params:
            v.update(r.params[m])
        self._store_params(forms.parse_qs(self.query), v)
        return None

    def populate_post(self):
        """Validate urlencoded body parameters for req.argument()."""
        r = self.route
        if r is None:
            return None
        m = self._meth
        v = r.params.get(m) if m not in ("GET", "HEAD") else None
        if not v:
            return None
        body = self.body
        try:
            text = body.decode("latin-1")
        except Exception:
            return None
        self._store_params(forms.parse_qs(text), v)
        return None

    def populate_multi(self):
        """Parse a multipart/form-data body: fields for req.argument(),
        files for req.file_lookup()."""
        if self._files is not None:
            return None
        self._files = {}
        try:
            fields, files = forms.parse_multipart(self.body, self.request_header("content-type"))
        except ValueError as exc:
            LOG.write(LOG_WARNING, "populate_multi: %s" % exc)
            return None
        for f in files:
            self._files.setdefault(f.name, f)
        r = self.route
        if r is not None:
            m = self._meth
            v = r.params.get(m) if m not in ("GET", "HEAD") else None
            if v:
                self._store_params(fields, v)
        return None

    populate_multipart = populate_multi

    def populate_cookies(self):
        """Parse the Cookie header (req.cookie() does it on demand too)."""
        if self._cookies is None:
            self._cookies = forms.parse_cookies(self.request_header("cookie"))
        return None

    def argument(self, name):
        """A validated parameter (str) or None."""
        p = self._params
        if p is None:
            return None
        return p.get(name)

    def cookie(self, name):
        if self._cookies is None:
            self.populate_cookies()
        return self._cookies.get(name)

    def file_lookup(self, name):
        """The uploaded file ``name`` (kore.http_file) after populate_multi()."""
        if self._files is None:
            return None
        return self._files.get(name)

    def body_read(self, length):
        """(len, bytes): at most ``length`` (<= 1024) bytes of the body."""
        if not isinstance(length, int) or length < 0:
            raise TypeError("length must be a non-negative int")
        if length > 1024:
            raise RuntimeError("body_read: length cannot exceed 1024")
        if self._body_file is not None:
            f = self._body_file
            f.seek(self._body_off)
            chunk = f.read(length)
        else:
            chunk = self._body[self._body_off:self._body_off + length]
        self._body_off += len(chunk)
        return len(chunk), chunk

    # ------------------------------------------------------------------
    # responding (Kore)
    # ------------------------------------------------------------------

    def response(self, status, body=None):
        """req.response(status, body): bytes, None, or an iterator of
        str/bytes (sent chunked)."""
        if self._sent:
            raise RuntimeError("response already sent")
        if type(body) is bytes or body is None:
            self._respond(status, body or b"")
        elif isinstance(body, (bytearray, memoryview)):
            self._respond(status, bytes(body))
        elif isinstance(body, str):
            # Kore iterates a str one character per chunk; send it as text
            self._respond(status, body.encode("utf-8"))
        else:
            try:
                it = iter(body)
            except TypeError:
                raise TypeError("response body must be bytes, None or an iterator "
                                "of str/bytes") from None
            self._stream(status, it)
        return True

    def _respond(self, status, body, ctype=None, close=False):
        """Send a complete response (head + body) in one write."""
        line = STATUS_LINES.get(status) if type(status) is int else None
        if line is None:
            line, status = status_line(status)
        self._status = status
        conn = self.conn
        head = line + HEADERS.value
        if conn.hsts is not None:
            head += conn.hsts
        if ctype is not None:
            head += b"Content-Type: " + ctype + b"\r\n"
        rh = self._rheaders
        has_cl = False
        if rh:
            hs = "\r\n".join(map(": ".join, rh))
            head += hs.encode("latin-1") + b"\r\n"
            # values hold no CR/LF, so only a name can follow a line start
            has_cl = "\ncontent-length:" in "\n" + hs.lower()
        if close or not conn.keepalive:
            self.keepalive = False
        bodyless = status < 200 or status == 204 or status == 304
        if not bodyless and not has_cl:
            head += b"Content-Length: %d\r\n" % len(body)
        if not self.keepalive:
            head += b"Connection: close\r\n\r\n"
        elif self.http11:
            head += b"\r\n"
        else:
            head += b"Connection: keep-alive\r\n\r\n"
        self._sent = DONE
        if bodyless or self._meth == "HEAD":
            self._write(head)
        else:
            self._woff += len(body)
            self._write(head + body)

    def _write(self, data):
        if self._cork is not None:
            self._cork.append(data)
            return
        self.bytes_sent += len(data)
        self.conn.send(data)

    def _start_stream(self, status, ctype=None):
        line = STATUS_LINES.get(status) if type(status) is int else None
        if line is None:
            line, status = status_line(status)
        self._status = status
        conn = self.conn
        parts = [line, HEADERS.value]
        if conn.tls and conn.hsts:
            parts.append(conn.hsts)
        if ctype is not None:
            parts.append(b"Content-Type: " + ctype + b"\r\n")
        rh = self._rheaders
        has_cl = False
        if rh:
            hs = "\r\n".join(map(": ".join, rh))
            parts.append(hs.encode("latin-1") + b"\r\n")
            has_cl = "\ncontent-length:" in "\n" + hs.lower()
        head_only = self._meth == "HEAD" or status in (204, 304)
        if has_cl or head_only:
            self._chunked = False
        elif self.http11:
            self._chunked = True
            parts.append(b"Transfer-Encoding: chunked\r\n")
        else:
            # HTTP/1.0: the end of the body is the end of the connection
            self._chunked = False
            self.keepalive = False
        if not self.keepalive or not conn.keepalive:
            self.keepalive = False
            parts.append(b"Connection: close\r\n\r\n")
        elif not self.http11:
            parts.append(b"Connection: keep-alive\r\n\r\n")
        else:
            parts.append(b"\r\n")
        self._sent = STREAMING
        return b"".join(parts)

    def _chunk(self, data):
        if not data:
            return b""
        if self._meth == "HEAD" or self._status in (204, 304):
            return b""
        self._woff += len(data)
        if self._chunked:
            return b"%x\r\n%s\r\n" % (len(data), data)
        return data

    def _stream(self, status, it):
        head = self._start_stream(status)
        first = True
        try:
            for item in it:
                if isinstance(item, str):
                    item = item.encode("utf-8")
                elif not isinstance(item, (bytes, bytearray, memoryview)):
                    raise TypeError("response iterator yielded %s, not str/bytes"
                                    % type(item).__name__)
                if not item:
                    continue
                data = self._chunk(bytes(item))
                if first:
                    data = head + data
                    first = False
                self._write(data)
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
        end = b"0\r\n\r\n" if self._chunked else b""
        self._write(head + end if first else end)
        self._sent = DONE

    # ------------------------------------------------------------------
    # socketify's verbs
    # ------------------------------------------------------------------

    def _to_bytes(self, message):
        """(bytes, content type or None) of a message."""
        if message is None:
            return b"", None
        if type(message) is bytes:
            return message, None
        if isinstance(message, str):
            return message.encode("utf-8"), None
        if isinstance(message, (bytearray, memoryview)):
            return bytes(message), None
        mod = _app.state.json or _json
        data = mod.dumps(message)
        if isinstance(data, str):
            data = data.encode("utf-8")
        return data, b"application/json"

    def write_status(self, status):
        """Set the response status (int, "200 OK" or b"200 OK"); chainable."""
        if self._sent:
            raise RuntimeError("write_status after the response head was sent")
        status_line(status)   # validate now
        self._status = status
        return self

    def write_header(self, name, value):
        """Add a response header (repeatable names, e.g. Set-Cookie); chainable."""
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        elif not isinstance(value, str):
            value = str(value)
        if self._sent:
            raise RuntimeError("write_header after the response head was sent")
        if name not in _GOOD_NAMES:
            _check_name(name, value)
        if "\r" in value or "\n" in value:
            raise ValueError("bad response header %r: %r" % (name, value))
        self._add_header(name, value)
        return self

    def _ctype_header(self):
        rh = self._rheaders
        if rh:
            for n, _ in rh:
                if n.lower() == "content-type":
                    return True
        return False

    def write(self, message):
        """Send part of the body now (chunked); end() finishes it."""
        data, ctype = self._to_bytes(message)
        if self._sent == DONE:
            raise RuntimeError("response already ended")
        if self._sent == NOT_SENT:
            head = self._start_stream(self._status or 200,
                                      ctype if ctype and not self._ctype_header() else None)
            self._write(head + self._chunk(data))
        elif data:
            self._write(self._chunk(data))
        return self

    def end(self, message=None, end_connection=False):
        """Finish the response with ``message`` (str, bytes or JSON)."""
        data, ctype = self._to_bytes(message)
        if end_connection:
            self.keepalive = False
        if self._sent == DONE:
            raise RuntimeError("response already ended")
        if self._sent == STREAMING:
            tail = self._chunk(data)
            if self._chunked:
                tail += b"0\r\n\r\n"
            self._write(tail)
            self._sent = DONE
        else:
            self._respond(self._status or 200, data,
                          ctype if ctype and not self._ctype_header() else None)
        return self

    cork_end = end

    def cork(self, callback):
        """Run ``callback(req)`` and send everything it wrote in one write."""
        if self._cork is not None:
            callback(self)
            return self
        self._cork = []
        try:
            callback(self)
        finally:
            out, self._cork = self._cork, None
            if out:
                self._write(b"".join(out))
        return self

    def send(self, message=b"", content_type=b"text/plain", status=b"200 OK",
             headers=None, end_connection=False):
        """Status, headers and body in one call; dicts and lists go as JSON."""
        data, ctype = self._to_bytes(message)
        if headers:
            for item in headers:
                n, v = item[0], item[1]
                self.write_header(n, v)
        if ctype is None:
            ct = content_type
            if isinstance(ct, str):
                ct = ct.encode("latin-1")
            ctype = ct or None
        if self._ctype_header():
            ctype = None
        if self._sent:
            raise RuntimeError("response already sent")
        self._respond(status if status is not None else 200, data, ctype,
                      close=end_connection)
        return self

    cork_send = send

    def redirect(self, location, status=302):
        """Redirect to ``location`` (302 by default)."""
        self.response_header("Location", location)
        self._respond(status, b"")
        return self

    def end_without_body(self, end_connection=False):
        """Finish with the head only (Content-Length 0 unless one was set)."""
        self._respond(self._status or 200, b"", close=end_connection)
        return self

    def has_responded(self):
        return self._sent == DONE

    def get_write_offset(self):
        """Body bytes written so far (head and chunk framing not counted)."""
        return self._woff

    def write_offset(self, offset):
        """Override the write offset (uWS overrideWriteOffset), e.g. after
        sending part of a file with a ``Content-Length`` set; chainable."""
        if type(offset) is not int or offset < 0:
            raise ValueError("write offset must be an int >= 0, not %r" % (offset,))
        if self._sent != DONE:
            self._woff = offset
        return self

    def pause(self):
        """Stop reading from the client (a request body streamed through
        ``on_body_chunk``, the next request) and stop its timeouts and
        disconnect detection until ``resume()``; chainable."""
        self.conn.pause()
        return self

    def resume(self):
        """Undo ``pause()``: reading, timeouts and disconnect detection go on."""
        self.conn.resume()
        return self

    @property
    def paused(self):
        return self.conn.pause_evt is not None

    def write_continue(self):
        """Send ``100 Continue`` (the server does it itself before reading a
        body the client is waiting to send; this is for raw use)."""
        if self._sent:
            raise RuntimeError("write_continue after the response head")
        if self.expect_continue:
            self.expect_continue = False
            self.conn.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        return self

    def get_full_url(self):
        return self.target if self.target.startswith("/") else \
            (self.path + ("?" + self.query if self.query else ""))

    def get_url(self):
        return self.path

    def get_method(self):
        return self._meth

    def get_parameter(self, index):
        try:
            return self.args[index]
        except (IndexError, TypeError):
            return None

    def get_parameters(self):
        return list(self.args)

    def get_header(self, name):
        return self.request_header(name)

    def get_headers(self):
        return self.headers()

    def for_each_header(self, callback):
        for n, v in self._headers_list():
            callback(n, v)

    def get_queries(self):
        q = self._queries
        if q is None:
            q = self._queries = {}
            for n, v in forms.parse_qs(self.query):
                q.setdefault(n, v)
        return q

    def get_query(self, name):
        return self.get_queries().get(name)

    def get_cookie(self, name):
        return self.cookie(name)

    def set_cookie(self, name, value, options=None):
        self._add_header("Set-Cookie", forms.set_cookie_header(name, value, options))
        return self

    def get_remote_address(self):
        return self.conn.remote_address()

    def get_remote_address_bytes(self):
        return self.conn.remote_address().encode("latin-1")

    def get_proxied_remote_address(self):
        """The client address given by a trusted proxy (PROXY protocol or
        X-Forwarded-For from an address in http_forwarded_allow_ips), else
        the peer address."""
        a = self.conn.proxied_address
        if a is not None:
            return a
        if self.conn.trusted:
            xff = self.request_header("x-forwarded-for")
            if xff:
                return xff.split(",")[-1].strip()
        return self.conn.remote_address()

    def get_proxied_remote_address_bytes(self):
        return self.get_proxied_remote_address().encode("latin-1")

    @property
    def aborted(self):
        """True once the client went away before the response was complete."""
        return self._aborted

    @aborted.setter
    def aborted(self, value):
        self._aborted = bool(value)

    def on_aborted(self, callback):
        """Call ``callback(req)`` if the client disconnects mid-request."""
        if self._on_aborted is None:
            self._on_aborted = []
        self._on_aborted.append(callback)
        return self

    # ------------------------------------------------------------------
    # upgrades (websocket plugin)
    # ------------------------------------------------------------------

    def websocket_handshake(self, onconnect, onmsg, ondisconnect):
        raise PluginMissing("websocket_handshake", "kore-plugin-websocket")

    def _upgrade(self, handler, response=None):
        """Take the connection over after this handler returns.

        ``response`` (bytes, e.g. a 101 head) is written now; after the route
        handler returns, the connection greenlet calls ``handler(sock,
        buffered)`` with the raw socket and the bytes already read past this
        request, and closes the socket when it returns.
        """
        if self._sent:
            raise RuntimeError("cannot upgrade: a response was already sent")
        if response:
            self.conn.send(response)
        self._status = 101
        self._sent = DONE
        self._upgrade_to = handler
        self.keepalive = False
        return True

    def _fire_aborted(self):
        cbs, self._on_aborted = self._on_aborted, None
        for cb in cbs or ():
            try:
                _drive(cb(self))
            except Exception:
                from kore.trace import report
                import sys
                report(sys.exc_info(), where="on_aborted callback", req=self)


class Connection:
    """kore.connection: what ``req.connection`` returns."""

    __slots__ = ("_c",)

    def __init__(self, c):
        self._c = c

    @property
    def fd(self):
        return self._c.fd

    @property
    def addr(self):
        if self._c.family not in (2, 10):
            raise RuntimeError("invalid family")
        return self._c.remote_address()

    @property
    def x509(self):
        return self._c.peer_cert_der()

    @property
    def x509dict(self):
        return self._c.peer_cert_dict()

    def disconnect(self):
        self._c.disconnect()
        return True

    def websocket_send(self, op, data):
        raise TypeError("connection is not a websocket connection")

    def __repr__(self):
        return "<kore.connection fd=%s>" % self._c.fd

"""The request object: Kore's ``kore.http_request`` (read side and Kore's
responses); socketify's verbs come from ``response.ResponseVerbs``.

One ``HttpRequest`` per request, handed to handlers, validators, hooks and
prerequest callbacks.  It keeps an instance ``__dict__`` (``req.tag = x``
survives from prerequest to handler, as in Kore).  Other plugins add
attributes (``req.pgsql``) by returning them from the
``kore_http_request_attributes`` hook, never by assigning onto the class.

A request writes nothing itself: every response goes through ``req.stream``
(``kore_http.stream.Stream``), which the transport (HTTP/1.1, HTTP/2)
implements.  ``response()`` sends head and body in one write; an iterator
body is streamed.
"""

import hashlib
import sys
from types import CoroutineType

from kore.aio import drive
from kore.errors import PluginMissing
from kore.log import LOG, LOG_WARNING
from kore.trace import report

from . import declare as _declare
from . import forms
from .forwarded import client_scheme
from .parser import raw_field, split_fields
from .settings import SETTINGS as S
from .status import error_page
from .response import (DONE, NOT_SENT, STREAMING, ResponseVerbs, _GOOD_NAMES,
                       check_header)

METHOD_NUM = _declare.METHOD_BITS

# request attributes other plugins provide (kore_http_request_attributes)
_PLUGIN_ATTRIBUTES = {"websocket_handshake": "kore-plugin-websocket",
                      "pgsql": "kore-plugin-pgsql"}


class NeedsPlugin:
    """The class attribute standing in for a request attribute whose
    plugin is not installed: using it names the package.  (A descriptor,
    not ``__getattr__``: a class with ``__getattr__`` pays for it on every
    attribute access of every request.)"""

    __slots__ = ("name", "package")

    def __init__(self, name, package):
        self.name = name
        self.package = package

    def __get__(self, obj, cls=None):
        if obj is None:
            return self
        raise PluginMissing(self.name, self.package)


def _drive(result):
    if type(result) is CoroutineType:
        return drive(result)
    return result


class HttpRequest(ResponseVerbs):
    """kore.http_request."""

    # the fields every request sets live in slots; the rest are class-level
    # defaults shadowed in the instance __dict__ when a request sets them
    __slots__ = ("__dict__", "stream", "_meth", "target", "path", "query", "http11",
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
    _all_files = None    # every uploaded part (closed after the response)
    _aborted = False
    _on_aborted = None
    start = 0.0
    _cork = False
    _has_body = False    # the transport expects a body (Content-Length, chunked, DATA)
    mount = None         # the mount serving the request, if no route does
    absolute_target = None  # the request line's absolute-form target, if it had one
    _upgrade_to = None
    _body_hooked = False
    expect_continue = False
    _woff = 0            # body bytes written (socketify's write offset)

    def __init__(self, stream, method, target, http11, fields):
        """``fields``: the HTTP/1.1 field block (bytes, split on demand) or a
        list of (lower-case name, value) str pairs (HTTP/2)."""
        self.stream = stream
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
        """"https" or "http": the connection's, or what a trusted proxy says
        (``Forwarded: proto=``, ``X-Forwarded-Proto``)."""
        stream = self.stream
        if stream.tls:
            return "https"
        if stream.trusted:
            return client_scheme(self.headers_list()) or "http"
        return "http"

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
        """kore.connection of this request (``kore_http.connection``)."""
        return self.stream.facade()

    # ------------------------------------------------------------------
    # headers
    # ------------------------------------------------------------------

    def headers_list(self):
        """The request headers as a list of (lower-case name, value) str
        pairs, in arrival order, repeated names kept."""
        hl = self._hlist
        if hl is None:
            f = self._fields
            hl = self._hlist = split_fields(f) if type(f) is bytes else f
        return hl

    _headers_list = headers_list

    def headers(self):
        """dict of request headers, names lower-cased (last one wins)."""
        d = self._hdict
        if d is None:
            d = self._hdict = dict(self._headers_list())
        return dict(d)

    def request_header(self, name):
        """The first value of header ``name`` (case-insensitive), or None."""
        name = name.lower()
        hl = self._hlist
        if hl is None:
            f = self._fields
            if type(f) is bytes:
                # not split yet: one search of the raw block
                return raw_field(f, name)
            hl = self._headers_list()
        for n, v in hl:
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
        if name not in _GOOD_NAMES or "\r" in value or "\n" in value:
            check_header(name, value)
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
        files for req.file_lookup().  The body is streamed (from its file
        when it was offloaded); file parts larger than
        ``http_body_disk_offload`` go to ``http_body_disk_path``; malformed
        or oversized forms are logged and leave no field or file."""
        if self._files is not None:
            return None
        self._files = {}
        if self._body_hooked:
            raise RuntimeError("the body was consumed by the on_body_chunk hook")
        f = self._body_file
        if f is not None:
            f.seek(0)
        try:
            fields, files = forms.parse_multipart(
                f if f is not None else self._body, self.request_header("content-type"),
                disk_path=S.disk_path, file_memory_max=S.disk_offload or None)
        except forms.NotMultipart as exc:
            LOG.write(LOG_WARNING, "populate_multi: %s" % exc)
            return None
        except forms.FormError as exc:
            LOG.write(LOG_WARNING, "populate_multi: %s (%d)" % (exc.reason, exc.status))
            return None
        self._all_files = files
        for part in files:
            self._files.setdefault(part.name, part)
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
        self._sent = DONE
        if self._meth != "HEAD":
            self._woff += len(body)
        self.stream.send_response(self, status, body, ctype, close)

    def _error(self, status):
        """An error response the server makes (404, 405, 403, 500, ...):
        empty, or Kore's small HTML page with ``http_pretty_error``."""
        if S.pretty_error:
            self._respond(status, error_page(status), b"text/html")
        else:
            self._respond(status, b"")

    def _stream(self, status, it):
        """Send the items of ``it`` (str/bytes) as the body."""
        stream = self.stream
        stream.send_head(self, status)
        self._sent = STREAMING
        try:
            for item in it:
                if isinstance(item, str):
                    item = item.encode("utf-8")
                elif not isinstance(item, (bytes, bytearray, memoryview)):
                    raise TypeError("response iterator yielded %s, not str/bytes"
                                    % type(item).__name__)
                if item:
                    if self._meth != "HEAD":
                        self._woff += len(item)
                    stream.send_data(self, bytes(item))
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
        self._sent = DONE
        stream.send_data(self, b"", True)

    # ------------------------------------------------------------------
    # switching protocols (the websocket plugin)
    # ------------------------------------------------------------------

    def upgrade(self, handler, status=101, headers=(), connection=None):
        """Take the connection over once this handler returns.

        The ``status`` head (101 Switching Protocols) with ``headers`` (a
        list of (name, value) str pairs) is sent now; after the route's
        handler returns, the transport calls ``handler(sock, buffered)``
        with the raw socket and the bytes already read past this request,
        and closes the socket when it returns.  ``connection``: the object
        ``req.connection`` (and ``kore_connection_close``) stands for from
        now on (the websocket).  Raises NotImplementedError on a protocol
        that cannot switch (HTTP/2), RuntimeError when a response was
        already sent.
        """
        if self._sent:
            raise RuntimeError("cannot upgrade: a response was already sent")
        self.stream.upgrade(self, handler, status, list(headers))
        if connection is not None:
            self.stream.set_facade(connection)
        self._status = status
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
                report(sys.exc_info(), where="on_aborted callback", req=self)


for _name, _package in _PLUGIN_ATTRIBUTES.items():
    setattr(HttpRequest, _name, NeedsPlugin(_name, _package))

"""socketify.py's response verbs on the request object.

``ResponseVerbs`` is the base class of ``HttpRequest``: ``write_status``,
``write_header``, ``write``, ``end``, ``send``, ``cork``, ``redirect``,
pause/resume, write offsets and the URL/header getters of socketify's
``res``/``req`` pair.  Like Kore's responses they only call the stream
interface (``req.stream``), never a socket.
"""

import json as _json
import re

from . import declare as _declare
from . import forms
from .forwarded import client_address
from .status import status_line

# _sent states
NOT_SENT = 0
STREAMING = 1
DONE = 2

_BAD_NAME = re.compile(r"[:\r\n \t]")
_GOOD_NAMES = set()     # response header names already checked (bounded)


def check_header(name, value):
    """Raise ValueError for a header name that is not a token or a value
    with CR/LF (response splitting)."""
    if name not in _GOOD_NAMES:
        if not name or _BAD_NAME.search(name):
            raise ValueError("bad response header %r: %r" % (name, value))
        if len(_GOOD_NAMES) < 512:
            _GOOD_NAMES.add(name)
    if "\r" in value or "\n" in value:
        raise ValueError("bad response header %r: %r" % (name, value))


class ResponseVerbs:
    """socketify's verbs (mixed into ``HttpRequest``)."""

    __slots__ = ()

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
        mod = _declare.state.json or _json
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
        check_header(name, value)
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
        stream = self.stream
        if self._sent == NOT_SENT:
            stream.send_head(self, self._status or 200,
                             ctype if ctype and not self._ctype_header() else None)
            self._sent = STREAMING
        if data:
            if self._meth != "HEAD":
                self._woff += len(data)
            stream.send_data(self, data)
        return self

    def end(self, message=None, end_connection=False):
        """Finish the response with ``message`` (str, bytes or JSON)."""
        data, ctype = self._to_bytes(message)
        if end_connection:
            self.keepalive = False
        if self._sent == DONE:
            raise RuntimeError("response already ended")
        if self._sent == STREAMING:
            if data and self._meth != "HEAD":
                self._woff += len(data)
            self._sent = DONE
            self.stream.send_data(self, data, True)
        else:
            self._respond(self._status or 200, data,
                          ctype if ctype and not self._ctype_header() else None)
        return self

    cork_end = end

    def cork(self, callback):
        """Run ``callback(req)`` and send everything it wrote in one write."""
        if self._cork:
            callback(self)
            return self
        self._cork = True
        self.stream.cork(True)
        try:
            callback(self)
        finally:
            self._cork = False
            self.stream.cork(False)
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
        self.stream.pause()
        return self

    def resume(self):
        """Undo ``pause()``: reading, timeouts and disconnect detection go on."""
        self.stream.resume()
        return self

    @property
    def paused(self):
        return self.stream.paused

    def write_continue(self):
        """Send ``100 Continue`` (the server does it itself before reading a
        body the client is waiting to send; this is for raw use)."""
        if self._sent:
            raise RuntimeError("write_continue after the response head")
        if self.expect_continue:
            self.expect_continue = False
            self.stream.send_informational(self, 100)
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
        for n, v in self.headers_list():
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
        return self.stream.remote_address()

    def get_remote_address_bytes(self):
        return self.stream.remote_address().encode("latin-1")

    def get_proxied_remote_address(self):
        """The client address given by a trusted proxy (the PROXY protocol,
        ``Forwarded: for=`` or ``X-Forwarded-For`` from a peer in
        http_forwarded_allow_ips), else the peer address."""
        stream = self.stream
        a = stream.proxied_address
        if a is not None:
            return a
        if stream.trusted:
            a = client_address(self.headers_list())
            if a:
                return a
        return stream.remote_address()

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


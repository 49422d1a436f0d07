"""``kore.httpclient`` and ``kore.curl``.

Both hand out awaitables: their ``__await__`` runs the transfer on the
process's ``Multi`` (``kore_curl.multi``), blocking only the calling
greenlet, and returns the result without ever yielding to the coroutine
driver.  Killing the greenlet (``GreenletExit``) removes the transfer from
the multi handle.
"""

import _socket
import io

import pycurl

import kore
from kore import runtime
from kore.log import LOG_ERR, log

from . import options
from .multi import get_multi

USER_AGENT = "kore/%s" % kore.__version__

DEFAULT_TIMEOUT = 60
DEFAULT_RECV_MAX = 2 * 1024 * 1024


_frozen = {}   # option values once the configuration is frozen (workers)
_outgoing_hook = []   # [bool]: kore_httpclient_headers is implemented (cached)


def _plugin_headers(method, url, hlist, given):
    """Add what ``kore_httpclient_headers`` implementations return."""
    if not _outgoing_hook:
        _outgoing_hook.append(runtime.implemented("kore_httpclient_headers"))
    if not _outgoing_hook[0]:
        return
    taken = {k.lower() for k in given} if given else ()
    for extra in runtime.notify("kore_httpclient_headers",
                                where="kore_httpclient_headers hook",
                                method=method, url=url) or ():
        for k, v in (extra or {}).items():
            if not isinstance(k, str) or not isinstance(v, str) or k.lower() in taken \
                    or "\r" in k or "\n" in k or "\r" in v or "\n" in v or ":" in k:
                continue
            hlist.append("%s: %s" % (k, v))


def _setting(name, default):
    registry = runtime.registry()
    if registry.frozen:
        value = _frozen.get(name)
        if value is None:
            value = _frozen[name] = registry.get(name) \
                if name in registry.options else default
        return value
    if name not in registry.options:
        return default    # used as a library, without the plugin's options
    return registry.get(name)


def curl_timeout():
    return _setting("curl_timeout", DEFAULT_TIMEOUT)


def curl_recv_max():
    return _setting("curl_recv_max", DEFAULT_RECV_MAX)


class _Sink:
    """Collects what libcurl writes, refusing more than ``limit`` bytes."""

    __slots__ = ("chunks", "size", "limit", "overflow")

    def __init__(self, limit):
        self.chunks = []
        self.size = 0
        self.limit = limit
        self.overflow = 0

    def write(self, data):
        size = self.size + len(data)
        if size > self.limit:
            self.overflow = size
            log(LOG_ERR, "received too large transfer (%d > %d)" % (size, self.limit))
            return 0
        self.size = size
        self.chunks.append(data)
        return None

    def value(self):
        chunks = self.chunks
        if len(chunks) == 1:
            return chunks[0]
        return b"".join(chunks)


class _HeaderSink(_Sink):
    """Response headers, names lower-cased; a new status line (after a
    redirect or a ``100 Continue``) starts over."""

    __slots__ = ("headers",)

    def __init__(self, limit):
        _Sink.__init__(self, limit)
        self.headers = {}

    def write(self, data):
        size = self.size + len(data)
        if size > self.limit:
            self.overflow = size
            log(LOG_ERR, "received too large transfer (%d > %d)" % (size, self.limit))
            return 0
        self.size = size
        if data[:5] == b"HTTP/":
            self.headers = {}
            return None
        name, sep, value = data.partition(b":")
        if not sep:
            return None
        value = value.strip()
        name = name.strip()
        if not value or not name:
            return None
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")
        return None


def _error_text(errno, error, sink, hsink=None):
    for s in (sink, hsink):
        if s is not None and s.overflow:
            return "received too large transfer (%d > %d)" % (s.overflow, s.limit)
    if error:
        return error
    return "curl error %d" % errno


# ---------------------------------------------------------------------------
# unix sockets in the abstract namespace (Linux: unix="@name")
# ---------------------------------------------------------------------------

def _abstract_opener(name):
    address = b"\0" + name.encode("utf-8")

    def opensocket(purpose, curl_address):
        # runs inside libcurl (on the hub): plain non-blocking socket only
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(address)
        except OSError:
            sock.close()
            return pycurl.SOCKET_BAD
        return sock   # pycurl dups the descriptor; this object closes its own

    return opensocket


def _already_connected(curlfd, purpose):
    return pycurl.SOCKOPT_ALREADY_CONNECTED


# ---------------------------------------------------------------------------
# kore.httpclient
# ---------------------------------------------------------------------------

_GET, _HEAD, _OPTIONS, _PUT, _POST, _PATCH, _DELETE = (
    "GET", "HEAD", "OPTIONS", "PUT", "POST", "PATCH", "DELETE")


def _check_str(kw, value):
    if value is not None and not isinstance(value, str):
        raise TypeError("httpclient: %s must be a str" % kw)
    return value


class httpclient:
    """``kore.httpclient(url, tlscert=, tlskey=, tlsverify=True, cabundle=,
    unix=, curlopt={})``: an HTTP client for one URL.

    Every request method returns an awaitable giving ``(status, body)`` or,
    with ``return_headers=True``, ``(status, headers, body)``.  Clients to
    the same host share connections (one libcurl multi handle per worker).
    """

    __slots__ = ("url", "tlscert", "tlskey", "tlsverify", "cabundle", "unix",
                 "curlopt")

    def __new__(cls, url, *args, **kw):
        # "@alias/path": a plugin's client balanced over the alias's nodes
        # (kore-plugin-proxy, the kore_httpclient_target hook)
        if isinstance(url, str) and url.startswith("@"):
            from kore import runtime
            client = None
            if runtime.implemented("kore_httpclient_target"):
                client = runtime.hook("kore_httpclient_target")(url=url, options=kw)
            if client is None:
                raise RuntimeError("httpclient(%r): '@' URLs name an alias of "
                                   "kore-plugin-proxy, which is not installed" % (url,))
            return client
        return object.__new__(cls)

    def __init__(self, url, tlscert=None, tlskey=None, tlsverify=True,
                 cabundle=None, unix=None, curlopt=None):
        if not isinstance(url, str):
            raise TypeError("httpclient: url must be a str")
        self.url = url
        self.tlscert = _check_str("tlscert", tlscert)
        self.tlskey = _check_str("tlskey", tlskey)
        self.cabundle = _check_str("cabundle", cabundle)
        self.unix = _check_str("unix", unix)
        self.tlsverify = bool(tlsverify)
        if (tlscert is None) != (tlskey is None):
            raise RuntimeError("invalid TLS client configuration")
        if curlopt is not None:
            if type(curlopt) is not dict:
                raise RuntimeError("curlopt must be a dictionary")
            for opt in curlopt:
                if type(opt) is not int:
                    raise RuntimeError("invalid key in curlopt keyword")
        self.curlopt = curlopt

    def __repr__(self):
        return "<kore.httpclient %r>" % (self.url,)

    def get(self, headers=None, curlopt=None, return_headers=False):
        return self._request(_GET, None, headers, curlopt, return_headers)

    def head(self, headers=None, curlopt=None, return_headers=False):
        return self._request(_HEAD, None, headers, curlopt, return_headers)

    def options(self, headers=None, curlopt=None, return_headers=False):
        return self._request(_OPTIONS, None, headers, curlopt, return_headers)

    def put(self, body=None, headers=None, curlopt=None, return_headers=False):
        return self._request(_PUT, body, headers, curlopt, return_headers)

    def post(self, body=None, headers=None, curlopt=None, return_headers=False):
        return self._request(_POST, body, headers, curlopt, return_headers)

    def patch(self, body=None, headers=None, curlopt=None, return_headers=False):
        return self._request(_PATCH, body, headers, curlopt, return_headers)

    def delete(self, body=None, headers=None, curlopt=None, return_headers=False):
        return self._request(_DELETE, body, headers, curlopt, return_headers)

    def _request(self, method, body, headers, curlopt, return_headers):
        if headers is not None and type(headers) is not dict:
            raise RuntimeError("headers keyword must be a dict")
        if body is None:
            if method in (_PUT, _POST, _PATCH):
                raise RuntimeError("%s: body keyword expected" % method.lower())
        elif not isinstance(body, bytes):
            if isinstance(body, (bytearray, memoryview)):
                body = bytes(body)
            else:
                raise TypeError("httpclient: body must be bytes, not %s"
                                % type(body).__name__)
        hlist = ["Expect:"]
        if headers:
            for k, v in headers.items():
                if not isinstance(k, str) or not isinstance(v, str):
                    raise TypeError("httpclient: header names and values must be str")
                if "\r" in k or "\n" in k or "\r" in v or "\n" in v or ":" in k:
                    raise ValueError("httpclient: invalid header %r" % (k,))
                hlist.append("%s: %s" % (k, v) if v else "%s;" % k)
        _plugin_headers(method, self.url, hlist, headers)

        multi = get_multi()
        easy = multi.easy()
        try:
            limit = curl_recv_max()
            sink = _Sink(limit)
            # headers are only parsed when asked for (libcurl bounds their
            # size by itself otherwise)
            hsink = _HeaderSink(limit) if return_headers else None
            setopt = easy.setopt
            setopt(pycurl.URL, self.url)
            setopt(pycurl.NOSIGNAL, 1)
            setopt(pycurl.USERAGENT, USER_AGENT)
            setopt(pycurl.TIMEOUT, curl_timeout())
            setopt(pycurl.WRITEFUNCTION, sink.write)
            if hsink is not None:
                setopt(pycurl.HEADERFUNCTION, hsink.write)
            if method == _HEAD:
                setopt(pycurl.NOBODY, 1)
            elif method == _PUT:
                setopt(pycurl.UPLOAD, 1)
                setopt(pycurl.READFUNCTION, io.BytesIO(body).read)
                setopt(pycurl.INFILESIZE_LARGE, len(body))
            elif body is not None:   # POST, PATCH, DELETE with a body
                setopt(pycurl.POSTFIELDSIZE_LARGE, len(body))
                setopt(pycurl.POSTFIELDS, body)
                if method != _POST:
                    setopt(pycurl.CUSTOMREQUEST, method)
            elif method != _GET:     # OPTIONS, DELETE without a body
                setopt(pycurl.CUSTOMREQUEST, method)
            unix = self.unix
            if unix:
                if unix[0] == "@":
                    setopt(pycurl.UNIX_SOCKET_PATH, unix)
                    setopt(pycurl.OPENSOCKETFUNCTION, _abstract_opener(unix[1:]))
                    setopt(pycurl.SOCKOPTFUNCTION, _already_connected)
                else:
                    setopt(pycurl.UNIX_SOCKET_PATH, unix)
            if self.tlscert is not None:
                setopt(pycurl.SSLCERT, self.tlscert)
                setopt(pycurl.SSLKEY, self.tlskey)
            if not self.tlsverify:
                setopt(pycurl.SSL_VERIFYHOST, 0)
                setopt(pycurl.SSL_VERIFYPEER, 0)
            if self.curlopt:
                options.setopts_from_dict(easy, self.curlopt)
            if self.cabundle is not None:
                setopt(pycurl.CAINFO, self.cabundle)
            setopt(pycurl.HTTPHEADER, hlist)
            if curlopt is not None:
                options.setopts_from_dict(easy, curlopt)
        except BaseException:
            multi.release(easy)
            raise
        return httpclientop(multi, easy, self.url, sink, hsink, bool(return_headers))


class httpclientop:
    """The awaitable of one ``kore.httpclient`` request."""

    __slots__ = ("_multi", "_easy", "_url", "_sink", "_hsink", "_headers")

    def __init__(self, multi, easy, url, sink, hsink, return_headers):
        self._multi = multi
        self._easy = easy
        self._url = url
        self._sink = sink
        self._hsink = hsink
        self._headers = return_headers

    def __await__(self):
        return self._run()
        yield  # noqa: unreachable -- makes this a generator that never yields

    def _run(self):
        easy = self._easy
        if easy is None:
            raise RuntimeError("httpclient request already awaited")
        self._easy = None
        multi = self._multi
        try:
            errno, error = multi.perform(easy)
            if errno:
                raise RuntimeError("request to '%s' failed: %s" % (
                    self._url, _error_text(errno, error, self._sink, self._hsink)))
            status = easy.getinfo(pycurl.RESPONSE_CODE)
        finally:
            multi.release(easy)
        body = self._sink.value()
        if self._headers:
            return status, self._hsink.headers, body
        return status, body


# ---------------------------------------------------------------------------
# kore.curl
# ---------------------------------------------------------------------------

class curl:
    """``kore.curl(url)``: a raw libcurl easy handle.

    ``setopt(kore.CURLOPT_X, value)`` as ``curl_easy_setopt``,
    ``setbody(bytes)`` to upload, ``await handle.run()`` -> the body bytes.
    """

    __slots__ = ("url", "_easy", "_body", "_running", "__weakref__")

    def __init__(self, url):
        if not isinstance(url, str):
            raise TypeError("curl: url must be a str")
        self.url = url
        easy = pycurl.Curl()
        easy.setopt(pycurl.URL, url)
        easy.setopt(pycurl.NOSIGNAL, 1)
        easy.setopt(pycurl.USERAGENT, USER_AGENT)
        easy.setopt(pycurl.TIMEOUT, curl_timeout())
        self._easy = easy
        self._body = None
        self._running = False

    def __repr__(self):
        return "<kore.curl %r>" % (self.url,)

    def setopt(self, opt, value):
        if self._running:
            raise RuntimeError("curl handle is running")
        return options.setopt(self._easy, opt, value)

    def setbody(self, body):
        if self._body is not None:
            raise RuntimeError("curl handle already has body attached")
        if type(body) is not bytes:
            raise RuntimeError("curl.setbody expects bytes")
        self._body = body
        self._easy.setopt(pycurl.UPLOAD, 1)
        self._easy.setopt(pycurl.INFILESIZE_LARGE, len(body))
        return True

    def run(self):
        return curlop(self)

    def _perform(self):
        if self._running:
            raise RuntimeError("curl handle is already running")
        easy = self._easy
        sink = _Sink(curl_recv_max())
        easy.setopt(pycurl.WRITEFUNCTION, sink.write)
        body = self._body
        if body is not None:
            easy.setopt(pycurl.READFUNCTION, io.BytesIO(body).read)
            # as Kore: the body is sent once; setbody() may attach another
            self._body = None
        multi = get_multi()
        self._running = True
        try:
            errno, error = multi.perform(easy)
        finally:
            self._running = False
            if body is not None:
                easy.setopt(pycurl.UPLOAD, 0)
        if errno:
            raise RuntimeError("request failed: %s" % _error_text(errno, error, sink))
        return sink.value()


class curlop:
    """The awaitable of ``kore.curl.run()``."""

    __slots__ = ("_handle",)

    def __init__(self, handle):
        self._handle = handle

    def __await__(self):
        return self._handle._perform()
        yield  # noqa: unreachable -- makes this a generator that never yields

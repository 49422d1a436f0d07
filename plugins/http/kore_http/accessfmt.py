"""Formatting access-log lines: the common log format, JSON lines with
OpenTelemetry field names, and gunicorn-style ``--access-log-format``
strings (``%(h)s %(l)s %(u)s %(t)s "%(r)s" %(s)s %(b)s``).

Every formatter is a function ``fmt(req, status, duration, now, extra) ->
str`` (the line without its newline; ``extra``: the fields plugins add).  What costs per line is kept small: the timestamp is
formatted once per second (``Clock``), JSON strings are escaped by the C
escaper of the standard library (``json.encoder.encode_basestring_ascii``:
a quote, a backslash or a newline in a header value comes out as ``\\"``,
``\\\\``, ``\\n`` and can never end the string or the line), and the JSON
line is one ``%`` on a template made once.
"""

import base64
import binascii
import os
import time
from json import dumps
from json.encoder import encode_basestring_ascii as _esc

from kore.config import ConfigError


class Refused:
    """What a formatter reads of a request, for one refused before it
    became a request (400, 413, 414, 431, 501 from the HTTP/1.1 parser)."""

    __slots__ = ("_meth", "target", "path", "query", "bytes_sent", "stream", "_addr",
                 "_fields")
    host = ""
    route = None
    domain = None
    _rheaders = None

    class _Stream:
        __slots__ = ("http_version", "addr")
        tls = False
        proxied_address = None
        trusted = False

        def remote_address(self):
            return ""

        def log_peer(self):
            # the client's address is part of a line's shape: two clients
            # refused alike must not share one cached line
            return (False, self.addr, None, False)

        def __init__(self, version, addr):
            self.http_version = version
            self.addr = addr

    def __init__(self, addr, method, target, version, nbytes):
        self._addr = addr
        self._meth = method
        self.target = target
        self.path, _, self.query = target.partition("?")
        self.bytes_sent = nbytes
        self.stream = self._Stream(version, addr)
        self._fields = ()

    def get_proxied_remote_address(self):
        return self._addr

    def request_header(self, name):
        return None

    def _headers_list(self):
        return ()


def agent_referer(req):
    """(User-Agent, Referer) of ``req`` in one pass over its headers."""
    agent = referer = None
    for n, v in req._headers_list():
        if n == "user-agent":
            if agent is None:
                agent = v
        elif n == "referer":
            if referer is None:
                referer = v
    return agent, referer


class Clock:
    """Timestamps formatted once per second."""

    __slots__ = ("sec", "iso", "clf", "ms", "iso_ms_text")

    def __init__(self):
        self.sec = self.ms = -1
        self.iso = self.clf = self.iso_ms_text = ""

    def _tick(self, sec):
        self.sec = sec
        self.iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
        self.clf = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(sec))

    def iso_ms(self, now):
        """``2026-12-01T21:47:28.524Z`` (UTC, as the JSON error log);
        formatted again only when the millisecond changed."""
        ms = int(now * 1000)
        if ms != self.ms:
            self.ms = ms
            sec = ms // 1000
            if sec != self.sec:
                self._tick(sec)
            self.iso_ms_text = "%s.%03dZ" % (self.iso, ms % 1000)
        return self.iso_ms_text

    def common(self, now):
        """``01/Dec/2026:21:47:28 +0000`` (local time, as nginx and Apache)."""
        sec = int(now)
        if sec != self.sec:
            self._tick(sec)
        return self.clf


CLOCK = Clock()


def clf_quote(value):
    """A value inside a quoted field of the common format: a quote, a
    backslash or a control character is escaped (``\\"``, ``\\xNN``), so a
    header value can neither close the field nor start a new line."""
    if value is None:
        return "-"
    if value.isprintable() and '"' not in value and "\\" not in value:
        return value
    out = []
    for ch in value:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif not ch.isprintable():
            out.append("\\x%02x" % (ord(ch) & 0xff))
        else:
            out.append(ch)
    return "".join(out)


def _token(value):
    """An extra field value of the common format: no spaces, quotes or
    control characters (percent-encoded)."""
    text = "-" if value is None else str(value)
    return "".join(ch if 0x20 < ord(ch) < 0x7f and ch != '"' else "%%%02X" % (ord(ch) & 0xff)
                   for ch in text)


# -- the line cache ---------------------------------------------------------------

def shape(req, status):
    """What a line depends on besides the time and the duration: requests
    of one shape (same method, target, status, size, route, peer and
    request head) share their escaped text.  Over HTTP/1.1 the raw request
    head stands for every header; other transports name the fields."""
    stream = req.stream
    route = req.route
    f = req._fields
    if type(f) is not bytes:
        f = agent_referer(req)
    return (req._meth, req.target, status, req.bytes_sent,
            route.path if route is not None else None, req.host, stream.http_version,
            stream.log_peer(), f)


class ShapeCache(dict):
    """shape -> text, at most LIMIT entries (cleared when full)."""

    LIMIT = 4096

    def put(self, key, value):
        if len(self) >= self.LIMIT:
            self.clear()
        self[key] = value
        return value


# -- the common log format ------------------------------------------------------

class CommonFormat:
    """``addr - - [time] "GET /x HTTP/1.1" 200 153 "referer" "agent" 0.000123``
    then `` name=value`` for each field a plugin adds."""

    extra = True

    def __init__(self):
        self.cache = ShapeCache()

    def __call__(self, req, status, duration, now, extra):
        key = shape(req, status)
        parts = self.cache.get(key)
        if parts is None:
            agent, referer = agent_referer(req)
            parts = self.cache.put(key, (
                "%s - - [" % (req.get_proxied_remote_address() or "-"),
                '] "%s %s HTTP/%s" %d %d "%s" "%s" ' % (
                    req._meth, clf_quote(req.target), req.stream.http_version, status,
                    req.bytes_sent, clf_quote(referer), clf_quote(agent))))
        line = f"{parts[0]}{CLOCK.common(now)}{parts[1]}{duration:.6f}"
        if extra:
            line += "".join(" %s=%s" % (_token(k), _token(v)) for k, v in extra.items())
        return line


# -- JSON lines, OpenTelemetry semantic-convention names -------------------------

#: (field, type) in the order written; docs/observability.md lists them
JSON_FIELDS = (
    ("timestamp", "string"), ("http.request.method", "string"),
    ("url.scheme", "string"), ("url.path", "string"), ("url.query", "string"),
    ("http.route", "string"), ("http.response.status_code", "int"),
    ("http.response.size", "int"), ("client.address", "string"),
    ("server.address", "string"), ("network.protocol.name", "string"),
    ("network.protocol.version", "string"), ("user_agent.original", "string"),
    ("http.request.header.referer", "string"),
    ("http.server.request.duration", "float"),
    ("process.pid", "int"), ("kore.worker.id", "int"),
)
JSON_NAMES = frozenset(f for f, _ in JSON_FIELDS)


def _jstr(value):
    return "null" if value is None else _esc(value)


class JsonFormat:
    """One JSON object per line.  Constant fields (pid, worker id) are baked
    into the template once per worker; the escaped middle of a line (every
    field but the time and the duration) is cached per request shape, so a
    repeated shape costs one dict look-up instead of eight escapes and a
    14-field format.  Fields plugins add follow ours (never replacing one)."""

    extra = True

    def __init__(self, worker_id=None):
        self.tail = ',"process.pid":%d,"kore.worker.id":%s}' % (
            os.getpid(), "null" if worker_id is None else int(worker_id))
        self.mid = ('"http.request.method":%s,"url.scheme":"%s","url.path":%s,'
                    '"url.query":%s,"http.route":%s,"http.response.status_code":%d,'
                    '"http.response.size":%d,"client.address":%s,"server.address":%s,'
                    '"network.protocol.name":"http","network.protocol.version":%s,'
                    '"user_agent.original":%s,"http.request.header.referer":%s,'
                    '"http.server.request.duration":')
        self.cache = ShapeCache()

    def __call__(self, req, status, duration, now, extra):
        # shape() and Clock.iso_ms() inlined: this runs once per request
        stream = req.stream
        route = req.route
        f = req._fields
        if type(f) is not bytes:
            f = agent_referer(req)
        key = (req._meth, req.target, status, req.bytes_sent,
               route.path if route is not None else None, req.host, stream.http_version,
               stream.log_peer(), f)
        mid = self.cache.get(key)
        if mid is None:
            mid = self.cache.put(key, self._mid(req, status))
        clock = CLOCK
        ms = int(now * 1000)
        if ms != clock.ms:
            clock.iso_ms(now)
        if extra:
            more = "".join(",%s:%s" % (_esc(str(k)), dumps(v, default=str))
                           for k, v in extra.items() if str(k) not in JSON_NAMES)
            return f'{{"timestamp":"{clock.iso_ms_text}",{mid}{duration:.6f}{more}{self.tail}'
        # an f-string: about 1,300 instructions fewer than the same % format
        return f'{{"timestamp":"{clock.iso_ms_text}",{mid}{duration:.6f}{self.tail}'

    def _mid(self, req, status):
        agent, referer = agent_referer(req)
        route = req.route
        stream = req.stream
        return self.mid % (
            _esc(req._meth), "https" if stream.tls else "http", _esc(req.path),
            _esc(req.query) if req.query else "null",
            _jstr(route.path if route is not None else None), status, req.bytes_sent,
            _esc(req.get_proxied_remote_address() or "-"),
            _esc(req.host) if req.host else "null", _esc(stream.http_version),
            _jstr(agent), _jstr(referer))


# -- gunicorn's access_log_format --------------------------------------------------

def _version(req):
    return req.stream.http_version


#: gunicorn's atoms: fn(req, status, duration, now) (docs/observability.md)
ATOMS = {
    "h": lambda q, s, d, t: q.get_proxied_remote_address() or "-",
    "l": lambda q, s, d, t: "-",
    "u": lambda q, s, d, t: _user(q),
    "t": lambda q, s, d, t: "[%s]" % CLOCK.common(t),
    "r": lambda q, s, d, t: "%s %s HTTP/%s" % (q._meth, clf_quote(q.target), _version(q)),
    "m": lambda q, s, d, t: q._meth,
    "U": lambda q, s, d, t: clf_quote(q.path),
    "q": lambda q, s, d, t: clf_quote(q.query),
    "H": lambda q, s, d, t: "HTTP/" + _version(q),
    "s": lambda q, s, d, t: str(s),
    "B": lambda q, s, d, t: str(q.bytes_sent),
    "b": lambda q, s, d, t: str(q.bytes_sent) if q.bytes_sent else "-",
    "f": lambda q, s, d, t: clf_quote(q.request_header("referer")),
    "a": lambda q, s, d, t: clf_quote(q.request_header("user-agent")),
    "T": lambda q, s, d, t: str(int(d)),
    "M": lambda q, s, d, t: str(int(d * 1000)),
    "D": lambda q, s, d, t: str(int(d * 1000000)),
    "L": lambda q, s, d, t: "%.6f" % d,
    "p": lambda q, s, d, t: "<%d>" % os.getpid(),
}


def _user(req):
    """The user name of HTTP Basic authentication, as gunicorn's ``%(u)s``."""
    auth = req.request_header("authorization")
    if not auth or not auth[:6].lower() == "basic ":
        return "-"
    try:
        user = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return "-"
    return clf_quote(user.partition(":")[0]) or "-"


def _req_header(name):
    def get(req, status, duration, now):
        return clf_quote(req.request_header(name))
    return get


def _resp_header(name):
    def get(req, status, duration, now):
        for n, v in req._rheaders or ():
            if n.lower() == name:
                return clf_quote(v)
        return "-"
    return get


def _environ(name):
    value = os.environ.get(name)

    def get(req, status, duration, now):
        return clf_quote(value)
    return get


def _atom_error(spec, atom):
    return ConfigError(
        "http_access_log_format: unknown atom '%%(%s)s' in %r; gunicorn's atoms are "
        "h l u t r m U q H s B b f a T M D L p, {header}i, {header}o and {var}e "
        "(or use 'common' or 'json')" % (atom, spec))


def compile_format(spec):
    """``fmt(...)`` for a gunicorn ``access_log_format`` string; ConfigError
    naming the option for an unknown atom or a stray ``%``."""
    literal, getters = [], []
    i, n = 0, len(spec)
    buf = []
    while i < n:
        ch = spec[i]
        if ch != "%":
            buf.append(ch.replace("%", "%%"))
            i += 1
            continue
        if spec.startswith("%%", i):
            buf.append("%%")
            i += 2
            continue
        if not spec.startswith("%(", i):
            raise ConfigError("http_access_log_format: a '%%' at offset %d of %r is "
                              "neither '%%%%' nor an atom like '%%(h)s'" % (i, spec))
        end = spec.find(")s", i + 2)
        if end < 0:
            raise ConfigError("http_access_log_format: unterminated atom at offset %d "
                              "of %r (atoms look like '%%(h)s')" % (i, spec))
        atom = spec[i + 2:end]
        if atom in ATOMS:
            get = ATOMS[atom]
        elif len(atom) > 3 and atom[0] == "{" and atom[-2] == "}" and atom[-1] in "ioe":
            name = atom[1:-2]
            if not name:
                raise _atom_error(spec, atom)
            get = (_req_header(name.lower()) if atom[-1] == "i" else
                   _resp_header(name.lower()) if atom[-1] == "o" else _environ(name))
        else:
            raise _atom_error(spec, atom)
        buf.append("%s")
        literal.append("".join(buf))
        buf = []
        getters.append(get)
        i = end + 2
    template = "".join(literal) + "".join(buf)
    getters = tuple(getters)

    def fmt(req, status, duration, now, extra):
        return template % tuple([g(req, status, duration, now) for g in getters])
    fmt.template = template
    fmt.extra = False       # the line is exactly what the user wrote
    return fmt


def check_format(value):
    """The option's normalize: 'common', 'json' or a valid gunicorn string."""
    v = value.strip()
    if v.lower() in ("common", "json"):
        return v.lower()
    if "%(" not in v:
        raise ConfigError("http_access_log_format: %r is neither 'common', 'json' nor a "
                          "gunicorn format string such as '%%(h)s %%(l)s %%(u)s %%(t)s "
                          "\"%%(r)s\" %%(s)s %%(b)s \"%%(f)s\" \"%%(a)s\"'" % value)
    compile_format(value)
    return value


def formatter(spec, worker_id=None):
    """The formatter of option value ``spec`` (already checked)."""
    if spec == "json":
        return JsonFormat(worker_id)
    if spec == "common":
        return CommonFormat()
    return compile_format(spec)

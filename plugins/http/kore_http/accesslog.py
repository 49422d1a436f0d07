"""Access logs: ``--access-log FILE`` (``-`` for stdout) and per domain
``domain.accesslog = "path"``; the common log format plus the duration in
seconds, JSON lines with OpenTelemetry field names
(``--access-log-format json``) or a gunicorn format string
(``--access-log-format '%(h)s "%(r)s" %(s)s'``).  Formatting is in
``accessfmt``, the buffered files in ``logbuffer``.

Nothing is formatted when no access log is configured.
"""

from time import time

from kore import runtime

from . import declare as _declare
from .accessfmt import Refused, formatter
from .logbuffer import BUFFERS
from .settings import SETTINGS as S


class Config:
    """Where and how this worker logs (``configure()``)."""

    __slots__ = ("path", "format", "fmt", "sink", "sinks")

    def __init__(self):
        self.path = None
        self.format = "common"
        self.fmt = None
        self.sink = None        # the Sink of ``path``
        self.sinks = {}         # path -> Sink (domains' own files)


CONFIG = Config()


class LogOff:
    """Paths kept out of the access log (Skitai's ``log_off``): ``'*.css'``
    matches by suffix, ``'/static/'`` or ``'/static/*'`` by prefix, anything
    else exactly; ``/`` is always logged.  Decisions are cached per path
    (at most 1,000 entries)."""

    __slots__ = ("exact", "prefixes", "suffixes", "cache", "active", "only_exact")

    def __init__(self):
        self.exact = set()
        self.prefixes = ()
        self.suffixes = ()
        self.cache = {}
        self.active = False         # any path at all
        self.only_exact = True      # a set look-up decides (no cache needed)

    def add(self, *paths):
        for p in paths:
            if not isinstance(p, str) or not p:
                raise ValueError("log_off: a path must be a non-empty string, got %r" % (p,))
            if p.startswith("*"):
                self.suffixes += (p[1:],)
            elif p.endswith("/*"):
                self.prefixes += (p[:-1],)
            elif p.endswith("/"):
                self.prefixes += (p,)
            else:
                self.exact.add(p)
        self.cache.clear()
        self.active = bool(self.exact or self.prefixes or self.suffixes)
        self.only_exact = not (self.prefixes or self.suffixes)

    def __call__(self, path):
        hit = self.cache.get(path)
        if hit is None:
            hit = path != "/" and (path in self.exact or path.startswith(self.prefixes)
                                   or path.endswith(self.suffixes))
            if len(self.cache) >= 1000:
                self.cache.clear()
            self.cache[path] = hit
        return hit


OFF = LogOff()


def log_off(*paths):
    """``kore.log_off('/static/', '*.css')``: keep paths out of the access log."""
    OFF.add(*paths)


def configure():
    """Read the options (in each worker); True when some access log is
    configured."""
    CONFIG.path = runtime.option("http_access_log") or None
    CONFIG.format = runtime.option("http_access_log_format")
    w = runtime.worker()
    CONFIG.fmt = formatter(CONFIG.format, w.id if w is not None else None)
    BUFFERS.configure(runtime.option("http_access_log_buffer"),
                      runtime.option("http_access_log_flush"))
    CONFIG.sinks = {}
    CONFIG.sink = BUFFERS.sink(CONFIG.path) if CONFIG.path else None
    return bool(CONFIG.path) or any(d.accesslog for d in _declare.state.domains)


def extra_fields(req):
    """Fields the transport (``Stream.log_fields``) and plugins
    (``kore_http_access_log_fields``) add, merged; None when there are none."""
    own = req.stream.log_fields
    if not S.hook_log_fields:
        return own
    out = dict(own) if own else {}
    for fields in runtime.notify("kore_http_access_log_fields",
                                 where="kore_http_access_log_fields hook", req=req):
        if fields:
            out.update(fields)
    return out


def _sink(path):
    s = CONFIG.sinks.get(path)
    if s is None:
        s = CONFIG.sinks[path] = BUFFERS.sink(path)
    return s


def flush():
    """Write every pending line now."""
    BUFFERS.flush()


def stop():
    """Worker shutdown: write every pending line, close the files."""
    BUFFERS.stop()
    CONFIG.sinks = {}
    CONFIG.sink = None


def reopen():
    """SIGUSR1: write what is pending, reopen the files on the next line."""
    BUFFERS.reopen()


def write(req, status, duration):
    """Log a request that got a response (from ``pipeline.finish``)."""
    d = req.domain
    dpath = d._accesslog if d is not None else None      # the property, without a call
    if dpath:
        sink = _sink(dpath)
    else:
        sink = CONFIG.sink
        if sink is None:
            return
    off = OFF
    if off.active and (req.path in off.exact if off.only_exact else off(req.path)):
        return
    fmt = CONFIG.fmt
    if fmt.extra:
        # extra_fields() inlined for the usual case: no plugin adds fields
        extra = extra_fields(req) if S.hook_log_fields else req.stream.log_fields
    else:
        extra = None
    line = fmt(req, status, duration, time(), extra)
    sink.lines.append(line)         # Sink.write inlined (once per request)
    sink.size += len(line) + 1
    if sink.size >= sink.limit:
        sink.flush()


def write_refused(c, status, method, target, version, nbytes):
    """Log a request refused before routing (400, 413, 414, 431, 501, ...)."""
    sink = CONFIG.sink
    if sink is None:
        return
    req = Refused(c.proxied_address or c.remote_address() or "-", method, target,
                  version, nbytes)
    sink.write(CONFIG.fmt(req, status, 0.0, time(), None))

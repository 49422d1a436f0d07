"""Access logs: ``--access-log FILE`` (``-`` for stdout) and per domain
``domain.accesslog = "path"``; common log format plus the duration in
seconds, or JSON lines (``--access-log-format json``).

Nothing is formatted when no access log is configured.
"""

import json
import os
import sys
import time

from kore import runtime

from . import declare as _declare
from .settings import SETTINGS as S


class Config:
    """Where and how this worker logs (``configure()``)."""

    __slots__ = ("path", "format")

    def __init__(self):
        self.path = None
        self.format = "common"


CONFIG = Config()
_files = {}


class LogOff:
    """Paths kept out of the access log (Skitai's ``log_off``): ``'*.css'``
    matches by suffix, ``'/static/'`` or ``'/static/*'`` by prefix, anything
    else exactly; ``/`` is always logged.  Decisions are cached per path
    (at most 1,000 entries)."""

    __slots__ = ("exact", "prefixes", "suffixes", "cache")

    def __init__(self):
        self.exact = set()
        self.prefixes = ()
        self.suffixes = ()
        self.cache = {}

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
    """Read the options; True when some access log is configured."""
    CONFIG.path = runtime.option("http_access_log") or None
    CONFIG.format = runtime.option("http_access_log_format")
    return bool(CONFIG.path) or any(d.accesslog for d in _declare.state.domains)


def extra_fields(req):
    """Fields plugins add (``kore_http_access_log_fields``), merged."""
    out = {}
    for fields in runtime.notify("kore_http_access_log_fields",
                                 where="kore_http_access_log_fields hook", req=req):
        if fields:
            out.update(fields)
    return out


def _stream(path):
    f = _files.get(path)
    if f is None:
        if path == "-":
            f = sys.stdout
        else:
            d = os.path.dirname(path)
            if d:
                os.makedirs(d, exist_ok=True)
            f = open(path, "a", buffering=1, encoding="utf-8")
        _files[path] = f
    return f


def reopen():
    for path, f in list(_files.items()):
        if path != "-":
            try:
                f.close()
            except OSError:
                pass
            del _files[path]


def write(req, status, duration):
    """Log a request that got a response (from ``pipeline.finish``)."""
    d = req.domain
    path = (d.accesslog if d is not None else None) or CONFIG.path
    if not path or ((OFF.exact or OFF.prefixes or OFF.suffixes) and OFF(req.path)):
        return
    _emit(path, req.get_proxied_remote_address() or "-", req.host, req._meth, req.target,
          req.path, req.query, "HTTP/" + req.stream.http_version, status, req.bytes_sent,
          duration, req.request_header("referer"), req.request_header("user-agent"),
          extra_fields(req) if S.hook_log_fields else None)


def write_refused(c, status, method, target, version, nbytes):
    """Log a request refused before routing (400, 413, 414, 431, 501, ...)."""
    if not CONFIG.path:
        return
    path, _, query = target.partition("?")
    _emit(CONFIG.path, c.proxied_address or c.remote_address() or "-", "", method,
          target, path, query, "HTTP/" + version, status, nbytes, 0.0, None, None, None)


def _emit(path, addr, host, method, target, upath, query, protocol, status, nbytes,
          duration, referer, agent, extra):
    if CONFIG.format == "json":
        rec = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "remote": addr,
            "host": host,
            "method": method,
            "path": upath,
            "query": query,
            "protocol": protocol,
            "status": status,
            "bytes": nbytes,
            "duration": round(duration, 6),
            "referer": referer,
            "agent": agent,
            "worker": _worker_id(),
        }
        if extra:
            for k, v in extra.items():
                rec.setdefault(k, v)
        line = json.dumps(rec, separators=(",", ":"))
    else:
        line = '%s - - [%s] "%s %s %s" %d %d "%s" "%s" %.6f' % (
            addr, time.strftime("%d/%b/%Y:%H:%M:%S %z"), method, target,
            protocol, status, nbytes, (referer or "-").replace('"', "%22"),
            (agent or "-").replace('"', "%22"), duration)
        if extra:
            line += "".join(" %s=%s" % (k, _quote(v)) for k, v in extra.items())
    try:
        _stream(path).write(line + "\n")
    except (OSError, ValueError):
        pass


def _worker_id():
    w = runtime.worker()
    return w.id if w is not None else None


def _quote(value):
    """A common-format extra field value: no spaces, quotes or newlines."""
    text = "-" if value is None else str(value)
    return "".join(ch if 0x20 < ord(ch) < 0x7f and ch != '"' else "%%%02X" % (ord(ch) & 0xff)
                   for ch in text)

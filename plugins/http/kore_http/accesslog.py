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
    d = req.domain
    path = (d.accesslog if d is not None else None) or CONFIG.path
    if not path:
        return
    stream = req.stream
    addr = stream.remote_address() or "-"
    protocol = "HTTP/" + stream.http_version
    extra = extra_fields(req) if S.hook_log_fields else None
    if CONFIG.format == "json":
        rec = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "remote": addr,
            "host": req.host,
            "method": req._meth,
            "path": req.path,
            "query": req.query,
            "protocol": protocol,
            "status": status,
            "bytes": req.bytes_sent,
            "duration": round(duration, 6),
            "referer": req.request_header("referer"),
            "agent": req.request_header("user-agent"),
            "worker": _worker_id(),
        }
        if extra:
            for k, v in extra.items():
                rec.setdefault(k, v)
        line = json.dumps(rec, separators=(",", ":"))
    else:
        line = '%s - - [%s] "%s %s %s" %d %d "%s" "%s" %.6f' % (
            addr, time.strftime("%d/%b/%Y:%H:%M:%S %z"), req._meth, req.target,
            protocol, status, req.bytes_sent,
            (req.request_header("referer") or "-").replace('"', "%22"),
            (req.request_header("user-agent") or "-").replace('"', "%22"), duration)
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

"""Access logs: ``--access-log FILE`` (``-`` for stdout) and per domain
``domain.accesslog = "path"``; common log format plus the duration in
seconds, or JSON lines (``--access-log-format json``).

Nothing is formatted when no access log is configured.
"""

import json
import os
import sys
import time

from kore import _state

_files = {}
FORMAT = ["common"]
GLOBAL = [None]


def configure():
    GLOBAL[0] = _state.registry.get("http_access_log") or None
    FORMAT[0] = _state.registry.get("http_access_log_format")
    from . import app as _app
    return bool(GLOBAL[0]) or any(d.accesslog for d in _app.state.domains)


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
    path = (d.accesslog if d is not None else None) or GLOBAL[0]
    if not path:
        return
    c = req.conn
    addr = c.remote_address() or "-"
    if FORMAT[0] == "json":
        rec = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "remote": addr,
            "host": req.host,
            "method": req._meth,
            "path": req.path,
            "query": req.query,
            "protocol": "HTTP/1.1" if req.http11 else "HTTP/1.0",
            "status": status,
            "bytes": req.bytes_sent,
            "duration": round(duration, 6),
            "referer": req.request_header("referer"),
            "agent": req.request_header("user-agent"),
            "worker": _state.worker.id if _state.worker is not None else None,
        }
        line = json.dumps(rec, separators=(",", ":"))
    else:
        line = '%s - - [%s] "%s %s %s" %d %d "%s" "%s" %.6f' % (
            addr, time.strftime("%d/%b/%Y:%H:%M:%S %z"), req._meth, req.target,
            "HTTP/1.1" if req.http11 else "HTTP/1.0", status, req.bytes_sent,
            (req.request_header("referer") or "-").replace('"', "%22"),
            (req.request_header("user-agent") or "-").replace('"', "%22"), duration)
    try:
        _stream(path).write(line + "\n")
    except (OSError, ValueError):
        pass

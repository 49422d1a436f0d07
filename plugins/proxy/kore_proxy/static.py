"""``kore.set_max_age(path, seconds)`` for static files (filemaps), and
``kore.enable_forward(port, forward_port)``: HTTP to HTTPS redirects.

``set_max_age``: the filemaps of every domain are wrapped at application
load; a file under the longest matching prefix is answered with
``Cache-Control: max-age=N`` and ``Expires`` = now + N (not the file's
mtime + N as Skitai did, which dates old files in the past).
"""

import os
import time
from email.utils import formatdate
from urllib.parse import unquote

from kore.config import ConfigError
from kore_http.mounts import Mount


class _State:
    def __init__(self):
        self.max_age = []        # [(prefix, seconds)], longest prefix first
        self.forwards = []       # [(port, forward_port, status, ip)]


STATE = _State()


def reset():
    STATE.__init__()


def set_max_age(path, max_age):
    """kore.set_max_age('/static', 300)."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise ConfigError("kore.set_max_age: path must start with /, got %r" % (path,))
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        raise ConfigError("kore.set_max_age(%r): seconds must be an int >= 0, got %r"
                          % (path, max_age))
    prefix = path.rstrip("/")
    STATE.max_age = [(p, s) for p, s in STATE.max_age if p != prefix]
    STATE.max_age.append((prefix, max_age))
    STATE.max_age.sort(key=lambda x: -len(x[0]))
    return None


def max_age_for(path, rules):
    """Seconds of the longest prefix of ``rules`` matching ``path``, or None."""
    for prefix, seconds in rules:
        if not prefix or path == prefix or path.startswith(prefix + "/"):
            return seconds
    return None


class MaxAgeMount(Mount):
    """A filemap whose files get Cache-Control and Expires."""

    def __init__(self, inner, rules):
        self.inner = inner
        self.rules = rules
        self.prefix = inner.prefix
        self.where = inner.where
        self.auth = inner.auth
        self.reads_body = inner.reads_body

    def match(self, path):
        return self.inner.match(path)

    def serve(self, req):
        seconds = max_age_for(req.path, self.rules)
        if seconds is not None and req._meth in ("GET", "HEAD") and self._exists(req.path):
            req.response_header("Cache-Control", "max-age=%d" % seconds)
            req.response_header("Expires", formatdate(time.time() + seconds, usegmt=True))
        return self.inner.serve(req)

    def _exists(self, path):
        inner = self.inner
        try:
            rel = unquote(path[len(inner.prefix):], errors="strict").lstrip("/")
        except UnicodeDecodeError:
            return False
        full = os.path.join(inner.realroot(), rel)
        return os.path.isfile(full) or os.path.isdir(full)


def wrap_filemaps(domains):
    """At application load: wrap the filemaps set_max_age rules cover."""
    if not STATE.max_age:
        return
    from kore_http.filemaps import FileMap
    rules = list(STATE.max_age)
    for d in domains:
        for i, m in enumerate(d.mounts):
            if isinstance(m, FileMap):
                d.mounts[i] = MaxAgeMount(m, rules)


# ---------------------------------------------------------------------------
# enable_forward
# ---------------------------------------------------------------------------

def enable_forward(port=80, forward_port=443, status=301, ip="0.0.0.0"):
    """kore.enable_forward(80, 443): a listener on ``port`` answering every
    request with a redirect to https://<host>[:forward_port]<target>
    (``status`` 301 as Skitai, or 308 to keep the method and body)."""
    for name, v in (("port", port), ("forward_port", forward_port)):
        if isinstance(v, bool) or not isinstance(v, int) or not 0 < v < 65536:
            raise ConfigError("kore.enable_forward: %s must be a port number, got %r"
                              % (name, v))
    if status not in (301, 302, 303, 307, 308):
        raise ConfigError("kore.enable_forward: status must be 301, 302, 303, 307 or "
                          "308, got %r" % (status,))
    STATE.forwards.append((port, forward_port, status, str(ip)))
    return None


def redirect_location(host, target, forward_port):
    """The https URL for ``host`` (a Host value, its port dropped) and the
    request ``target``; None without a usable host."""
    if not host:
        return None
    h = host.strip()
    if h.startswith("["):
        end = h.find("]")
        if end < 0:
            return None
        name = h[:end + 1]
    else:
        name = h.rsplit(":", 1)[0] if ":" in h else h
    if not name or any(c in name for c in "/\\@?# "):
        return None
    if forward_port != 443:
        name += ":%d" % forward_port
    return "https://%s%s" % (name, target if target.startswith("/") else "/")


def install_forwards(declare):
    """At application load: one server and catch-all route per forward."""
    for port, fport, status, ip in STATE.forwards:
        name = "forward-%d" % port
        declare.server(name, ip=ip, port=port, tls=False)
        d = declare.domain("*", attach=name)

        def redirect(req, fport=fport, status=status):
            loc = redirect_location(req.request_header("host"), req.target, fport)
            if loc is None:
                req.response(400, b"")
                return
            req.response_header("Location", loc)
            req.response(status, b"")
        d.route("^/.*$", redirect)

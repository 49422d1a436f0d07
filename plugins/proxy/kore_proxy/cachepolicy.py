"""RFC 9111 shared-cache rules, as pure functions.

A response is stored only when the request was a GET without
``Authorization`` or ``Cache-Control: no-store``, and the response has an
explicit freshness lifetime (``s-maxage`` > ``max-age`` > ``Expires`` -
``Date``), a cacheable status, and none of ``no-store``, ``private``,
``no-cache``, ``Set-Cookie`` or ``Vary: *``.  No heuristic freshness.
"""

import calendar
import time
from email.utils import parsedate_tz

CACHEABLE_STATUS = frozenset((200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501))


def directives(value):
    """Cache-Control value -> {name: value or None} (lower-case names)."""
    out = {}
    if not value:
        return out
    for part in value.split(","):
        name, eq, arg = part.strip().partition("=")
        name = name.strip().lower()
        if name:
            out[name] = arg.strip().strip('"') if eq else None
    return out


def _seconds(v):
    try:
        n = int(v)
    except (TypeError, ValueError):
        return None
    return n if n >= 0 else None


def http_date(value):
    """An HTTP date -> epoch seconds, or None."""
    if not value:
        return None
    t = parsedate_tz(value)
    if t is None:
        return None
    try:
        return calendar.timegm(t[:9]) - (t[9] or 0)
    except (OverflowError, ValueError):
        return None


def header(headers, name):
    """First value of ``name`` in a (name, value) list (any case)."""
    for n, v in headers:
        if n.lower() == name:
            return v
    return None


def all_values(headers, name):
    return [v for n, v in headers if n.lower() == name]


def request_cacheable(method, req_headers):
    """May this request be answered from, or stored in, a shared cache?
    ``req_headers``: (lower-case name, value) pairs."""
    if method not in ("GET", "HEAD"):
        return False
    for n, v in req_headers:
        if n == "authorization":
            return False
        if n == "cache-control" and "no-store" in directives(v):
            return False
    return True


def request_wants_fresh(req_headers):
    """True when the client asks to skip stored answers (no-cache, max-age=0,
    Pragma: no-cache)."""
    for n, v in req_headers:
        if n == "cache-control":
            d = directives(v)
            if "no-cache" in d or d.get("max-age") == "0":
                return True
        elif n == "pragma" and "no-cache" in v.lower():
            return True
    return False


def lifetime(status, headers, now=None):
    """Freshness lifetime in seconds of a response a shared cache may store,
    or None when it must not be stored."""
    if status not in CACHEABLE_STATUS:
        return None
    if header(headers, "set-cookie") is not None:
        return None
    vary = ",".join(all_values(headers, "vary"))
    if "*" in vary:
        return None
    cc = directives(",".join(all_values(headers, "cache-control")))
    if "no-store" in cc or "private" in cc or "no-cache" in cc:
        return None
    if "s-maxage" in cc:
        return _seconds(cc["s-maxage"])
    if "max-age" in cc:
        return _seconds(cc["max-age"])
    expires = header(headers, "expires")
    if expires is not None:
        exp = http_date(expires)
        if exp is None:
            return None      # an invalid Expires means already expired
        date = http_date(header(headers, "date"))
        base = date if date is not None else (now if now is not None else time.time())
        return max(0, exp - base)
    return None


def vary_names(headers):
    """The lower-case request header names a response varies on."""
    out = []
    for v in all_values(headers, "vary"):
        for name in v.split(","):
            name = name.strip().lower()
            if name and name not in out:
                out.append(name)
    return tuple(out)


def vary_values(names, req_headers):
    """The request's values of the ``names`` a response varies on."""
    out = []
    for name in names:
        vals = [v.strip() for n, v in req_headers if n == name]
        out.append(",".join(vals))
    return tuple(out)

"""Query strings, urlencoded and multipart bodies (see multipart.py), cookies."""

import re
from urllib.parse import unquote, unquote_plus

from .multipart import FormError, HttpFile, NotMultipart, header_params, parse_form  # noqa: F401


def parse_qs(qs, plus=True):
    """``[(name, value)]`` of a query string (values URL-decoded)."""
    out = []
    if not qs:
        return out
    dec = unquote_plus if plus else unquote
    for part in qs.split("&"):
        if not part:
            continue
        name, sep, value = part.partition("=")
        try:
            out.append((dec(name, errors="strict"), dec(value, errors="strict")))
        except UnicodeDecodeError:
            out.append((dec(name, errors="replace"), dec(value, errors="replace")))
    return out


def parse_cookies(header):
    """``{name: value}`` of a Cookie header (first occurrence wins)."""
    out = {}
    if not header:
        return out
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if not sep or not name:
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        out.setdefault(name.strip(), value)
    return out


_TOKEN_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_COOKIE_VALUE_RE = re.compile(r'^[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*$')


def set_cookie_header(name, value, options=None):
    """A Set-Cookie value (RFC 6265)."""
    if not isinstance(name, str) or not _TOKEN_RE.match(name):
        raise ValueError("bad cookie name %r" % (name,))
    value = "" if value is None else str(value)
    if not _COOKIE_VALUE_RE.match(value):
        raise ValueError("bad cookie value for %r: use only cookie-octets "
                         "(quote or encode it)" % name)
    parts = ["%s=%s" % (name, value)]
    for key, v in (options or {}).items():
        k = key.lower().replace("_", "-")
        if v is None or v is False:
            continue
        if k == "expires":
            parts.append("Expires=" + _http_date(v))
        elif k == "max-age":
            parts.append("Max-Age=%d" % int(v))
        elif k in ("path", "domain", "samesite", "comment", "version", "priority"):
            sv = str(v)
            if any(c in sv for c in ";\r\n"):
                raise ValueError("bad cookie attribute %s=%r" % (key, v))
            parts.append("%s=%s" % ({"path": "Path", "domain": "Domain",
                                     "samesite": "SameSite", "comment": "Comment",
                                     "version": "Version", "priority": "Priority"}[k], sv))
        elif k == "secure":
            parts.append("Secure")
        elif k == "httponly":
            parts.append("HttpOnly")
        elif k == "partitioned":
            parts.append("Partitioned")
        else:
            raise ValueError("unknown cookie option %r" % key)
    return "; ".join(parts)


def _http_date(v):
    from datetime import datetime, timezone
    from email.utils import format_datetime, formatdate
    if isinstance(v, datetime):
        if v.tzinfo is None:
            v = v.replace(tzinfo=timezone.utc)
        return format_datetime(v.astimezone(timezone.utc), usegmt=True)
    if isinstance(v, (int, float)):
        return formatdate(v, usegmt=True)
    return str(v)


def parse_multipart(body, content_type, **options):
    """``(fields, files)``: fields ``[(name, str)]``, files ``[HttpFile]``.

    ``body`` is bytes, an iterable of bytes or a binary file object; the
    options are those of multipart.parse_form (disk_path, file_memory_max
    and the limits).  Raises ValueError subclasses: NotMultipart, FormError
    (with an HTTP status).
    """
    return parse_form(body, content_type, **options)

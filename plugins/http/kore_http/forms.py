"""Query strings, urlencoded and multipart bodies, cookies."""

import re
from urllib.parse import unquote, unquote_plus

_SPLIT_RE = re.compile(r"[&;]")


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


class HttpFile:
    """kore.http_file: an uploaded file (multipart/form-data)."""

    __slots__ = ("name", "filename", "content_type", "data", "_offset")

    def __init__(self, name, filename, content_type, data):
        self.name = name
        self.filename = filename
        self.content_type = content_type
        self.data = data
        self._offset = 0

    def read(self, length):
        """(len, bytes) of at most ``length`` (<= 1024) bytes; (0, b'') at the end."""
        if not isinstance(length, int) or length < 0:
            raise TypeError("length must be a non-negative int")
        if length > 1024:
            raise RuntimeError("length cannot exceed 1024")
        chunk = self.data[self._offset:self._offset + length]
        self._offset += len(chunk)
        return len(chunk), chunk

    def __repr__(self):
        return "<kore.http_file %r filename=%r %d bytes>" % (self.name, self.filename,
                                                              len(self.data))


_PARAM_RE = re.compile(r';\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)')


def header_params(value):
    """('multipart/form-data', {'boundary': ...}) from a header value."""
    main, _, rest = value.partition(";")
    params = {}
    for m in _PARAM_RE.finditer(";" + rest):
        v = m.group(2).strip()
        if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
            v = re.sub(r"\\(.)", r"\1", v[1:-1])
        params[m.group(1).lower()] = v
    return main.strip().lower(), params


def parse_multipart(body, content_type):
    """``(fields, files)``: fields ``[(name, str)]``, files ``[HttpFile]``."""
    ctype, params = header_params(content_type or "")
    if not ctype.startswith("multipart/"):
        raise ValueError("not a multipart body")
    boundary = params.get("boundary")
    if not boundary or len(boundary) > 200:
        raise ValueError("multipart body without a valid boundary")
    delim = b"--" + boundary.encode("latin-1")
    fields, files = [], []
    parts = body.split(delim)
    if len(parts) < 3:
        raise ValueError("malformed multipart body")
    for part in parts[1:-1]:
        if part.startswith(b"\r\n"):
            part = part[2:]
        elif part.startswith(b"\n"):
            part = part[1:]
        if part.endswith(b"\r\n"):
            part = part[:-2]
        elif part.endswith(b"\n"):
            part = part[:-1]
        sep = part.find(b"\r\n\r\n")
        seplen = 4
        if sep < 0:
            sep = part.find(b"\n\n")
            seplen = 2
        if sep < 0:
            raise ValueError("malformed multipart part")
        hdrs = {}
        for line in re.split(rb"\r?\n", part[:sep]):
            n, _, v = line.decode("latin-1").partition(":")
            hdrs[n.strip().lower()] = v.strip()
        data = part[sep + seplen:]
        disp, dparams = header_params(hdrs.get("content-disposition", ""))
        name = dparams.get("name")
        if disp != "form-data" or name is None:
            continue
        if "filename" in dparams:
            files.append(HttpFile(name, dparams["filename"],
                                  hdrs.get("content-type", "application/octet-stream"), data))
        else:
            fields.append((name, data.decode("utf-8", "replace")))
    if not parts[-1].startswith(b"--"):
        raise ValueError("multipart body without a final boundary")
    return fields, files

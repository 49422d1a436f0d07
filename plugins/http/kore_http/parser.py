"""HTTP/1.1 request heads (RFC 9112), parsed strictly from bytes.

A request head is validated by one compiled regular expression over the
received bytes (request line, then ``field-name ":" field-value CRLF`` lines)
and its fields are then split out of the already validated text.  Both steps
run in C inside ``re`` and ``bytes``; a 4-field request costs about as much
as feeding the same bytes to httptools and collecting its callbacks (the
figures are in docs/http.md, "Parser").

What is rejected (400 unless noted): a request line that is not
``token SP target SP HTTP/d.d``; versions other than 1.0/1.1 (505); field
names that are not tokens, whitespace before the colon, obs-fold (a line
starting with SP/HTAB), control characters (NUL, bare CR, DEL ...) anywhere;
bare LF line endings are accepted (RFC 9112 section 2.2 allows it) as long
as they contain no bare CR.  Framing headers are checked by ``framing()``.
"""

import re

TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"

# request-line: method SP request-target SP HTTP-version CRLF
_REQLINE = rb"([" + TCHAR + rb"]+) ([\x21-\x7e]+) HTTP/([0-9])\.([0-9])\r\n"
# field-line CRLF, field-value of VCHAR / obs-text / SP / HTAB (OWS trimmed later)
_FIELDS = rb"((?:[" + TCHAR + rb"]+:[\t\x20-\x7e\x80-\xff]*\r\n)*)"
HEAD_RE = re.compile(_REQLINE + _FIELDS)
_REQLINE_RE = re.compile(_REQLINE)
_LINE_END_RE = re.compile(rb"\r?\n")
# the end of a head written with bare LF line endings (slow path only)
_LF_END_RE = re.compile(rb"\n\r?\n")

# the methods the server implements: any other token is answered 501
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH",
                     "CONNECT", "TRACE"))


class HttpError(Exception):
    """A request the server answers with ``status`` and then closes."""

    def __init__(self, status, reason=""):
        Exception.__init__(self, status, reason)
        self.status = status
        self.reason = reason


# the framing and routing fields the server itself needs, found in one pass
# over a validated head: each name follows the LF that ends the line before
# it.  A pattern that starts with a literal lets ``re`` jump from one LF to
# the next; ``^`` with re.M made it try every byte (a 200-byte Authorization
# header cost 3 us more per request, about 3 times what it costs now).
SPECIAL_RE = re.compile(rb"\n(host|content-length|transfer-encoding|connection|expect):"
                        rb"[ \t]*([^\r]*)\r", re.I)


def special_fields(fields):
    """``[(name, value)]`` (bytes, name as sent) of the framing and routing
    fields of a validated field block (CRLF-terminated lines)."""
    return SPECIAL_RE.findall(b"\n" + fields)

_METHOD_STR = {m.encode(): m for m in METHODS}


def parse_request(buf, pos):
    """Parse the request head starting at ``buf[pos]``.

    Returns None while the head is incomplete, else ``(method, target,
    http11, fields, next, special)``: method and target as str, http11 a
    bool, fields the validated field block (bytes, CRLF-terminated lines),
    next the index of the first byte after the head and special the
    framing and routing fields (``special_fields``).  Raises HttpError.
    """
    end = buf.find(b"\r\n\r\n", pos)
    if end >= 0:
        m = HEAD_RE.fullmatch(buf, pos, end + 2)
        if m is not None:
            method, target, major, minor, fields = m.groups()
            if major == b"1" and (minor == b"1" or minor == b"0"):
                meth = _METHOD_STR.get(method)
                if meth is None:
                    raise HttpError(501, "method not implemented")
                # from the request line's LF, in the buffer (no copy)
                return (meth, target.decode("ascii"), minor == b"1", fields, end + 4,
                        SPECIAL_RE.findall(buf, m.start(5) - 1, end + 2))
            raise HttpError(505, "unsupported HTTP version")
    return _parse_slow(buf, pos)


def _parse_slow(buf, pos):
    # a head with bare LF line endings, or an invalid one
    m = _LF_END_RE.search(buf, pos)
    if m is None:
        return None
    nxt = m.end()
    head = bytes(buf[pos:m.start() + 1])
    norm = _LINE_END_RE.sub(b"\r\n", head)
    m = HEAD_RE.fullmatch(norm)
    if m is None:
        raise diagnose(head)
    method, target, major, minor, fields = m.groups()
    if major != b"1" or minor not in (b"0", b"1"):
        raise HttpError(505, "unsupported HTTP version")
    meth = _METHOD_STR.get(method)
    if meth is None:
        raise HttpError(501, "method not implemented")
    return (meth, target.decode("ascii"), minor == b"1", fields, nxt,
            SPECIAL_RE.findall(norm, m.start(5) - 1))


def split_fields(fields):
    """``[(lower-case name, value)]`` of a validated field block (str)."""
    out = []
    if not fields:
        return out
    for line in fields.decode("latin-1").split("\r\n")[:-1]:
        name, _, value = line.partition(":")
        out.append((name.lower(), value.strip(" \t")))
    return out


_FIELD_RES = {}


def raw_field(fields, name):
    """The first value of field ``name`` (lower-case str) in a validated
    field block (bytes), OWS stripped, or None: one search of the bytes,
    cheaper than ``split_fields`` when one field is wanted (a gateway's
    Authorization header)."""
    r = _FIELD_RES.get(name)
    if r is None:
        try:
            raw = name.encode("ascii")
        except UnicodeEncodeError:
            return None             # field names are tokens: ASCII only
        if len(_FIELD_RES) >= 512:
            _FIELD_RES.clear()
        r = _FIELD_RES[name] = re.compile(rb"\n" + re.escape(raw) + rb":[ \t]*([^\r]*)\r",
                                          re.I)
    m = r.search(b"\n" + fields)
    if m is None:
        return None
    return m.group(1).rstrip(b" \t").decode("latin-1")


def diagnose(head):
    """The HttpError for a head HEAD_RE refused (error path only)."""
    nl = head.find(b"\n")
    reqline = head[:nl + 1] if nl >= 0 else head
    if not reqline.endswith(b"\r\n"):
        reqline = reqline.rstrip(b"\n") + b"\r\n"
    m = _REQLINE_RE.fullmatch(reqline)
    if m is None:
        parts = reqline[:-2].split(b" ")
        if len(parts) == 3 and re.fullmatch(rb"HTTP/[0-9]\.[0-9]", parts[2]) is None \
                and parts[2].startswith(b"HTTP/"):
            return HttpError(505, "unsupported HTTP version")
        return HttpError(400, "malformed request line")
    if m.group(3) != b"1" or m.group(4) not in (b"0", b"1"):
        return HttpError(505, "unsupported HTTP version")
    if b"\x00" in head:
        return HttpError(400, "NUL in request head")
    for line in head[len(reqline):].split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            return HttpError(400, "obsolete line folding")
    return HttpError(400, "malformed header field")


def framing(fields_list, minor):
    """Body framing of a request (RFC 9112 section 6).

    ``fields_list`` is the list of (name, value); returns ``(length,
    chunked)`` where length is the Content-Length (0 without a body); raises
    HttpError for smuggling shapes: Transfer-Encoding with Content-Length,
    differing Content-Lengths, a Transfer-Encoding other than a single final
    ``chunked`` (501 for unknown codings), Transfer-Encoding in HTTP/1.0.
    """
    cl = None
    te = None
    for name, value in fields_list:
        if name == "content-length":
            for v in value.split(","):
                v = v.strip(" \t")
                if not v.isdigit() or not v.isascii() or len(v) > 18:
                    raise HttpError(400, "bad Content-Length")
                n = int(v)
                if cl is not None and cl != n:
                    raise HttpError(400, "conflicting Content-Length")
                cl = n
        elif name == "transfer-encoding":
            te = value if te is None else te + "," + value
    if te is not None:
        if cl is not None:
            raise HttpError(400, "Content-Length with Transfer-Encoding")
        if not minor:
            raise HttpError(400, "Transfer-Encoding in HTTP/1.0")
        codings = [c.strip(" \t").lower() for c in te.split(",")]
        if codings[-1] != "chunked":
            # RFC 9112 6.3: the length cannot be determined: 400 and close
            raise HttpError(400, "chunked is not the final Transfer-Encoding")
        if len(codings) != 1:
            raise HttpError(501, "unsupported Transfer-Encoding")
        return 0, True
    return (cl or 0), False


# used by conn._read_body until it feeds h1.chunked.ChunkedDecoder instead

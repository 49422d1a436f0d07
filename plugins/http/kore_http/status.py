"""Status lines and the cached Server/Date header lines."""

import time
from email.utils import formatdate
from http import HTTPStatus

REASONS = {s.value: s.phrase for s in HTTPStatus}
REASONS[413] = "Content Too Large"
REASONS[422] = "Unprocessable Content"

# b"HTTP/1.1 200 OK\r\n" for every status 100..599 (reason "" for unknown
# codes, as Kore)
STATUS_LINES = {code: ("HTTP/1.1 %d %s\r\n" % (code, REASONS.get(code, ""))).encode("latin-1")
                for code in range(100, 600)}


_PARSED = {}     # "200 OK" / b"200 OK" -> (line, code), bounded below


def status_line(status):
    """The status line for an int, "200 OK" or b"200 OK"."""
    hit = _PARSED.get(status) if type(status) in (bytes, str) else None
    if hit is not None:
        return hit
    r = _status_line(status)
    if type(status) in (bytes, str) and len(_PARSED) < 256:
        _PARSED[status] = r
    return r


def _status_line(status):
    if type(status) is int:
        line = STATUS_LINES.get(status)
        if line is None:
            raise ValueError("bad HTTP status %r" % (status,))
        return line, status
    if isinstance(status, str):
        status = status.encode("latin-1")
    if isinstance(status, (bytes, bytearray)):
        s = bytes(status).strip()
        code = s[:3]
        if len(code) != 3 or not code.isdigit() or (len(s) > 3 and s[3:4] != b" ") \
                or b"\r" in s or b"\n" in s:
            raise ValueError("bad HTTP status %r" % (status,))
        n = int(code)
        if not 100 <= n <= 599:
            raise ValueError("bad HTTP status %r" % (status,))
        if len(s) == 3:
            return STATUS_LINES[n], n
        return b"HTTP/1.1 " + s + b"\r\n", n
    raise TypeError("status must be an int, str or bytes, not %s" % type(status).__name__)


class HeaderCache:
    """``Server: ...\\r\\nDate: ...\\r\\n`` rebuilt at most once a second."""

    __slots__ = ("second", "value", "server", "nodate")

    def __init__(self, server="kore"):
        self.server = server
        self.second = 0
        self.value = b""
        self.nodate = b""    # the Server line alone: for a response with its own Date

    def set_server(self, server):
        self.server = server
        self.second = 0

    def refresh(self):
        """Rebuild the lines if the second changed.  Workers call this from
        their half-second sweep timer, so responses read ``value`` directly
        (Date is then at most about a second old, as Kore's cached date)."""
        sec = int(time.time())
        if sec != self.second:
            self.second = sec
            srv = ("Server: %s\r\n" % self.server) if self.server else ""
            self.value = ("%sDate: %s\r\n" % (srv, formatdate(sec, usegmt=True))).encode("latin-1")
            self.nodate = srv.encode("latin-1")


HEADERS = HeaderCache()


def error_page(status):
    """The small HTML body of ``http_pretty_error`` (Kore's)."""
    reason = REASONS.get(status, "")
    return ("<html><head><title>%d %s</title></head><body><h1>%d %s</h1></body>"
            "</html>\n" % (status, reason, status, reason)).encode("latin-1")

"""HTTP/1.1 error responses sent before or instead of a request's own."""

from ..settings import SETTINGS as S
from ..status import HEADERS, REASONS, STATUS_LINES


def error_response(status, close=True, headers=b""):
    body = b""
    if S.pretty_error:
        reason = REASONS.get(status, "")
        body = ("<html><head><title>%d %s</title></head><body><h1>%d %s</h1></body>"
                "</html>\n" % (status, reason, status, reason)).encode("latin-1")
        headers += b"Content-Type: text/html\r\n"
    return b"".join((STATUS_LINES[status], HEADERS.value, headers,
                     b"Content-Length: %d\r\n" % len(body),
                     b"Connection: close\r\n\r\n" if close else b"\r\n", body))


def send_error(sock, status, close=True):
    """Write the error response; the connection closes after it."""
    try:
        sock.sendall(error_response(status, close))
    except OSError:
        pass

"""HTTP/1.1 error responses sent before or instead of a request's own."""

from .. import accesslog
from ..settings import SETTINGS as S
from ..status import HEADERS, STATUS_LINES, error_page


def error_response(status, close=True, headers=b""):
    body = b""
    if S.pretty_error:
        body = error_page(status)
        headers += b"Content-Type: text/html\r\n"
    return b"".join((STATUS_LINES[status], HEADERS.value, headers,
                     b"Content-Length: %d\r\n" % len(body),
                     b"Connection: close\r\n\r\n" if close else b"\r\n", body))


def send_error(c, status, close=True, method="-", target="-", version="1.1"):
    """Answer a request refused before it became a request object (400,
    408, 413, 414, 431, 501, 503, 505); the connection closes after it.
    The refusal is written to the access log when one is configured."""
    data = error_response(status, close)
    if getattr(c, "batch", None) is not None:
        data = c.take_batch() + data       # held pipelined responses first
    try:
        c.sock.sendall(data)
    except OSError:
        pass
    if S.accesslog:
        accesslog.write_refused(c, status, method, target, version, len(data))

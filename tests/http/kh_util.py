"""Raw HTTP/1.1 client helpers for the tests: exact bytes in, parsed responses out."""

import os
import socket

from kore_testing import KoreServer, wait_for  # noqa: F401 (tests import it from here)

APPS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps")


def start_module_server(tmp_path_factory, app, **kw):
    """A KoreServer for a whole test module (apps/ names or source text)."""
    tmp = tmp_path_factory.mktemp("srv")
    if not os.path.isabs(app) and "\n" not in app:
        app = os.path.join(APPS, app)
    return KoreServer(tmp, app, (), **kw)


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers          # [(lower name, value)]
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        name = name.lower()
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def all(self, name):
        return [v for n, v in self.headers if n == name.lower()]

    def __repr__(self):
        return "<Response %d %r %r>" % (self.status, self.headers, self.body[:80])


class Conn:
    """A client connection reading responses one at a time."""

    def __init__(self, port, host="127.0.0.1", timeout=5.0, family=socket.AF_INET, path=None):
        if path is not None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(path)
        else:
            self.sock = socket.socket(family, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect((host, port))
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_response(self, head_only=False):
        """One response; None if the connection closed before any byte."""
        while b"\r\n\r\n" not in self.buf:
            if not self._fill():
                if not self.buf:
                    return None
                raise AssertionError("incomplete response head: %r" % self.buf)
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        proto, status, *reason = lines[0].split(" ", 2)
        assert proto in ("HTTP/1.1", "HTTP/1.0"), lines[0]
        status = int(status)
        headers = []
        for line in lines[1:]:
            n, _, v = line.partition(":")
            headers.append((n.strip().lower(), v.strip()))
        r = Response(status, reason[0] if reason else "", headers, b"", head)
        if head_only or status < 200 or status in (204, 304):
            return r
        te = r.header("transfer-encoding")
        cl = r.header("content-length")
        if te and "chunked" in te.lower():
            body = b""
            while True:
                while b"\r\n" not in self.buf:
                    if not self._fill():
                        raise AssertionError("incomplete chunked body")
                line, _, self.buf = self.buf.partition(b"\r\n")
                size = int(line.split(b";")[0], 16)
                while len(self.buf) < size + 2:
                    if not self._fill():
                        raise AssertionError("incomplete chunk")
                body += self.buf[:size]
                assert self.buf[size:size + 2] == b"\r\n"
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
            r.body = body
        elif cl is not None:
            n = int(cl)
            while len(self.buf) < n:
                if not self._fill():
                    raise AssertionError("incomplete body")
            r.body, self.buf = self.buf[:n], self.buf[n:]
        else:
            while self._fill():
                pass
            r.body, self.buf = self.buf, b""
        return r

    def closed(self, wait=2.0):
        """True when the server closed the connection (within ``wait`` s)."""
        if self.buf:
            return False
        self.sock.settimeout(wait)
        try:
            return not self._fill()
        except socket.timeout:
            return False

    def close(self):
        self.sock.close()


def request(port, data, timeout=5.0, check_closed=True, **kw):
    """Send raw bytes, return (first response or None, closed-after?)."""
    c = Conn(port, timeout=timeout, **kw)
    try:
        c.send(data)
        r = c.read_response()
        return r, (c.closed(0.3) if check_closed else None)
    finally:
        c.close()



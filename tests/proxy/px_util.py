"""Helpers for the proxy tests: kore upstreams and a proxy started with an
app text, and a small in-process upstream that counts connections."""

import http.client
import os
import socket
import socketserver
import threading
import http.server

from kore_testing import KoreServer, wait_for, wait_port

HERE = os.path.dirname(os.path.abspath(__file__))
UPSTREAM_APP = os.path.join(HERE, "apps", "upstream.py")


def start_upstream(tmp_path_factory, node, env=None, workers=1):
    tmp = tmp_path_factory.mktemp("up-" + node)
    e = {"NODE": node, "KORE_HTTP_BODY_MAX": str(300 * 1024 * 1024),
         "KORE_HTTP_BODY_TIMEOUT": "120", "KORE_WEBSOCKET_MAXFRAME": str(1 << 20)}
    e.update(env or {})
    return KoreServer(tmp, UPSTREAM_APP, workers=workers, env=e)


def start_proxy(tmp_path_factory, app, env=None, args=(), name="proxy"):
    tmp = tmp_path_factory.mktemp(name)
    return KoreServer(tmp, app, workers=1, env=env, args=args)


def get(port, path, headers=None, method="GET", body=None, timeout=30):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, r.getheaders(), r.read()
    finally:
        c.close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def setup(self):
        http.server.BaseHTTPRequestHandler.setup(self)
        srv = self.server.owner
        with srv.lock:
            srv.connections += 1
        self.connection.settimeout(srv.idle)

    def finish(self):
        try:
            http.server.BaseHTTPRequestHandler.finish(self)
        finally:
            srv = self.server.owner
            with srv.lock:
                srv.closed += 1

    def log_message(self, *a):
        pass

    def _any(self):
        srv = self.server.owner
        n = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(n) if n else b""
        with srv.lock:
            srv.requests.append((self.command, self.path, dict(self.headers), body))
        if srv.mode == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        out = ("%s %s %s" % (srv.name, self.command, self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_DELETE = _any


class _TCP(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    ssl_context = None

    def get_request(self):
        sock, addr = socketserver.ThreadingTCPServer.get_request(self)
        if self.ssl_context is not None:
            sock = self.ssl_context.wrap_socket(sock, server_side=True)
        return sock, addr


class CountingUpstream:
    """An HTTP/1.1 server in a thread: counts accepted connections and
    keeps every request; ``mode="drop"`` reads a request and closes without
    answering; ``idle`` is how long an idle keep-alive connection stays."""

    def __init__(self, name="c", mode="ok", idle=30.0, tls=None):
        self.name = name
        self.mode = mode
        self.idle = idle
        self.lock = threading.Lock()
        self.connections = 0
        self.closed = 0
        self.requests = []
        self.srv = _TCP(("127.0.0.1", 0), _Handler)     # the kernel picks the port
        self.port = self.srv.server_address[1]
        self.srv.owner = self
        if tls is not None:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(*tls)
            self.srv.ssl_context = ctx
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()
        assert wait_port("127.0.0.1", self.port)
        assert tls is not None or wait_for(lambda: self.connections >= 1)
        assert tls is not None or wait_for(lambda: self.closed >= 1)
        wait_for(lambda: self.connections >= 1 and self.closed >= 1, timeout=2)
        self.connections = self.closed = 0      # the readiness probe

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()

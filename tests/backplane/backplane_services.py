"""redis-server and nginx for the backplane tests and the benchmark:
started on free loopback ports with their files in a temporary directory,
stopped by pid."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from kore_testing import free_port, wait_for, wait_port  # noqa: E402


class RedisServer:
    def __init__(self, tmp, appendonly=False, password=None, tls=None):
        self.dir = str(tmp)
        self.port = free_port()
        self.appendonly = appendonly
        self.password = password
        self.tls = tls          # (cert, key, ca) paths: TLS only, on self.port
        self.proc = None
        self.start()

    @property
    def url(self):
        auth = ":%s@" % self.password if self.password else ""
        if self.tls:
            return "rediss://%s127.0.0.1:%d/0?ssl_ca_certs=%s" % (auth, self.port,
                                                                 self.tls[2])
        return "redis://%s127.0.0.1:%d/0" % (auth, self.port)

    def start(self):
        port = ["--port", str(self.port)]
        if self.tls:
            port = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file",
                    self.tls[0], "--tls-key-file", self.tls[1], "--tls-ca-cert-file",
                    self.tls[2], "--tls-auth-clients", "no"]
        cmd = ["redis-server"] + port + ["--bind", "127.0.0.1",
               "--dir", self.dir, "--save", "", "--daemonize", "no",
               "--appendonly", "yes" if self.appendonly else "no"]
        if self.appendonly:
            cmd += ["--appendfsync", "always"]
        if self.password:
            cmd += ["--requirepass", self.password]
        logpath = os.path.join(self.dir, "redis-%d.log" % self.port)
        self.log = open(logpath, "ab")
        start = os.path.getsize(logpath)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT)

        def text():
            with open(logpath, errors="replace") as f:
                f.seek(start)
                return f.read()
        # ready when this redis-server says so (a port that merely accepts
        # could be another process's)
        if not wait_for(lambda: "Ready to accept connections" in text()
                        or self.proc.poll() is not None, 20):
            raise AssertionError("redis-server did not start:\n" + text())
        if self.proc.poll() is not None:
            self.log.close()
            if "Address already in use" in text() and not self._started_once:
                self.port = free_port()         # taken since it was picked
                return self.start()
            raise AssertionError("redis-server exited:\n" + text())
        self._started_once = True
        if not wait_port("127.0.0.1", self.port, 10, self.proc):
            raise AssertionError("redis-server did not start")

    _started_once = False

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def restart(self):
        self.stop()
        self.start()

    def cli(self, *args):
        cmd = ["redis-cli", "-p", str(self.port)]
        if self.tls:
            cmd += ["--tls", "--cacert", self.tls[2]]
        if self.password:
            cmd += ["--no-auth-warning", "-a", self.password]
        return subprocess.run(cmd + list(args), capture_output=True, text=True,
                              timeout=10).stdout


class HalfOpenRelay:
    """A TCP relay in front of redis-server that never passes the server's
    side of a close on: when redis-server drops a connection (``CLIENT
    KILL``), the client's socket stays open and what the client sends goes
    nowhere, as with a NAT or firewall that forgot the flow.  Only a health
    check (a PING that gets no answer) can find such a connection; a closed
    socket would be seen at once."""

    def __init__(self, target_port):
        self.target = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.socks = set()
        self.accepted = 0
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return          # closed by stop()
            try:
                server = socket.create_connection(("127.0.0.1", self.target), timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.socks |= {client, server}
                self.accepted += 1
            for src, dst, from_client in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pipe, args=(src, dst, from_client),
                                 daemon=True).start()

    def _pipe(self, src, dst, from_client):
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                break
            try:
                dst.sendall(data)
            except OSError:
                pass            # the server's side is gone: swallowed
        if from_client:         # the client closed: both sides go
            self._close(src)
            self._close(dst)
        # the server closed: the client's side stays open (half-open)

    def _close(self, s):
        with self.lock:
            self.socks.discard(s)
        try:
            s.shutdown(socket.SHUT_RDWR)    # wakes a thread blocked in recv
        except OSError:
            pass
        s.close()

    def stop(self):
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self.lock:
            socks = list(self.socks)
        for s in socks:
            self._close(s)
        self.thread.join(5)


def make_cert(tmp):
    """A self-signed certificate for 127.0.0.1: (cert, key, ca) paths."""
    cert, key = os.path.join(str(tmp), "cert.pem"), os.path.join(str(tmp), "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                    "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True,
                   timeout=60)
    return cert, key, cert


NGINX_CONF = """
worker_processes 1;
pid %(dir)s/nginx.pid;
error_log %(dir)s/nginx-error.log warn;
daemon off;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %(dir)s/body;
    proxy_temp_path %(dir)s/proxy;
    fastcgi_temp_path %(dir)s/fastcgi;
    uwsgi_temp_path %(dir)s/uwsgi;
    scgi_temp_path %(dir)s/scgi;
    map $http_upgrade $connection_upgrade { default upgrade; '' close; }
    upstream kore { %(servers)s }
    server {
        listen 127.0.0.1:%(port)d;
        location / {
            proxy_pass http://kore;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_read_timeout 300s;
        }
    }
}
"""


class Nginx:
    """nginx in front of ``ports`` (round robin), on a free loopback port."""

    def __init__(self, tmp, ports):
        self.dir = str(tmp)
        conf = os.path.join(self.dir, "nginx.conf")
        servers = " ".join("server 127.0.0.1:%d;" % p for p in ports)
        errlog = os.path.join(self.dir, "nginx-error.log")
        for attempt in range(5):
            # nginx cannot bind port 0 and say which: a port picked now, and
            # another when it was taken before nginx bound it
            self.port = free_port()
            with open(conf, "w") as f:
                f.write(NGINX_CONF % {"dir": self.dir, "port": self.port, "servers": servers})
            self.proc = subprocess.Popen(["nginx", "-c", conf, "-p", self.dir],
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if wait_port("127.0.0.1", self.port, 10, self.proc) and self._is_nginx():
                return
            self.stop()
            err = open(errlog).read() if os.path.exists(errlog) else ""
            if "Address already in use" not in err:
                raise AssertionError("nginx did not start: " + err)
            if os.path.exists(errlog):
                os.unlink(errlog)
        raise AssertionError("nginx found no free port in 5 attempts")

    def _is_nginx(self):
        """The process answering on self.port is this nginx (its Server
        header), not another that took the port."""
        import http.client
        try:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            c.request("GET", "/")
            server = c.getresponse().getheader("Server", "")
            c.close()
        except OSError:
            return False
        return self.proc.poll() is None and server.startswith("nginx")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


__all__ = ["HalfOpenRelay", "RedisServer", "Nginx", "wait_for", "time"]

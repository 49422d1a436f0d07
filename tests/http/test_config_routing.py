"""Servers, domains, routes as Kore: matching, start-up errors, --bind."""

import json
import os
import socket
import subprocess

import httpx
import pytest

from kh_util import Conn, request
from kore_testing import every_worker, wait_for

MULTI = """
import kore

class App:
    def configure(self, args):
        kore.config.workers = 1
        kore.server("one", ip="127.0.0.1", port=os.environ["P1"], tls=False)
        kore.server("two", ip="::1", port=os.environ["P2"], tls=False)
        kore.server("three", path=os.environ["SOCK"], tls=False)
        a = kore.domain("a.example.com", attach="one")
        w = kore.domain("*.example.com", attach="one")
        s = kore.domain("*", attach="two")
        u = kore.domain("*", attach="three")
        a.route("/", self.a, methods=["get"])
        w.route("/", self.w, methods=["get"])
        s.route("/", self.v6, methods=["get"])
        u.route("/", self.unix, methods=["get"])
        a.redirect("^/old/(.*)$", 301, "/new/$1")
        a.accesslog = os.environ["ALOG"]

    def a(self, req):
        req.response(200, b"a " + req.host.encode())

    def w(self, req):
        req.response(200, b"wildcard")

    def v6(self, req):
        req.response(200, req.connection.addr.encode())

    def unix(self, req):
        assert req.connection.addr == req.get_remote_address()
        req.response(200, b"unix " + repr(req.get_remote_address()).encode())

import os
koreapp = App()
"""


def _port(family=socket.AF_INET, host="127.0.0.1"):
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def test_several_servers_unix_ipv6_domains(kore_server, tmp_path):
    p1, p2 = _port(), _port(socket.AF_INET6, "::1")
    sock = str(tmp_path / "web.sock")
    alog = str(tmp_path / "a.log")
    srv = kore_server(MULTI, bind=False,
                      env={"P1": str(p1), "P2": str(p2), "SOCK": sock, "ALOG": alog})
    from kore_testing import KoreServer
    import time
    from kh_util import wait_for
    assert wait_for(lambda: os.path.exists(sock), 15), srv.log()

    def get(host, path="/"):
        return request(p1, b"GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (path.encode(), host.encode()))[0]

    assert wait_for(lambda: _try(lambda: get("a.example.com")), 10)
    assert get("a.example.com:8080").body == b"a a.example.com:8080"
    assert get("A.Example.Com").body.startswith(b"a ")
    assert get("b.example.com").body == b"wildcard"
    r = get("other.org")
    assert r.status == 404
    assert srv.wait_log("no domain matches host 'other.org' (configured: a.example.com, *.example.com)")
    r = get("a.example.com", "/old/x/y")
    assert r.status == 301 and r.header("location") == "/new/x/y"
    r, _ = request(p2, b"GET / HTTP/1.1\r\nHost: [::1]\r\n\r\n", family=socket.AF_INET6, host="::1")
    assert r.body == b"::1"
    r, _ = request(None, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", path=sock)
    # something a handler can log (Kore raises "invalid family" here)
    assert r.body == b"unix 'unix:%s'" % sock.encode()
    assert wait_for(lambda: os.path.exists(alog) and "GET / HTTP/1.1\" 200" in open(alog).read(), 5)


def _try(fn):
    try:
        return fn()
    except OSError:
        return False


ERRORS = [
    ("duplicate", """
import kore
kore.server("default", ip="127.0.0.1", port="0", tls=False)
kore.domain("*")
@kore.route("/x", methods=["get"])
def a(req): pass
@kore.route("/x", methods=["get", "post"])
def b(req): pass
""", "duplicate route /x (GET) on domain *"),
    ("ambiguous", """
import kore
kore.server("default", ip="127.0.0.1", port="0", tls=False)
kore.domain("a")
kore.domain("b")
@kore.route("/x")
def a(req): pass
""", "ambiguous domain on route /x"),
    ("tls-no-cert", """
import kore
kore.server("default", ip="127.0.0.1", port="0")
kore.domain("a")
""", "needs cert= and key="),
    ("unknown-server", """
import kore
kore.domain("a", attach="nope")
""", "server 'nope' does not exist"),
    ("bad-kw", """
import kore
kore.server("default", ip="127.0.0.1", port="0", tls=False)
d = kore.domain("*")
d.route("/x", lambda r: None, bogus=1)
""", "unknown keyword(s) bogus"),
]


@pytest.mark.parametrize("src,message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_startup_errors(korectl, tmp_path, src, message):
    app = tmp_path / "app.py"
    app.write_text(src)
    out = korectl("run", "--workers", "1", str(app), timeout=30, cwd=str(tmp_path))
    assert out.returncode != 0
    assert message in out.stdout + out.stderr, out.stdout + out.stderr


def test_bind_creates_default_server_and_domain(kore_server):
    srv = kore_server("""
import kore

@kore.route("/", methods=["get"])
def index(req):
    req.response(200, b"bound")
""")
    assert httpx.get(srv.url + "/").text == "bound"


def test_bind_replaces_single_server_address(kore_server):
    srv = kore_server("""
import kore
kore.server("main", ip="127.0.0.1", port="1", tls=False)
d = kore.domain("*", attach="main")
d.route("/", lambda req: req.response(200, b"moved"), methods=["get"])
""")
    assert httpx.get(srv.url + "/").text == "moved"


def test_bind_several_servers_is_an_error(korectl, tmp_path):
    app = tmp_path / "app.py"
    app.write_text("""
import kore
kore.server("a", ip="127.0.0.1", port="1", tls=False)
kore.server("b", ip="127.0.0.1", port="2", tls=False)
""")
    out = korectl("run", "--bind", "127.0.0.1:0", "--workers", "1", str(app), timeout=30)
    assert out.returncode != 0 and "--bind cannot be used with several servers" in out.stdout + out.stderr


def test_koreapp_class_method_routes(kore_server):
    srv = kore_server("""
import kore

class App:
    def __init__(self):
        self.greeting = b"from self"

    @kore.route("/m", methods=["get"])
    def m(self, req):
        req.response(200, self.greeting)

koreapp = App()
""")
    assert httpx.get(srv.url + "/m").text == "from self"


def test_two_workers_share_the_load(kore_server):
    srv = kore_server("""
import kore

@kore.route("/w")
def w(req):
    req.response(200, str(kore.worker()).encode())
""", workers=2)
    srv.wait_ready(2)
    def one():
        r, _ = request(srv.port, b"GET /w HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return (r.body if r is not None else None), None
    seen = set(every_worker(one)) - {None}
    assert seen == {b"1", b"2"}


def test_worker_no_accept_leaves_connections_unanswered(kore_server, tmp_path):
    # Kore's worker_no_accept: workers run tasks and timers but accept nothing
    marker = tmp_path / "timer-ran"
    app = """
import kore

def tick():
    open(%r, "w").write("yes")

def kore_worker_configure():
    kore.timer(tick, 50, kore.TIMER_ONESHOT)

kore.config.worker_no_accept = "yes"
kore.server("default", ip="127.0.0.1", port="1", tls=False)
kore.domain("*").route("/", lambda req: req.response(200, b"no"))
""" % str(marker)
    srv = kore_server(app)
    assert srv.wait_log("worker_no_accept: this worker accepts no connections")
    assert wait_for(marker.exists)
    import socket
    with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        s.settimeout(1.0)
        try:
            data = s.recv(100)
        except socket.timeout:
            data = None
    assert data is None        # queued in the backlog, never accepted


def test_proxy_protocol_v1_and_v2_set_the_client_address(kore_server):
    app = """
import kore
kore.server("default", ip="127.0.0.1", port="1", tls=False)
kore.domain("*").route("/who", lambda req: req.response(
    200, req.get_proxied_remote_address().encode()))
"""
    srv = kore_server(app, args=("--proxy-protocol",))

    def ask(header):
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(header + b"GET /who HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            out = b""
            while True:
                d = s.recv(4096)
                if not d:
                    return out
                out += d

    r = ask(b"PROXY TCP4 203.0.113.7 127.0.0.1 5555 80\r\n")
    assert r.startswith(b"HTTP/1.1 200") and r.endswith(b"203.0.113.7")
    import struct
    v2 = (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", 12)
          + socket.inet_aton("198.51.100.9") + socket.inet_aton("127.0.0.1")
          + struct.pack("!HH", 5555, 80))
    r = ask(v2)
    assert r.startswith(b"HTTP/1.1 200") and r.endswith(b"198.51.100.9")
    # a trusted peer without the header: 400, and the server goes on
    assert ask(b"").startswith(b"HTTP/1.1 400")
    assert ask(b"PROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\n").endswith(b"192.0.2.1")


@pytest.mark.parametrize("decl", [
    '@kore.route("/x", methods=["fetch"])\ndef x(req):\n    pass\n',
    'd.route("/x", lambda req: None, methods=["fetch"])\n',
    '@kore.route("^/(unclosed", methods=["get"])\ndef x(req):\n    pass\n',
    'd.route("^/(unclosed", lambda req: None)\n',
])
def test_route_mistakes_name_the_users_file_and_line(korectl, tmp_path, decl):
    app = tmp_path / "app.py"
    app.write_text('import kore\nkore.server("default", ip="127.0.0.1", port="1", '
                   'tls=False)\nd = kore.domain("*")\n' + decl)
    r = korectl("run", str(app))
    assert r.returncode == 4, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("korectl: failed to import application")
    assert "%s, line 4: RuntimeError: route" % app in lines[0]


def test_http_media_type_assignments_add_types(kore_server, tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "a.kx").write_text("one")
    (root / "b.ky").write_text("two")
    app = """
import kore
kore.config.http_media_type = "text/x-one kx"
kore.config.http_media_type = "text/x-two ky"
kore.server("default", ip="127.0.0.1", port="1", tls=False)
kore.domain("*").filemaps({"/": %r})
""" % str(root)
    srv = kore_server(app)
    assert httpx.get(srv.url + "/a.kx", timeout=10).headers["content-type"] == "text/x-one"
    assert httpx.get(srv.url + "/b.ky", timeout=10).headers["content-type"] == "text/x-two"


def test_settings_never_silently_ignored(korectl, kore_server, tmp_path):
    base = ('kore.server("default", ip="127.0.0.1", port="1", tls=False)\n'
            'kore.domain("*").route("/", lambda r: r.response(200, b"ok"))\n')
    for line, needle in (('kore.config.keymgr_root = "/tmp"\n', "keymgr_root"),
                         ('kore.config.keymgr_runas = "nobody"\n', "keymgr_runas")):
        app = tmp_path / ("a_%s.py" % needle)
        app.write_text("import kore\n" + line + base)
        r = korectl("run", str(app))
        assert r.returncode == 2 and needle in r.stderr, (needle, r.stderr)
    base = "import kore\n" + base
    # rand_file works: written at stop, read at the next start
    rnd = tmp_path / "rand.bin"
    app = tmp_path / "rand_app.py"
    app.write_text('import kore\nkore.config.rand_file = %r\n' % str(rnd) + base)
    srv = kore_server(str(app))
    assert srv.stop() == 0
    assert rnd.exists() and rnd.stat().st_size == 1024 and (rnd.stat().st_mode & 0o777) == 0o600
    # kore.config.file set from the application is read
    conf = tmp_path / "extra.conf"
    conf.write_text("http_server_version fromconf\n")
    app2 = tmp_path / "file_app.py"
    app2.write_text('import kore\nkore.config.file = %r\n' % str(conf) + base)
    srv2 = kore_server(str(app2))
    assert httpx.get(srv2.url + "/", timeout=10).headers["server"] == "fromconf"

"""A throwaway third-party plugin uses every seam of the http plugin over a
real server: routes of its own (on the app's domains and on a server of its
own), a kore_http_handle wrapper that sees the route and the status (and
refuses a request before its handler runs), a kore_http_admit check that
stops requests before the wrappers and the handler, a request attribute, access-log
fields, a protocol chosen by ALPN and one chosen by a cleartext preface."""

import json
import socket
import ssl
import subprocess
import sys
import textwrap

import httpx
import pytest

from kore_testing import KoreServer, wait_for

PLUGIN = r'''
import kore
from kore import hookimpl

SEEN = []


@hookimpl
def kore_http_routes(routes):
    routes.route("/seam/hello", lambda req: req.response(200, b"from plugin"),
                 methods=["get"], owner="kore-plugin-seam")
    own = routes.server("seam-own", kore.config.seam_own_bind)
    routes.route("/own", lambda req: req.response(200, b"own server"), domains=[own],
                 owner="kore-plugin-seam")


@hookimpl
def kore_config_options(registry):
    from kore.config import Option
    registry.add(Option("seam_own_bind", "str", "", "address of the plugin's server",
                        owner="kore-plugin-seam"))


@hookimpl(wrapper=True)
def kore_http_handle(req, target):
    if req.path == "/secret":
        req.response(401, b"refused by the wrapper")
    req.response_header("X-Seam-Route", target.where)
    status = yield
    SEEN.append("%s %s" % (req.path, status))
    return status


@hookimpl
def kore_http_admit(req, target):
    req.response_header("X-Seam-Admit", target.where)
    if req.path == "/admit/stop":
        req.response(401, b"refused by admit")
        return False
    if req.path == "/admit/raise":
        raise ValueError("admit failed")
    if req.path == "/admit/silent":
        return False
    return None


@hookimpl
def kore_http_request_attributes():
    return {"greeting": lambda req: "hi " + req.path,
            "seen": property(lambda req: ",".join(SEEN))}


@hookimpl
def kore_http_access_log_fields(req):
    return {"seam": "yes", "tricky": 'a "b"\nc'}


@hookimpl(tryfirst=True)
def kore_tls_alpn(server):
    return ["seam/1"]


def _seam_serve(conn, preface):
    conn.sock.sendall(b"seam protocol " + (conn.alpn or "cleartext").encode()
                      + b" " + preface)


_ALT = []


@hookimpl
def kore_tls_client_hello():
    return True      # kore_tls_context below looks at offered_alpn


@hookimpl
def kore_tls_context(domain, server_name, sslobj, offered_alpn):
    if server_name != "alt.test" and "alt/1" not in (offered_alpn or ()):
        return None
    if not _ALT:
        import os, ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        d = os.environ["SEAM_PKI"]
        ctx.load_cert_chain(os.path.join(d, "alt.pem"), os.path.join(d, "alt.key"))
        ctx.set_alpn_protocols(["http/1.1"])
        _ALT.append(ctx)
    return _ALT[0]


@hookimpl
def kore_cleartext_protocols():
    return ["seam"]


@hookimpl
def kore_connection_protocol(conn, alpn, preface):
    if alpn == "seam/1":
        return _seam_serve
    if preface is not None and preface.startswith(b"SEAM"):
        return _seam_serve
    return None
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "kore-plugin-seam"
version = "0.0.1"

[project.entry-points."kore.plugins"]
seam = "kore_seam.plugin"

[tool.setuptools]
packages = ["kore_seam"]
'''

APP = '''
import kore

kore.server("default", ip="127.0.0.1", port="{port}", tls=False)
kore.server("tls", ip="127.0.0.1", port="{tls_port}", tls=True)
plain = kore.domain("*", attach="default")
secure = kore.domain("seam.test", attach="tls", cert="{cert}", key="{key}")

def hello(req):
    req.response(200, req.greeting().encode() + b"|" + req.seen.encode())

def secret(req):
    req.response(200, b"handler ran")

for d in (plain, secure):
    d.route("/app", hello, methods=["get"])
    d.route("/secret", secret, methods=["get"])
    for p in ("/admit/stop", "/admit/raise", "/admit/silent"):
        d.route(p, secret, methods=["get"])
'''


@pytest.fixture(scope="module")
def seam_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("seam")
    src = root / "src"
    (src / "kore_seam").mkdir(parents=True)
    (src / "kore_seam" / "__init__.py").write_text("")
    (src / "kore_seam" / "plugin.py").write_text(PLUGIN)
    (src / "pyproject.toml").write_text(PYPROJECT)
    site = root / "site"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                        "--no-build-isolation", "--target", str(site), str(src)],
                       capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    "k.pem", "-out", "c.pem", "-days", "2", "-subj", "/CN=seam.test",
                    "-addext", "subjectAltName=DNS:seam.test"],
                   cwd=root, check=True, capture_output=True, timeout=60)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    "alt.key", "-out", "alt.pem", "-days", "2", "-subj", "/CN=alt.test"],
                   cwd=root, check=True, capture_output=True, timeout=60)
    app = root / "app.py"
    # every server on port 0: the ports the kernel chose are read from the log
    app.write_text(textwrap.dedent(APP.format(port=0, tls_port=0,
                                              cert=root / "c.pem", key=root / "k.pem")))
    env = {"PYTHONPATH": str(site), "KORE_SEAM_OWN_BIND": "127.0.0.1:0",
           "SEAM_PKI": str(root)}
    srv = KoreServer(root, str(app), bind=False, wait=False, env=env,
                     args=("--access-log", str(root / "access.log"),
                           "--access-log-format", "json"))
    try:
        srv.port = srv.listen_port("default")
        srv.tls_port = srv.listen_port("tls")
        srv.own_port = srv.listen_port("seam-own")
        srv.root = root
        srv.url = "http://127.0.0.1:%d" % srv.port
        srv.wait_ready(1)
        yield srv
    finally:
        srv.cleanup()


def test_plugin_route_on_app_domains_and_own_server(seam_server):
    r = httpx.get(seam_server.url + "/seam/hello", timeout=10)
    assert r.status_code == 200 and r.text == "from plugin"
    r = httpx.get("http://127.0.0.1:%d/own" % seam_server.own_port, timeout=10)
    assert r.status_code == 200 and r.text == "own server"
    # the app's routes are not on the plugin's server
    assert httpx.get("http://127.0.0.1:%d/app" % seam_server.own_port,
                     timeout=10).status_code == 404


def test_wrapper_sees_route_and_status_and_request_attributes(seam_server):
    r = httpx.get(seam_server.url + "/app", timeout=10)
    assert r.status_code == 200
    assert r.headers["x-seam-route"] == "route '/app'"
    assert r.text.startswith("hi /app|")
    r2 = httpx.get(seam_server.url + "/app", timeout=10)
    # the wrapper recorded the first request's status after its handler ran
    assert "/app 200" in r2.text.split("|")[1]


def test_wrapper_refusal_skips_the_handler(seam_server):
    r = httpx.get(seam_server.url + "/secret", timeout=10)
    assert r.status_code == 401 and r.text == "refused by the wrapper"
    seen = httpx.get(seam_server.url + "/app", timeout=10).text
    assert "/secret 401" in seen


def test_access_log_fields_cannot_forge_lines(seam_server):
    httpx.get(seam_server.url + "/app?x=1", timeout=10)
    log = seam_server.root / "access.log"
    assert wait_for(lambda: log.exists() and "/app" in log.read_text())
    lines = log.read_text().splitlines()
    recs = [json.loads(line) for line in lines]      # every line is one object
    rec = [x for x in recs if x["url.path"] == "/app"][-1]
    assert rec["seam"] == "yes" and rec["tricky"] == 'a "b"\nc'
    assert rec["network.protocol.version"] == "1.1"


def _tls(port, alpn, name="seam.test"):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(alpn)
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                        server_hostname=name)
    return s


def _subject_cn(s):
    from cryptography import x509
    cert = x509.load_der_x509_certificate(s.getpeercert(True))
    return cert.subject.rfc4514_string()


def test_certificate_chosen_by_plugin_per_server_name(seam_server):
    s = _tls(seam_server.tls_port, ["http/1.1"], "alt.test")
    assert _subject_cn(s) == "CN=alt.test"
    s.close()
    s = _tls(seam_server.tls_port, ["http/1.1"], "seam.test")
    assert _subject_cn(s) == "CN=seam.test"
    s.close()
    # the hook sees what the ClientHello offered (ACME's acme-tls/1)
    s = _tls(seam_server.tls_port, ["alt/1", "http/1.1"], "seam.test")
    assert _subject_cn(s) == "CN=alt.test"
    s.close()


def _read_all(s):
    out = b""
    while True:
        d = s.recv(4096)
        if not d:
            return out
        out += d


def test_alpn_offers_plugin_protocol_first_and_serves_it(seam_server):
    s = _tls(seam_server.tls_port, ["seam/1", "http/1.1"])
    assert s.selected_alpn_protocol() == "seam/1"
    assert _read_all(s) == b"seam protocol seam/1 "
    s.close()
    s = _tls(seam_server.tls_port, ["http/1.1"])
    assert s.selected_alpn_protocol() == "http/1.1"
    s.sendall(b"GET /app HTTP/1.1\r\nHost: seam.test\r\nConnection: close\r\n\r\n")
    assert _read_all(s).startswith(b"HTTP/1.1 200 OK\r\n")
    s.close()


def test_cleartext_preface_chooses_protocol(seam_server):
    with socket.create_connection(("127.0.0.1", seam_server.port), timeout=10) as s:
        s.sendall(b"SEAM hello")
        assert _read_all(s) == b"seam protocol cleartext SEAM hello"
    # everything else is still HTTP/1.1, keep-alive included
    with httpx.Client(timeout=10) as c:
        for _ in range(3):
            assert c.get(seam_server.url + "/seam/hello").text == "from plugin"


def test_admit_stops_requests_before_wrappers_and_handler(seam_server):
    r = httpx.get(seam_server.url + "/app", timeout=10)
    assert r.status_code == 200 and r.headers["x-seam-admit"] == "route '/app'"
    r = httpx.get(seam_server.url + "/admit/stop", timeout=10)
    assert (r.status_code, r.text) == (401, "refused by admit")
    assert "x-seam-route" not in r.headers              # the wrapper did not run
    for path in ("/admit/raise", "/admit/silent"):
        r = httpx.get(seam_server.url + path, timeout=10)
        assert r.status_code == 500 and r.text != "handler ran", path
    # the wrapper saw none of the stopped requests; the server keeps serving
    r = httpx.get(seam_server.url + "/app", timeout=10)
    assert r.status_code == 200 and "/admit/" not in r.text
    assert wait_for(lambda: "admit failed" in seam_server.log()
                    and "stopped the request to /admit/silent without answering it"
                    in seam_server.log(), 10)

"""TLS with SNI and client certificates, filemaps, WSGI mounts, access logs;
filemaps and WSGI mounts over HTTP/1.1 and HTTP/2 (h2c) from one server."""

import json
import os
import socket
import ssl
import subprocess
import time

import httpx
import pytest

from kh_proto import H2C_ENV, SERVED, Session, client, raw
from kh_util import Conn, request, wait_for
from kore_testing import read_to_eof


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.pem", "-days", "2", "-subj", "/CN=Test CA", cwd=d)
    for name, cn in (("a", "a.test"), ("b", "b.test"), ("client", "client one")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out",
                 name + ".csr", "-subj", "/CN=" + cn, cwd=d)
        ext = d / (name + ".ext")
        ext.write_text("subjectAltName=DNS:%s\n" % cn if name != "client" else
                       "extendedKeyUsage=clientAuth\n")
        _openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile",
                 str(ext), cwd=d)
    return d


TLS_APP = """
import os, kore

class App:
    def configure(self, args):
        kore.config.workers = 1
        d = os.environ["PKI"]
        kore.server("default", ip="127.0.0.1", port=os.environ["PORT"])
        a = kore.domain("a.test", cert=d + "/a.pem", key=d + "/a.key")
        b = kore.domain("b.test", cert=d + "/b.pem", key=d + "/b.key",
                        client_verify=d + "/ca.pem")
        a.route("/", self.a, methods=["get"])
        b.route("/", self.b, methods=["get"])

    def a(self, req):
        req.response(200, b"a " + req.protocol.encode())

    def b(self, req):
        c = req.connection
        req.response(200, json.dumps({"subject": c.x509dict["subject"],
                                      "der": len(c.x509)}).encode())

import json
koreapp = App()
"""


def test_tls_sni_and_client_cert(kore_server, pki):
    srv = kore_server(TLS_APP, bind=False, env={"PKI": str(pki), "PORT": "0"})
    port = srv.listen_port("default")
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    ctx.check_hostname = False

    def get(sni, cert=None, path="/"):
        c = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        if cert:
            c.load_cert_chain(str(pki / (cert + ".pem")), str(pki / (cert + ".key")))
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with c.wrap_socket(raw, server_hostname=sni) as s:
                peer = s.getpeercert()
                s.sendall(b"GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                          % (path.encode(), sni.encode()))
                data = read_to_eof(s)
        return peer, data

    peer, data = get("a.test")
    assert dict(x[0] for x in peer["subject"])["commonName"] == "a.test"
    assert data.endswith(b"a https")
    assert b"Strict-Transport-Security: max-age=31536000" in data
    peer, data = get("b.test", cert="client")
    assert dict(x[0] for x in peer["subject"])["commonName"] == "b.test"
    body = json.loads(data.split(b"\r\n\r\n", 1)[1])
    assert body["subject"]["commonName"] == "client one" and body["der"] > 100
    # no client certificate: refused (403 after an optional-certificate handshake)
    peer, data = get("b.test")
    assert data.startswith(b"HTTP/1.1 403 ")
    # curl over TLS
    out = subprocess.run(["curl", "-s", "--cacert", str(pki / "ca.pem"), "--resolve",
                          "a.test:%d:127.0.0.1" % port, "https://a.test:%d/" % port],
                         capture_output=True, timeout=20)
    assert out.stdout == b"a https"


FILES_APP = """
import os, kore
kore.config.filemap_index = "index.html"
kore.config.http_media_type = ["text/x-kore kore"]
kore.server("default", ip="127.0.0.1", port="1", tls=False)
d = kore.domain("*")
d.filemaps({"/static": os.environ["ROOT"], "/private": (os.environ["ROOT"],
            {"type": "header", "value": "x-key", "verify": lambda r, v: v == "k"})})
"""


def test_filemaps(kore_server, tmp_path):
    root = tmp_path / "webroot"
    (root / "sub").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "index.html").write_text("<h1>index</h1>")
    (root / "a.txt").write_bytes(b"0123456789")
    (root / "x.kore").write_text("k")
    (root / "sub" / "index.html").write_text("sub index")
    (tmp_path / "secret.txt").write_text("secret")
    os.symlink(str(tmp_path / "secret.txt"), str(root / "escape.txt"))
    srv = kore_server(FILES_APP, env=dict(H2C_ENV, ROOT=str(root)))
    big = root / "big.bin"
    big.write_bytes(os.urandom(700000))
    for proto in SERVED:         # this test starts its own server: both on it
        _filemap_checks(srv, proto, big)


def _filemap_checks(srv, proto, big):
    port = srv.port

    def get(path, extra=b"", method=b"GET"):
        fields = [tuple(x.strip() for x in line.split(":", 1))
                  for line in extra.decode().split("\r\n") if line]
        return raw(port, proto, method.decode(), path.decode(), fields)

    r = get(b"/static/a.txt")
    assert r.status == 200 and r.body == b"0123456789"
    assert r.header("content-type") == "text/plain; charset=utf-8"
    etag, lm = r.header("etag"), r.header("last-modified")
    assert etag and lm
    assert get(b"/static/a.txt", b"If-None-Match: " + etag.encode() + b"\r\n").status == 304
    assert get(b"/static/a.txt", b"If-Modified-Since: " + lm.encode() + b"\r\n").status == 304
    r = get(b"/static/a.txt", b"Range: bytes=2-4\r\n")
    assert r.status == 206 and r.body == b"234" and r.header("content-range") == "bytes 2-4/10"
    r = get(b"/static/a.txt", b"Range: bytes=-3\r\n")
    assert r.body == b"789"
    assert get(b"/static/a.txt", b"Range: bytes=20-\r\n").status == 416
    assert get(b"/static/").body == b"<h1>index</h1>"
    r = get(b"/static/sub")
    assert r.status == 302 and r.header("location") == "/static/sub/"
    assert get(b"/static/sub/").body == b"sub index"
    assert get(b"/static/empty/").status == 404
    assert get(b"/static/x.kore").header("content-type") == "text/x-kore"
    for bad in (b"/static/../secret.txt", b"/static/%2e%2e/secret.txt", b"/static/sub/../../secret.txt",
                b"/static/escape.txt", b"/static/%00", b"/static/nope"):
        assert get(bad).status == 404, bad
    r = get(b"/static/a.txt", method=b"POST")
    assert r.status == 405
    c = Session(port, proto)
    r = c.send("HEAD", "/static/a.txt")
    assert r.status == 200 and r.header("content-length") == "10"
    assert c.send("GET", "/static/a.txt").body == b"0123456789"
    c.close()
    assert get(b"/private/a.txt").status == 403
    assert get(b"/private/a.txt", b"x-key: k\r\n").body == b"0123456789"
    with client(srv.url, proto) as cl:
        r = cl.get("/static/big.bin")
    assert r.content == big.read_bytes()


WSGI_APP = """
import kore
from flask import Flask, request

flask_app = Flask(__name__)

@flask_app.route("/")
def root():
    return "flask root script=%s" % request.script_root

@flask_app.route("/hello/<name>")
def hello(name):
    return {"name": name, "path": request.path, "full": request.full_path,
            "args": request.args.get("q")}

@flask_app.route("/post", methods=["POST"])
def post():
    return request.get_data()[::-1]

def plain(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    yield environ["SCRIPT_NAME"].encode() + b"|" + environ["PATH_INFO"].encode()
    yield b"|more"

kore.mount("/flask", flask_app)
kore.mount("/plain", plain)

@kore.route("/native")
def native(req):
    req.response(200, b"native")
"""


def test_wsgi_mount_flask(kore_server):
    srv = kore_server(WSGI_APP, env=H2C_ENV)
    for proto in SERVED:         # this test starts its own server: both on it
        _wsgi_checks(srv, proto)


def _wsgi_checks(srv, proto):
    with client(srv.url, proto) as cl:
        assert cl.get("/flask/").text == "flask root script=/flask"
        d = cl.get("/flask/hello/k%20x?q=1").json()
        assert d == {"name": "k x", "path": "/hello/k x", "full": "/hello/k x?q=1", "args": "1"}
        assert cl.post("/flask/post", content=b"abc").content == b"cba"
        assert cl.get("/flask/missing").status_code == 404
        r = cl.get("/plain/a/b")
        assert r.text == "/plain|/a/b|more"
        assert cl.get("/native").text == "native"
        assert cl.get("/flaskx").status_code == 404


def test_access_log_json_flag(kore_server, tmp_path):
    log = tmp_path / "access.jsonl"
    srv = kore_server(WSGI_APP, args=["--access-log", str(log), "--access-log-format", "json"])
    httpx.get(srv.url + "/native?z=1", headers={"User-Agent": "ua/1"})
    assert wait_for(lambda: log.exists() and log.read_text().strip(), 5)
    rec = json.loads(log.read_text().splitlines()[0])
    assert rec["url.path"] == "/native" and rec["url.query"] == "z=1"
    assert rec["http.response.status_code"] == 200
    assert rec["user_agent.original"] == "ua/1" and rec["http.request.method"] == "GET"
    assert rec["http.server.request.duration"] >= 0


def test_access_log_common_stdout(kore_server):
    srv = kore_server(WSGI_APP, args=["--access-log", "-"])
    httpx.get(srv.url + "/native")
    assert srv.wait_log('"GET /native HTTP/1.1" 200')


def test_missing_tls_dhparam_stops_startup(korectl, pki, tmp_path):
    app = tmp_path / "app.py"
    app.write_text(TLS_APP)
    r = korectl("run", str(app), env={"PKI": str(pki), "PORT": "1",
                                      "KORE_TLS_DHPARAM": str(tmp_path / "no-dh.pem")})
    assert r.returncode == 2
    assert "tls_dhparam" in r.stderr and "does not exist" in r.stderr

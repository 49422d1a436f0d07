"""verify_depth: the client certificate chain length OpenSSL accepts.

PKI: root CA -> intermediate CA -> client "via-inter"; root CA -> client
"via-root"; root CA -> server certificate for a.test .. d.test.  The
intermediate-issued client presents its certificate plus the intermediate;
client_verify is the root alone.  OpenSSL's depth N allows the client
certificate, up to N intermediates and the root, so depth 0 refuses
"via-inter" and accepts "via-root", and depth 1 (Kore's default) accepts both.
"""

import io
import json
import socket
import ssl
import subprocess

import pytest

from kh_util import wait_for


def _openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _issue(d, name, subj, ca, ext):
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", name + ".key", "-out", name + ".csr", "-subj", subj, cwd=d)
    (d / (name + ".ext")).write_text(ext)
    _openssl("x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
             "-CAcreateserial", "-out", name + ".pem", "-days", "2",
             "-extfile", name + ".ext", cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki-depth")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", "root.key", "-out", "root.pem", "-days", "2",
             "-subj", "/CN=Depth Root CA", cwd=d)
    ca_ext = ("basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
              "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    leaf_ext = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n"
    _issue(d, "inter", "/CN=Depth Intermediate CA", "root", ca_ext)
    _issue(d, "via-inter", "/CN=client via inter", "inter", leaf_ext)
    _issue(d, "via-root", "/CN=client via root", "root", leaf_ext)
    _issue(d, "server", "/CN=a.test", "root",
           "subjectAltName=DNS:a.test,DNS:b.test,DNS:c.test,DNS:d.test\n"
           "extendedKeyUsage=serverAuth\n")
    # the client certificate chain file: leaf, then the intermediate
    (d / "via-inter-chain.pem").write_text((d / "via-inter.pem").read_text()
                                           + (d / "inter.pem").read_text())
    return d


APP = """
import json, os, kore

class App:
    def configure(self, args):
        kore.config.workers = 1
        d = os.environ["PKI"]
        spec = json.loads(os.environ["SPEC"])   # [[server, port, [[host, depth], ...]], ...]
        for name, port, domains in spec:
            kore.server(name, ip="127.0.0.1", port=str(port))
            for host, depth in domains:
                kw = {} if depth == "default" else {"verify_depth": depth}
                dom = kore.domain(host, attach=name, cert=d + "/server.pem",
                                  key=d + "/server.key", client_verify=d + "/root.pem", **kw)
                dom.route("/", self.who, methods=["get"])

    def who(self, req):
        c = req.connection
        req.response(200, json.dumps({"host": req.host,
                                      "client": c.x509dict["subject"]["commonName"]}).encode())

koreapp = App()
"""


def _start(kore_server, pki, spec):
    """spec: [(server name, [(host, depth or "default"), ...]), ...] -> {name: port}."""
    # port 0 for every server: the ports the kernel chose are read from the log
    full = [[name, 0, [list(x) for x in domains]] for name, domains in spec]
    srv = kore_server(APP, bind=False, env={"PKI": str(pki), "SPEC": json.dumps(full)})
    ports = {name: srv.listen_port(name) for name, _ in spec}
    return srv, ports


def _get(pki, port, sni, client):
    """GET / over TLS with a client certificate: ("ok", body) on a 200,
    ("refused", detail) when the handshake or the first read fails."""
    c = ssl.create_default_context(cafile=str(pki / "root.pem"))
    chain = "via-inter-chain" if client == "via-inter" else client
    c.load_cert_chain(str(pki / (chain + ".pem")), str(pki / (client + ".key")))
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with c.wrap_socket(raw, server_hostname=sni) as s:
                s.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                          % sni.encode())
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
    except (ssl.SSLError, OSError) as exc:
        assert not data.startswith(b"HTTP/1.1 200"), data
        return "refused", repr(exc)
    if not data.startswith(b"HTTP/1.1 200 "):
        return "refused", data[:200]
    body = json.loads(data.split(b"\r\n\r\n", 1)[1])
    return "ok", body


def _expect_ok(pki, port, sni, client):
    kind, body = _get(pki, port, sni, client)
    assert kind == "ok", (sni, client, body)
    assert body["host"] == sni and body["client"] == "client " + client.replace("-", " ")


def _expect_refused(pki, port, sni, client):
    kind, detail = _get(pki, port, sni, client)
    assert kind == "refused", (sni, client, detail)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("depth", [1, "default"])
def test_depth_1_accepts_an_intermediate_issued_client(kore_server, pki, depth):
    srv, ports = _start(kore_server, pki, [("s", [("a.test", depth)])])
    _expect_ok(pki, ports["s"], "a.test", "via-inter")
    _expect_ok(pki, ports["s"], "a.test", "via-root")
    assert "not enforced" not in srv.log(), srv.log()


@pytest.mark.timeout(60)
def test_depth_0_refuses_an_intermediate_issued_client(kore_server, pki):
    srv, ports = _start(kore_server, pki, [("s", [("a.test", 0)])])
    _expect_refused(pki, ports["s"], "a.test", "via-inter")
    _expect_ok(pki, ports["s"], "a.test", "via-root")
    # the worker is still serving after the refusal
    _expect_refused(pki, ports["s"], "a.test", "via-inter")
    _expect_ok(pki, ports["s"], "a.test", "via-root")
    assert "not enforced" not in srv.log(), srv.log()


@pytest.mark.timeout(60)
def test_sni_gives_each_domain_its_depth(kore_server, pki):
    # s1 starts handshakes with a.test's depth 0: b.test (depth 1) needs the
    # per-connection depth after the SNI switch; s2 the other way round.
    srv, ports = _start(kore_server, pki, [
        ("s1", [("a.test", 0), ("b.test", 1)]),
        ("s2", [("c.test", 1), ("d.test", 0)]),
    ])
    for _ in range(2):
        _expect_refused(pki, ports["s1"], "a.test", "via-inter")
        _expect_ok(pki, ports["s1"], "a.test", "via-root")
        _expect_ok(pki, ports["s1"], "b.test", "via-inter")
        _expect_ok(pki, ports["s1"], "b.test", "via-root")
        _expect_ok(pki, ports["s2"], "c.test", "via-inter")
        _expect_refused(pki, ports["s2"], "d.test", "via-inter")
        _expect_ok(pki, ports["s2"], "d.test", "via-root")
    assert "not enforced" not in srv.log(), srv.log()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("bad", [-1, "x", True, 1.5])
def test_bad_verify_depth_stops_startup(kore_server, pki, bad):
    srv = kore_server(APP, bind=False, env={
        "PKI": str(pki), "SPEC": json.dumps([["s", 0, [["a.test", bad]]]])})
    try:
        code = srv.proc.wait(40)
    except subprocess.TimeoutExpired:
        pytest.fail("korectl kept running with verify_depth=%r:\n%s" % (bad, srv.log()))
    log = srv.log()
    assert code != 0, log
    assert "verify_depth %r is invalid" % (bad,) in log and "'a.test'" in log, log
    assert "int from 0" in log, log


def test_bad_verify_depth_on_a_plain_server_stops_startup(kore_server):
    srv = kore_server("""
import kore
kore.server("default", ip="127.0.0.1", port="1", tls=False)
kore.domain("*", verify_depth=-2)
""", bind=False)
    try:
        code = srv.proc.wait(40)
    except subprocess.TimeoutExpired:
        pytest.fail("korectl kept running:\n" + srv.log())
    assert code != 0 and "verify_depth -2 is invalid" in srv.log(), srv.log()


def test_fallback_warns_once_and_goes_on(monkeypatch):
    """When OpenSSL cannot be reached safely nothing is poked: one warning
    per domain names it and says verify_depth is not enforced."""
    from kore.log import LOG
    from kore_http import openssl_depth as od

    out = io.StringIO()
    monkeypatch.setattr(LOG, "stream", out)
    monkeypatch.setattr(od, "_warned", set())
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    # a sanity check fails: not an SSLContext
    assert od.set_context_depth(object(), 1, "x.test") is False
    assert od.set_context_depth(object(), 1, "x.test") is False
    assert od.set_connection_depth(object(), 1, "y.test") is False
    # the library cannot be loaded
    monkeypatch.setattr(od, "_lib", None)
    monkeypatch.setattr(od, "_lib_error", "OSError: test")
    assert od.set_context_depth(ctx, 2, "z.test") is False
    lines = out.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert "domain 'x.test': verify_depth 1 is not enforced" in lines[0]
    assert "domain 'y.test'" in lines[1]
    assert "domain 'z.test': verify_depth 2 is not enforced" in lines[2] and "OSError: test" in lines[2]


def test_context_depth_is_set_and_checked():
    """The checked path on this build: SSL_CTX depth set and read back, and a
    context whose verify mode disagrees with OpenSSL's is left alone."""
    from kore_http import openssl_depth as od

    lib = od._load()
    if lib is None:
        pytest.skip("libssl not reachable through _ssl: %s" % od._lib_error)
    for mode in (ssl.CERT_NONE, ssl.CERT_OPTIONAL, ssl.CERT_REQUIRED):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.verify_mode = mode
        assert od.set_context_depth(ctx, 4, "t.test") is True
        assert lib.SSL_CTX_get_verify_depth(od._ctx_ptr(lib, ctx)) == 4

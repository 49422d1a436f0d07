"""The tls_* options and a domain's crl=, each checked by what a real TLS
client (Python's ssl, openssl s_client) sees on a korectl server.

Two servers for the module: one with tls_version 1.2, a DHE-only tls_cipher
and an ffdhe3072 tls_dhparam; one with tls_version 1.3 whose domain asks for
client certificates checked against a CA and its revocation list.
"""

import datetime
import socket
import ssl
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kore_testing import KoreServer, read_to_eof

HOST = "tls.test"
DHE = "DHE-RSA-AES128-GCM-SHA256"
ECDHE = "ECDHE-RSA-AES256-GCM-SHA384"


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key):
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, an RSA server certificate for tls.test (DHE-RSA needs RSA), a
    good and a revoked client certificate, and the CA's CRL naming the
    revoked one."""
    d = tmp_path_factory.mktemp("tlspki")
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=2)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("Options CA"))
          .issuer_name(_name("Options CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True,
                                       False, False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    (d / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def leaf(name, cn, key, usage, san=None):
        b = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(ca.subject)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(start).not_valid_after(end)
             .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]),
                                critical=False)
        cert = b.sign(ca_key, hashes.SHA256())
        (d / (name + ".pem")).write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (d / (name + ".key")).write_bytes(_pem_key(key))
        return cert

    leaf("server", HOST, rsa.generate_private_key(65537, 2048),
         ExtendedKeyUsageOID.SERVER_AUTH, san=HOST)
    leaf("good", "good client", ec.generate_private_key(ec.SECP256R1()),
         ExtendedKeyUsageOID.CLIENT_AUTH)
    revoked = leaf("revoked", "revoked client", ec.generate_private_key(ec.SECP256R1()),
                   ExtendedKeyUsageOID.CLIENT_AUTH)
    crl = (x509.CertificateRevocationListBuilder().issuer_name(ca.subject)
           .last_update(start).next_update(end)
           .add_revoked_certificate(x509.RevokedCertificateBuilder()
                                    .serial_number(revoked.serial_number)
                                    .revocation_date(start).build())
           .sign(ca_key, hashes.SHA256()))
    (d / "crl.pem").write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    # RFC 7919's ffdhe3072 group: a DH size no default would pick for a
    # 2048-bit RSA certificate
    subprocess.run(["openssl", "genpkey", "-genparam", "-algorithm", "DH", "-pkeyopt",
                    "group:ffdhe3072", "-out", str(d / "dh.pem")],
                   check=True, capture_output=True, timeout=60)
    return d


APP = """
import os, kore

def kore_parent_configure(args):
    d = os.environ["PKI"]
    kore.server("tls", ip="127.0.0.1", port="0")
    extra = {}
    if os.environ.get("CLIENT_CERTS"):
        extra = dict(client_verify=d + "/ca.pem", crl=d + "/crl.pem")
    dom = kore.domain("tls.test", attach="tls", cert=d + "/server.pem",
                      key=d + "/server.key", **extra)
    dom.route("/", page, methods=["get"])

def page(req):
    who = req.connection.x509dict["subject"]["commonName"] if req.connection.x509 else "-"
    req.response(200, ("served %s" % who).encode())
"""


def _server(tmp_path_factory, pki, **env):
    srv = KoreServer(tmp_path_factory.mktemp("tlsopt"), APP, workers=1, bind=False,
                     env=dict(env, PKI=str(pki)))
    srv.port = srv.listen_port("tls")
    return srv


@pytest.fixture(scope="module")
def tls12(tmp_path_factory, pki):
    srv = _server(tmp_path_factory, pki, KORE_TLS_VERSION="1.2", KORE_TLS_CIPHER=DHE,
                  KORE_TLS_DHPARAM=str(pki / "dh.pem"))
    yield srv
    srv.cleanup()


@pytest.fixture(scope="module")
def tls13(tmp_path_factory, pki):
    srv = _server(tmp_path_factory, pki, KORE_TLS_VERSION="1.3", CLIENT_CERTS="1")
    yield srv
    srv.cleanup()


def _client(pki, cert=None, minv=None, maxv=None, ciphers=None):
    ctx = ssl.create_default_context(cafile=str(pki / "ca.pem"))
    if cert:
        ctx.load_cert_chain(str(pki / (cert + ".pem")), str(pki / (cert + ".key")))
    if minv:
        ctx.minimum_version = minv
    if maxv:
        ctx.maximum_version = maxv
    if ciphers:
        ctx.set_ciphers(ciphers)
    return ctx


def _get(port, ctx):
    """(TLS version, cipher name, response bytes) of one GET /."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as s:
            version, cipher = s.version(), s.cipher()[0]
            s.sendall(b"GET / HTTP/1.1\r\nHost: tls.test\r\nConnection: close\r\n\r\n")
            data = read_to_eof(s)
            return version, cipher, data


def _refused(port, ctx):
    """The SSLError a refused client gets."""
    try:
        version, cipher, data = _get(port, ctx)
    except ssl.SSLError as exc:
        return exc
    raise AssertionError("served although it should be refused: %s %s %r"
                         % (version, cipher, data[:200]))


def _refused_after_handshake(port, ctx):
    """TLS 1.3: the server checks a client certificate after the client's
    side of the handshake ended.  Read before sending anything, so that the
    server's alert is not overtaken by the reset a closed socket with an
    unread request sends."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=HOST) as s:
            try:
                data = s.recv(1)
            except ssl.SSLError as exc:
                return exc
            raise AssertionError("not refused: read %r" % data)


# -- tls_version -------------------------------------------------------------

def test_tls_version_1_2_refuses_a_tls_1_3_only_client(tls12, pki):
    version, cipher, data = _get(tls12.port, _client(pki))
    assert version == "TLSv1.2" and data.endswith(b"served -"), (version, data)
    exc = _refused(tls12.port, _client(pki, minv=ssl.TLSVersion.TLSv1_3))
    assert "alert protocol version" in str(exc), exc


def test_tls_version_1_3_refuses_a_tls_1_2_only_client(tls13, pki):
    version, _, data = _get(tls13.port, _client(pki, cert="good"))
    assert version == "TLSv1.3" and data.endswith(b"served good client"), (version, data)
    exc = _refused(tls13.port, _client(pki, cert="good", maxv=ssl.TLSVersion.TLSv1_2))
    assert "alert protocol version" in str(exc), exc


# -- tls_cipher ---------------------------------------------------------------

def test_tls_cipher_limits_the_tls_1_2_suites(tls12, pki):
    v12 = ssl.TLSVersion.TLSv1_2
    exc = _refused(tls12.port, _client(pki, maxv=v12, ciphers=ECDHE))
    assert "alert handshake failure" in str(exc), exc
    # offered second, it is the one chosen: the server has no other
    version, cipher, data = _get(tls12.port, _client(pki, maxv=v12,
                                                     ciphers=ECDHE + ":" + DHE))
    assert (version, cipher) == ("TLSv1.2", DHE) and data.startswith(b"HTTP/1.1 200")


# -- tls_dhparam --------------------------------------------------------------

def test_tls_dhparam_sets_the_dhe_group(tls12, pki):
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % tls12.port,
                        "-servername", HOST, "-tls1_2", "-cipher", DHE,
                        "-CAfile", str(pki / "ca.pem")],
                       input=b"", capture_output=True, timeout=30)
    out = r.stdout.decode("utf-8", "replace")
    assert "Server Temp Key: DH, 3072 bits" in out, out + r.stderr.decode()
    assert "Cipher is %s" % DHE in out or "Cipher    : %s" % DHE in out, out


# -- crl= --------------------------------------------------------------------

def test_crl_refuses_a_revoked_client_certificate(tls13, pki):
    exc = _refused_after_handshake(tls13.port, _client(pki, cert="revoked"))
    assert "alert certificate revoked" in str(exc), exc
    # the good certificate of the same CA is served on the same server
    _, _, data = _get(tls13.port, _client(pki, cert="good"))
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"served good client")


def test_client_verify_refuses_a_client_without_certificate(tls13, pki):
    exc = _refused_after_handshake(tls13.port, _client(pki))
    assert "alert certificate required" in str(exc), exc
    assert tls13.proc.poll() is None

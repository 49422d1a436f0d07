"""Helpers of the ACME tests: a korectl running tests/acme/apps/acme_app.py,
TLS clients that report which certificate they were served."""

import os
import socket
import ssl

from cryptography import x509

from kore_testing import KoreServer, wait_port

APP = os.path.join(os.path.dirname(os.path.abspath(__file__)), "apps", "acme_app.py")


def start_kore(workdir, tls_port, provider, ca=None, workers=2, **env):
    e = {"T_TLS_PORT": str(tls_port), "T_PROVIDER": provider, "T_CA": ca or "",
         "T_WORKERS": str(workers)}
    e.update({k: str(v) for k, v in env.items()})
    srv = KoreServer(workdir, APP, bind=False, wait=False, workers=None, env=e,
                     cwd=str(workdir))
    if not wait_port("127.0.0.1", tls_port, 20, srv.proc):
        out = srv.log()
        srv.kill()
        raise AssertionError("korectl did not listen:\n" + out)
    return srv


def served_cert(port, server_name="localhost", alpn=None, cafile=None):
    """(leaf x509.Certificate, negotiated ALPN, verified) of one handshake."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            der = s.getpeercert(True)
            got = s.selected_alpn_protocol()
    return x509.load_der_x509_certificate(der), got


def verified_get(port, cafile, path="/", server_name="localhost"):
    """GET over TLS verifying the chain against ``cafile`` and the name;
    returns the response bytes (ssl.SSLCertVerificationError when not)."""
    ctx = ssl.create_default_context(cafile=cafile)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as s:
            s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
                       % (path, server_name)).encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return data
                data += chunk


def is_issued(port, cafile):
    try:
        return b"200 OK" in verified_get(port, cafile)
    except ssl.SSLError:
        return False
    except OSError:
        return False

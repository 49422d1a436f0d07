import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from kore_testing import KoreServer, free_port, wait_port  # noqa: E402

APP = os.path.join(HERE, "apps", "h2_app.py")


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("h2pki")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(d / "k.pem"), "-out", str(d / "c.pem"), "-days", "2",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return d


def start_h2(tmp_path_factory, pki, args=(), env=None, name="h2"):
    """The test app on two ports: srv.port (cleartext) and srv.tls_port."""
    tmp = tmp_path_factory.mktemp(name)
    (tmp / "files").mkdir()
    (tmp / "files" / "a.txt").write_text("filedata\n")
    (tmp / "marks").mkdir()
    tls_port = free_port()
    port = free_port()
    e = {"PORT": str(port), "TLS_PORT": str(tls_port), "CERT": str(pki / "c.pem"),
         "KEY": str(pki / "k.pem"), "FILES": str(tmp / "files"), "MARKS": str(tmp / "marks"),
         "KORE_HTTP_ACCESS_LOG": str(tmp / "access.log")}
    e.update(env or {})
    srv = KoreServer(tmp, APP, (), workers=1, env=e, args=list(args), bind=False)
    srv.port = port
    srv.tls_port = tls_port
    srv.url = "http://127.0.0.1:%d" % port
    srv.tls_url = "https://127.0.0.1:%d" % tls_port
    srv.marks = tmp / "marks"
    srv.access_log = tmp / "access.log"
    if not (wait_port("127.0.0.1", port, 20, srv.proc)
            and wait_port("127.0.0.1", tls_port, 20, srv.proc)):
        out = srv.log()
        srv.kill()
        raise AssertionError("server did not start:\n" + out)
    srv.wait_ready(1)
    return srv


@pytest.fixture(scope="module")
def h2srv(tmp_path_factory, pki):
    srv = start_h2(tmp_path_factory, pki, ["--http2-cleartext", "prior-knowledge"],
                   env={"KORE_HTTP_BODY_MAX": str(16 << 20), "KORE_HTTP_BODY_TIMEOUT": "5",
                        "KORE_HTTP_HEADER_MAX": "4096"})
    yield srv
    srv.cleanup()

"""examples/http2 as shipped: TLS h2 and h1 on one port, h2c, Early Hints."""

import os
import shutil
import subprocess

import pytest

from h2client import H2Client
from kore_testing import ROOT, KoreServer

pytestmark = pytest.mark.timeout(60)


def test_example_http2(tmp_path):
    ex = tmp_path / "http2"
    shutil.copytree(os.path.join(ROOT, "examples", "http2"), ex)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(ex / "key.pem"), "-out", str(ex / "cert.pem"), "-days", "2", "-subj",
                    "/CN=localhost"], check=True, capture_output=True, timeout=60)
    srv = KoreServer(tmp_path, str(ex / "app.py"), (), workers=1, bind=False,
                     args=["--http2-cleartext", "prior-knowledge"],
                     env={"H2_TLS_PORT": "0", "H2_PORT": "0"})
    try:
        tls_port, port = srv.listen_port("tls"), srv.listen_port("proxy")

        def curl(*a):
            return subprocess.run(["curl", "-sk"] + list(a), capture_output=True, text=True,
                                  timeout=20).stdout
        assert curl("--http2", "https://127.0.0.1:%d/" % tls_port) == "hello over HTTP/2.0\n"
        assert curl("--http1.1", "https://127.0.0.1:%d/" % tls_port) == "hello over HTTP/1.1\n"
        assert curl("--http2-prior-knowledge", "http://127.0.0.1:%d/" % port) == \
            "hello over HTTP/2.0\n"
        c = H2Client(tls_port, tls=True)
        sid = c.request("/page", scheme="https")
        status, _, body = c.response(sid)
        assert status == 200 and b"style.css" in body
        # the h2 client leaves push enabled: the stylesheet is pushed
        assert [hs for hs in c.pushed.values() if (b":path", b"/style.css") in hs]
        c.close()
    finally:
        srv.cleanup()

import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from h2_helpers import APP, start_h2  # noqa: E402,F401


@pytest.fixture(scope="session")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("h2pki")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-keyout", str(d / "k.pem"), "-out", str(d / "c.pem"), "-days", "2",
                    "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    return d


@pytest.fixture(scope="module")
def h2srv(tmp_path_factory, pki):
    srv = start_h2(tmp_path_factory, pki, ["--http2-cleartext", "prior-knowledge"],
                   env={"KORE_HTTP_BODY_MAX": str(16 << 20), "KORE_HTTP_BODY_TIMEOUT": "5",
                        "KORE_HTTP_HEADER_MAX": "4096"})
    yield srv
    srv.cleanup()

"""examples/acme as shipped, against a real pebble (both challenge types)."""

import os

import pytest

from acme_helpers import is_issued, listening, verified_get, with_ports
from acme_pebble import Pebble, Ports
from kore_testing import ROOT, KoreServer, wait_for

EXAMPLE = os.path.join(ROOT, "examples", "acme", "app.py")
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("challenge", ["tls-alpn-01", "http-01"])
def test_shipped_acme_example(tmp_path, challenge):
    ports = Ports()
    pebble = Pebble(tmp_path / "pebble", http_port=ports.take(), tls_port=ports.take(),
                    ports=ports).start()
    env = {"KORE_ACME_PROVIDER": pebble.url, "KORE_WORKERS": "2"}
    # tls-alpn-01 is the default (the example does not set acme_challenge)
    if challenge != "tls-alpn-01":
        env["KORE_ACME_CHALLENGE"] = challenge
    # the CA of pebble's HTTPS: the option, or the standard variable
    if challenge == "tls-alpn-01":
        env["KORE_ACME_CA_BUNDLE"] = pebble.ca
    else:
        env["REQUESTS_CA_BUNDLE"] = pebble.ca
    env.setdefault("SSL_CERT_FILE", "")

    def start(tls_port, http_port):
        if (tls_port, http_port) != (pebble.tls_port, pebble.http_port):
            pebble.challenge_ports(http_port, tls_port)
        srv = KoreServer(tmp_path, EXAMPLE, bind=False, wait=False, workers=None, env=env,
                         extra=("localhost", "127.0.0.1", str(tls_port), str(http_port)))
        return listening(srv, [tls_port, http_port]), tls_port

    srv, tls_port = with_ports(ports, start, (pebble.tls_port, pebble.http_port))
    try:
        assert wait_for(lambda: is_issued(tls_port, pebble.root_path), timeout=60), \
            srv.log() + pebble.log()[-2000:]
        assert b"certificate from ACME" in verified_get(tls_port, pebble.root_path)
        assert "(%s, %s)" % (challenge, pebble.url) in srv.log()
        assert (tmp_path / "acme-state" / "certificates" / "localhost" /
                "fullchain.pem").exists()
    finally:
        srv.cleanup()
        pebble.stop()
        ports.close()

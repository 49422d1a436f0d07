"""PROTO_HTTPS: nodes reached over TLS, connections pooled."""

import http.client
import subprocess

import pytest

from px_util import CountingUpstream, get, start_proxy

APP = '''
import os
import kore
kore.alias("@tls", kore.PROTO_HTTPS, [os.environ["UP"]], ssl_verify=False)
kore.alias("@verified", kore.PROTO_HTTPS, [os.environ["UP"]])
kore.mount("/tls", "@tls")
kore.mount("/verified", "@verified")
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    d = tmp_path_factory.mktemp("tlsup")
    cert, key = str(d / "cert.pem"), str(d / "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    up = CountingUpstream("tls", tls=(cert, key))
    p = start_proxy(tmp_path_factory, APP, env={"UP": "127.0.0.1:%d" % up.port})
    yield {"up": up, "proxy": p}
    p.cleanup()
    up.close()


def test_tls_upstream_is_pooled(env):
    c = http.client.HTTPConnection("127.0.0.1", env["proxy"].port, timeout=30)
    for i in range(50):
        c.request("GET", "/tls/%d" % i)
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"tls GET /%d" % i
    c.close()
    assert env["up"].connections == 1


def test_unverifiable_certificate_is_a_502(env):
    status, _, body = get(env["proxy"].port, "/verified/x")
    assert status == 502 and body.startswith(b"502")
    assert env["proxy"].wait_log("certificate verify failed")

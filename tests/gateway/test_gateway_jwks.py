"""RS256/ES256 through a JWKS URL served by a local test server: fetched
once and cached, a new ``kid`` picked up with one refetch, an unknown one
refused after one refetch (and not refetched again), key confusion and
algorithms outside the list refused."""

import base64
import hashlib
import hmac
import http.server
import json
import threading
import time

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kore_testing import KoreServer

APP = """
import kore, os
kore.enable_gateway(True, jwks_url=os.environ["GW_JWKS"], realm="JWKS", leeway=5)

@kore.route("/me", methods=["get"])
def me(req):
    req.response(200, ("%s %s" % (req.user, ",".join(req.roles))).encode())
"""


class Jwks:
    """A JWKS endpoint in a thread of the test process, counting fetches."""

    def __init__(self):
        self.keys = []
        self.fetches = 0
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                outer.fetches += 1
                body = json.dumps({"keys": outer.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/.well-known/jwks.json" % self.httpd.server_port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, *pairs):
        out = []
        for kid, key in pairs:
            d = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())
                           if isinstance(key, rsa.RSAPrivateKey) else
                           jwt.algorithms.ECAlgorithm.to_jwk(key.public_key()))
            d.update({"kid": kid, "use": "sig"})
            out.append(d)
        self.keys = out

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


RSA1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC1 = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    jw = Jwks()
    jw.publish(("k1", RSA1), ("e1", EC1))
    srv = KoreServer(tmp_path_factory.mktemp("jwks"), APP, workers=1,
                     env={"GW_JWKS": jw.url})
    srv.wait_ready(1)
    yield srv, jw
    srv.cleanup()
    jw.close()


def tok(key, kid, alg="RS256", **claims):
    c = {"sub": "alice", "roles": ["user"], "exp": int(time.time()) + 300}
    c.update(claims)
    return jwt.encode(c, key, algorithm=alg, headers={"kid": kid})


def get(srv, t):
    return httpx.get(srv.url + "/me", headers={"Authorization": "Bearer " + t}, timeout=10)


def test_jwks_fetched_once_then_cached_rotation_and_unknown_kid(env):
    srv, jw = env
    r = get(srv, tok(RSA1, "k1"))
    assert r.status_code == 200 and r.text == "alice user"
    assert jw.fetches == 1
    for _ in range(5):
        assert get(srv, tok(RSA1, "k1", sub="bob")).status_code == 200
    assert get(srv, tok(EC1, "e1", alg="ES256")).status_code == 200
    assert jw.fetches == 1                          # cached

    # rotation: the provider publishes k2; a token with k2 triggers one refetch
    jw.publish(("k2", RSA2), ("k1", RSA1))
    assert get(srv, tok(RSA2, "k2")).status_code == 200
    assert jw.fetches == 2
    assert get(srv, tok(RSA2, "k2", sub="carol")).status_code == 200
    assert jw.fetches == 2

    # an unknown kid: one refetch, then 401; the same kid again costs nothing
    r = get(srv, tok(RSA2, "k9"))
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    assert jw.fetches == 3
    assert get(srv, tok(RSA2, "k9", sub="x")).status_code == 401
    assert jw.fetches == 3


def test_key_confusion_and_foreign_algorithms(env):
    srv, jw = env
    pem = RSA1.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)

    def b64(obj):
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()
    head = b64({"alg": "HS256", "kid": "k1", "typ": "JWT"}) + "." + b64(
        {"sub": "root", "exp": int(time.time()) + 300})
    sig = base64.urlsafe_b64encode(hmac.new(pem, head.encode(), hashlib.sha256).digest())
    forged = head + "." + sig.rstrip(b"=").decode()
    r = get(srv, forged)
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]
    # alg none with a valid kid
    none = b64({"alg": "none", "kid": "k1"}) + "." + b64({"sub": "root"}) + "."
    assert get(srv, none).status_code == 401
    # a token claiming ES256 but naming the RSA key
    assert get(srv, tok(EC1, "k1", alg="ES256")).status_code == 401
    # a signature by a key the JWKS does not hold, under a known kid
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert get(srv, tok(other, "k1")).status_code == 401
    # expired beyond the 5 s leeway
    assert get(srv, tok(RSA1, "k1", exp=int(time.time()) - 30)).status_code == 401

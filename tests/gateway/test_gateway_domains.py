"""Per-domain policies over a real server: two kore.domain hosts on one
server, a domain-wide policy, a route override inside it, and a policy
that names its domain."""

import httpx
import jwt
import pytest

from kore_testing import KoreServer

SECRET = "domain-secret-domain-secret-0001"

APP = """
import kore, os
kore.server("default", ip="127.0.0.1", port=os.environ["PORT"], tls=False)
api = kore.domain("api.test")
www = kore.domain("*")
kore.enable_gateway(True, "%s", realm="domains")

def hello(req):
    req.response(200, ("%%s %%s" %% (req.host, req.user)).encode())

for d in (api, www):
    d.route("/hello", hello, methods=["get"])
    d.route("/status", hello, methods=["get"])

# www is public, api needs tokens with the 'api' role; /status on api is open
kore.gateway_policy(None, domain="*", auth=False)
kore.gateway_policy(None, domain="api.test", roles=["api"])
kore.gateway_policy("/status", domain="api.test", auth=False)
""" % SECRET


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = KoreServer(tmp_path_factory.mktemp("dom"), APP, workers=1, bind=False,
                   env={"PORT": "0"})
    s.port = s.listen_port("default")
    s.url = "http://127.0.0.1:%d" % s.port
    yield s
    s.cleanup()


def get(srv, host, path, roles=None):
    h = {"Host": host}
    if roles is not None:
        h["Authorization"] = "Bearer " + jwt.encode({"sub": "u", "roles": roles}, SECRET)
    return httpx.get(srv.url + path, headers=h, timeout=10)


def test_domain_policies(srv):
    assert get(srv, "www.test", "/hello").status_code == 200
    r = get(srv, "api.test", "/hello")
    assert r.status_code == 401 and r.headers["www-authenticate"] == 'Bearer realm="domains"'
    assert get(srv, "api.test", "/hello", roles=["user"]).status_code == 403
    r = get(srv, "api.test", "/hello", roles=["api"])
    assert r.status_code == 200 and r.text == "api.test u"
    # the route override inside the api domain
    assert get(srv, "api.test", "/status").status_code == 200

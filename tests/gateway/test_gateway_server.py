"""The gateway over real sockets: one ``korectl run`` (2 workers) shared by
the module; tokens made with PyJWT; RFC 6750 answers; Skitai's Authorizer
(sync, coroutine awaiting kore.httpclient, callback); roles and source
CIDRs; a WSGI mount; transaction ids sent on by kore.httpclient; the JSON
access log (ids, subject, never the token)."""

import base64
import json
import os
import time

import httpx

_C = httpx.Client(timeout=10)
import jwt
import pytest

from kore_testing import KoreServer, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
SECRET = "gw-test-secret-gw-test-secret-0001"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gw")
    log = tmp / "access.json"
    s = _start(tmp, ["--access-log", str(log), "--access-log-format", "json"])
    s.access = log
    yield s
    s.cleanup()


def _start(tmp, args, workers=2):
    s = KoreServer(tmp, os.path.join(HERE, "apps", "gw_app.py"), workers=workers,
                   env={"GW_SECRET": SECRET}, args=args)
    s.wait_ready(workers)
    return s


def token(claims=None, key=SECRET, alg="HS256", **extra):
    c = {"sub": "alice", "roles": ["user"], "iss": "https://idp.test", "aud": "api",
         "exp": int(time.time()) + 300}
    c.update(claims or {})
    c.update(extra)
    return jwt.encode(c, key, algorithm=alg)


def get(srv, path, tok=None, headers=None):
    h = dict(headers or {})
    if tok is not None:
        h["Authorization"] = "Bearer " + tok
    return _C.get(srv.url + path, headers=h)


def b64(obj):
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


# ---------------------------------------------------------------------------
# RFC 6750 answers
# ---------------------------------------------------------------------------

def test_no_token_is_401_with_the_realm(srv):
    r = get(srv, "/whoami")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == 'Bearer realm="API"'
    r = get(srv, "/whoami", headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert r.status_code == 401 and "error=" not in r.headers["www-authenticate"]


def test_pyjwt_token_accepted(srv):
    r = get(srv, "/whoami", token())
    assert r.status_code == 200, r.text
    me = r.json()
    assert me["user"] == "alice" and me["roles"] == ["user"] and me["token_kind"] == "jwt"


@pytest.mark.parametrize("kind", ["bad-signature", "expired", "not-yet", "alg-none",
                                  "hs512", "wrong-iss", "wrong-aud", "revoked", "garbage"])
def test_invalid_tokens_are_401_invalid_token(srv, kind):
    now = int(time.time())
    tok = {
        "bad-signature": lambda: token(key="not-the-secret-not-the-secret-00"),
        "expired": lambda: token(exp=now - 120),
        "not-yet": lambda: token(nbf=now + 120),
        "alg-none": lambda: b64({"alg": "none", "typ": "JWT"}) + "." + b64(
            {"sub": "root", "roles": ["admin"], "iss": "https://idp.test", "aud": "api"}) + ".",
        "hs512": lambda: token(key=SECRET * 2, alg="HS512"),
        "wrong-iss": lambda: token(iss="https://evil.test"),
        "wrong-aud": lambda: token(aud="other"),
        "revoked": lambda: token(revoked=True),
        "garbage": lambda: "eyJ.not.valid",
    }[kind]()
    r = get(srv, "/whoami", tok)
    assert r.status_code == 401, (kind, r.text)
    h = r.headers["www-authenticate"]
    assert h.startswith('Bearer realm="API", error="invalid_token"'), h
    assert r.json()["error"] == "invalid_token"


def test_expired_within_leeway_still_accepted(srv):
    r = get(srv, "/whoami", token(exp=int(time.time()) - 20))
    assert r.status_code == 200


def test_missing_role_is_403_insufficient_scope(srv):
    r = get(srv, "/admin", token())
    assert r.status_code == 403
    h = r.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in h and 'scope="admin"' in h
    assert get(srv, "/admin", token(roles=["user", "admin"])).text == "admin area"
    # the proxy's alias keyword role=
    assert get(srv, "/ops", token()).status_code == 403
    assert get(srv, "/ops", token(roles=["ops"])).status_code == 200
    # a role check never hides a missing token
    assert get(srv, "/admin").status_code == 401


def test_public_route_needs_no_token(srv):
    r = get(srv, "/public")
    assert r.status_code == 200 and r.text == "public None"


@pytest.mark.parametrize("client,status", [
    ("10.1.2.3", 200), ("2001:db8::42", 200), ("192.168.1.5", 403), ("2001:db9::1", 403),
])
def test_source_cidrs_ipv4_and_ipv6(srv, client, status):
    # loopback is in --forwarded-allow-ips by default: X-Forwarded-For names the client
    r = get(srv, "/lan", headers={"X-Forwarded-For": client})
    assert r.status_code == status, r.text
    if status == 403:
        assert 'error="insufficient_scope"' in r.headers["www-authenticate"]


def test_source_and_role_together(srv):
    xff = {"X-Forwarded-For": "192.168.1.77"}
    assert get(srv, "/lan-token", token(), headers=xff).status_code == 200
    assert get(srv, "/lan-token", headers=xff).status_code == 401
    assert get(srv, "/lan-token", token(roles=["guest"]), headers=xff).status_code == 403
    r = get(srv, "/lan-token", token(), headers={"X-Forwarded-For": "192.168.2.1"})
    assert r.status_code == 403


def test_wsgi_mount_policy(srv):
    assert get(srv, "/wsgi/x").status_code == 401
    assert get(srv, "/wsgi/x", token(roles=["guest"])).status_code == 403
    r = get(srv, "/wsgi/x", token())
    assert r.status_code == 200 and r.text == "wsgi /x"


# ---------------------------------------------------------------------------
# Skitai's Authorizer
# ---------------------------------------------------------------------------

def test_authorizer_handle_token_sync(srv):
    me = get(srv, "/whoami", "opaque-sync").json()
    assert me["user"] == "alice" and me["token_kind"] == "opaque"
    assert get(srv, "/admin", "opaque-admin").status_code == 200
    r = get(srv, "/whoami", "no-such-token")
    assert r.status_code == 401 and 'error="invalid_token"' in r.headers["www-authenticate"]


def test_authorizer_coroutine_awaiting_httpclient(srv):
    me = get(srv, "/whoami", "opaque-async").json()
    assert me["user"] == "bob" and me["roles"] == ["user", "async"]


def test_authorizer_callback_style(srv):
    me = get(srv, "/whoami", "opaque-later").json()
    assert me["user"] == "carol"


def test_authorizer_errors(srv):
    assert get(srv, "/whoami", "opaque-boom").status_code == 500
    t0 = time.monotonic()
    assert get(srv, "/whoami", "opaque-silent").status_code == 503
    assert time.monotonic() - t0 < 5
    assert wait_for(lambda: "did not call handler.continue_request" in srv.log())
    assert "the token database is down" in srv.log()


# ---------------------------------------------------------------------------
# transaction ids
# ---------------------------------------------------------------------------

def test_fresh_request_ids(srv):
    me = get(srv, "/whoami", token()).json()
    assert len(me["gtxid"]) == 32 and me["gtxid"][12] == "7" and me["ltxid"] == 1000


def test_nested_calls_carry_and_increment_ids(srv):
    r = get(srv, "/call", token())
    assert r.status_code == 200, r.text
    body = r.json()
    g = body["me"]["gtxid"]
    first, second, mine = body["calls"]
    assert first["x-gtxn-id"] == g and first["x-ltxn-id"] == "2001"
    assert second["x-gtxn-id"] == g and second["x-ltxn-id"] == "2002"
    assert first["traceparent"].split("-")[1] == g
    assert first["traceparent"].split("-")[2] != second["traceparent"].split("-")[2]
    assert mine["x-ltxn-id"] == "7"           # the caller's own header wins
    assert first["authorization"] is None     # the client's token is not passed on


def test_incoming_ids_from_a_trusted_peer(srv):
    # loopback is trusted (the default --forwarded-allow-ips)
    me = get(srv, "/whoami", token(), headers={"X-Gtxn-Id": "GTID-C3-R8",
                                              "X-Ltxn-Id": "2001"}).json()
    assert me["gtxid"] == "GTID-C3-R8" and me["ltxid"] == 2001
    tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = get(srv, "/call", token(), headers={"traceparent": tp, "X-Ltxn-Id": "2001"})
    body = r.json()
    assert body["me"]["gtxid"] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert body["calls"][0]["x-ltxn-id"] == "3002"
    assert body["calls"][0]["traceparent"].startswith("00-4bf92f3577b34da6a3ce929d0e0e4736-")


def test_access_log_has_ids_and_subject_never_the_token(srv):
    tok = token(sub="dave")
    r = get(srv, "/whoami", tok)
    gtxid = r.json()["gtxid"]
    get(srv, "/whoami", "opaque-sync")
    get(srv, "/whoami", token(key="wrong-wrong-wrong-wrong-wrong-00"))

    def line():
        if not srv.access.exists():
            return None
        for l in srv.access.read_text().splitlines():
            rec = json.loads(l)
            if rec.get("gtxid") == gtxid:
                return rec
        return None
    assert wait_for(lambda: line() is not None)
    rec = line()
    assert rec["user"] == "dave" and rec["ltxid"] == 1000
    assert rec["http.response.status_code"] == 200
    text = srv.access.read_text() + srv.log()
    assert tok not in text and "opaque-sync" not in text
    assert tok.split(".")[1] not in text       # nor Skitai's payload segment


def test_common_log_format_carries_ids(tmp_path):
    log = tmp_path / "access.log"
    s = _start(tmp_path, ["--access-log", str(log)], workers=1)
    try:
        tok = token(sub="erin")
        r = _C.get(s.url + "/whoami", headers={"Authorization": "Bearer " + tok})
        g = r.json()["gtxid"]
        assert wait_for(lambda: log.exists() and g in log.read_text())
        l = [x for x in log.read_text().splitlines() if g in x][0]
        assert l.endswith("gtxid=%s ltxid=1000 user=erin" % g)
        assert tok not in log.read_text()
    finally:
        s.cleanup()

"""The gateway's pure parts in-process: token verification with PyJWT-made
tokens, policies and CIDRs, transaction ids, the rate-limit leases."""

import base64
import ipaddress
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from kore.config import ConfigError
from kore_gateway import config, policy, txn
from kore_gateway.ratelimit import Limiter, MasterCounts, MSG_GRANT
from kore_gateway.store import MemoryCounterStore
from kore_gateway.tokens import InvalidToken, Verifier, bearer_token, claim_identity

SECRET = "unit-secret-unit-secret-unit-0001"


@pytest.fixture(autouse=True)
def fresh():
    config.reset()
    policy.reset()
    yield
    config.reset()
    policy.reset()


def verifier(**kw):
    config.enable_gateway(True, kw.pop("secure_key", SECRET), **kw)
    return Verifier(config.GATEWAY)


def b64(obj):
    raw = json.dumps(obj, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


# ---------------------------------------------------------------------------
# JWT verification
# ---------------------------------------------------------------------------

def test_pyjwt_hs256_token_accepted():
    v = verifier()
    tok = jwt.encode({"sub": "alice", "roles": ["user"], "exp": time.time() + 60}, SECRET)
    assert "=" not in tok                     # base64url without padding
    assert v.verify(tok)["sub"] == "alice"


@pytest.mark.parametrize("claim,offset,message", [
    ("exp", -120, "expired"),
    ("nbf", 120, "not valid yet"),
])
def test_time_claims_outside_leeway(claim, offset, message):
    v = verifier(leeway=60)
    with pytest.raises(InvalidToken, match=message):
        v.verify(jwt.encode({"sub": "a", claim: time.time() + offset}, SECRET))


def test_time_claims_inside_leeway_pass():
    v = verifier(leeway=60)
    assert v.verify(jwt.encode({"sub": "a", "exp": time.time() - 30}, SECRET))
    assert v.verify(jwt.encode({"sub": "a", "nbf": time.time() + 30}, SECRET))


def test_bad_signature():
    v = verifier()
    tok = jwt.encode({"sub": "a"}, "another-secret-another-secret-00")
    with pytest.raises(InvalidToken, match="signature"):
        v.verify(tok)


def test_alg_none_refused():
    v = verifier()
    tok = b64({"alg": "none", "typ": "JWT"}) + "." + b64({"sub": "root"}) + "."
    with pytest.raises(InvalidToken):
        v.verify(tok)


def test_algorithm_outside_allowlist_refused():
    v = verifier()     # HS256 only
    tok = jwt.encode({"sub": "a"}, SECRET, algorithm="HS512")
    with pytest.raises(InvalidToken, match="algorithm"):
        v.verify(tok)


def test_issuer_and_audience_when_configured():
    v = verifier(issuer="https://idp.test", audience="api")
    good = jwt.encode({"sub": "a", "iss": "https://idp.test", "aud": "api"}, SECRET)
    assert v.verify(good)["sub"] == "a"
    with pytest.raises(InvalidToken, match="issuer"):
        v.verify(jwt.encode({"sub": "a", "iss": "https://evil.test", "aud": "api"}, SECRET))
    with pytest.raises(InvalidToken, match="audience"):
        v.verify(jwt.encode({"sub": "a", "iss": "https://idp.test", "aud": "other"}, SECRET))


def test_audience_in_token_ignored_when_not_configured():
    v = verifier()
    assert v.verify(jwt.encode({"sub": "a", "aud": "whatever"}, SECRET))["sub"] == "a"


def test_required_claims():
    v = verifier(require=["exp"])
    with pytest.raises(InvalidToken, match="exp"):
        v.verify(jwt.encode({"sub": "a"}, SECRET))


def test_rs256_resigned_as_hs256_with_public_key(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    path = tmp_path / "pub.pem"
    path.write_bytes(pem)
    config.enable_gateway(True, key_file=str(path))
    assert config.GATEWAY.algorithms == ("RS256",)
    v = Verifier(config.GATEWAY)
    assert v.verify(jwt.encode({"sub": "a"}, key, algorithm="RS256"))["sub"] == "a"
    # the classic key confusion: HMAC with the public key's PEM as the secret
    import hashlib
    import hmac
    head = b64({"alg": "HS256", "typ": "JWT"}) + "." + b64({"sub": "root"})
    sig = hmac.new(pem, head.encode(), hashlib.sha256).digest()
    forged = head + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
    with pytest.raises(InvalidToken, match="algorithm"):
        v.verify(forged)


def test_es256_key_file(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "ec.pem"
    path.write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    config.enable_gateway(True, key_file=str(path))
    assert config.GATEWAY.algorithms == ("ES256",)
    v = Verifier(config.GATEWAY)
    assert v.verify(jwt.encode({"sub": "e"}, key, algorithm="ES256"))["sub"] == "e"


def test_cache_rechecks_expiry():
    clock = [time.time()]
    v = verifier(leeway=0)
    tok = jwt.encode({"sub": "a", "exp": int(clock[0]) + 2}, SECRET)
    assert v.verify(tok) and v.verify(tok)
    assert v.decodes == 1                       # the second one was a cache hit
    # expire the cached entry by moving its expiry into the past
    entry = list(v.cache[tok])
    entry[1] = time.time() - 1                  # (claims, exp, nbf, stored, user, roles)
    v.cache[tok] = tuple(entry)
    with pytest.raises(InvalidToken, match="expired"):
        v.verify(tok)
    assert tok not in v.cache


def test_cache_bounded():
    v = verifier(token_cache=8)
    for i in range(20):
        v.verify(jwt.encode({"sub": "u%d" % i}, SECRET))
    assert len(v.cache) <= 8


def test_bearer_token_parsing():
    class R:
        def __init__(self, v):
            self.v = v

        def request_header(self, name):
            return self.v
    assert bearer_token(R("Bearer abc.def.ghi")) == "abc.def.ghi"
    assert bearer_token(R("bearer   tok")) == "tok"
    assert bearer_token(R("Basic dXNlcjpwYXNz")) is None
    assert bearer_token(R("Bearer ")) is None
    assert bearer_token(R(None)) is None


def test_claim_identity():
    assert claim_identity({"sub": "a", "roles": ["x", "y"]}) == ("a", ("x", "y"))
    assert claim_identity({"user": "skitai", "roles": "admin user"}) == (
        "skitai", ("admin", "user"))
    assert claim_identity({"sub": "a", "scope": "read write"}) == ("a", ("read", "write"))
    assert claim_identity({}) == (None, ())


# ---------------------------------------------------------------------------
# configuration errors
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("args,kw,message", [
    ((("yes",)), {}, "enable_auth must be True or False"),
    ((True, "short"), {}, "at least 16 bytes"),
    ((True, SECRET), {"algorithms": ["HS256", "RS256"]}, "never mix"),
    ((True, SECRET), {"algorithms": ["none"]}, "unknown algorithm 'none'"),
    ((True,), {"algorithms": ["HS256"], "jwks_url": "http://127.0.0.1:1/j"}, "need secure_key"),
    ((True, SECRET), {"jwks_url": "http://127.0.0.1:1/j"}, "give one of"),
    ((True,), {"jwks_url": "ftp://x"}, "http:// or https://"),
    ((True,), {"key_file": "/nonexistent/key.pem"}, "cannot be read"),
    ((True, SECRET), {"realm": 'a"b'}, "realm"),
    ((True, SECRET), {"rate_limit": "ten per minute"}, "rate_limit"),
    ((True, SECRET), {"source": "10.0.0.0/33"}, "not an IPv4/IPv6"),
    ((True, SECRET), {"roles": ["a"], "role": "b"}, "not both"),
    ((True, SECRET), {"rate_limit_by": "ip"}, "rate_limit_by"),
])
def test_enable_gateway_errors(args, kw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        config.enable_gateway(*args, **kw)


def test_private_key_file_refused(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    p = tmp_path / "priv.pem"
    p.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption()))
    with pytest.raises(ConfigError, match="private key"):
        config.enable_gateway(True, key_file=str(p))


def test_auth_needs_a_way_to_check_tokens():
    config.enable_gateway(True)
    with pytest.raises(ConfigError, match="nothing can check them"):
        config.check_loaded()


def test_disabled_auth_is_really_off():
    config.enable_gateway(False)
    config.check_loaded()
    assert config.GATEWAY.app_policy.auth is False
    assert not config.GATEWAY.app_policy.active


def test_policy_without_gateway_is_an_error():
    policy.gateway_policy("/x", roles=["a"])
    with pytest.raises(ConfigError, match=r"need kore.enable_gateway"):
        config.check_loaded()


def test_authorizer_needs_a_method():
    with pytest.raises(ConfigError, match="handle_token"):
        config.set_authorizer(object())


# ---------------------------------------------------------------------------
# policies and CIDRs
# ---------------------------------------------------------------------------

def test_sources_ipv4_ipv6_and_skitai_short_form():
    nets = policy.parse_sources("172.30.1.0/24,192.168.1/24, 2001:db8::/32 ::1", "t")
    assert nets[1] == ipaddress.ip_network("192.168.1.0/24")
    allowed = policy.address_allowed
    assert allowed("172.30.1.9", nets) and allowed("192.168.1.200", nets)
    assert allowed("2001:db8::5", nets) and allowed("::1", nets)
    assert allowed("::ffff:192.168.1.7", nets)       # IPv4-mapped
    assert not allowed("10.0.0.1", nets)
    assert not allowed("2001:db9::1", nets)
    assert not allowed("", nets) and not allowed("junk", nets)


def test_rates():
    assert policy.parse_rate("100/minute", "t") == policy.Rate(100, 60)
    assert policy.parse_rate("5/30s", "t") == policy.Rate(5, 30)
    assert policy.parse_rate((7, 2), "t") == policy.Rate(7, 2)
    assert policy.parse_rate(None, "t") is None
    with pytest.raises(ConfigError):
        policy.parse_rate("0/minute", "t")


class FakeRoute:
    def __init__(self, path, callback):
        self.path = path
        self.callback = callback
        self.rx = None


class FakeMount:
    def __init__(self, prefix, **attrs):
        self.prefix = prefix
        self.__dict__.update(attrs)


class FakeDomain:
    def __init__(self, host, routes=(), mounts=()):
        self.host = host
        self.routes = list(routes)
        self.mounts = list(mounts)


def test_policy_precedence_route_over_domain_over_app():
    def handler(req):
        pass
    config.enable_gateway(True, SECRET, roles=["user"], rate_limit="10/minute")
    app = config.GATEWAY.app_policy
    policy.gateway_policy(None, domain="api.test", source="10.0.0.0/8")
    policy.gateway_policy(handler, roles="admin")
    r = FakeRoute("/x", handler)
    d = FakeDomain("api.test", [r])
    p = policy.REGISTRY.policy_for(r, d, app)
    assert p.auth is True and p.roles == ("admin",)
    assert p.source == (ipaddress.ip_network("10.0.0.0/8"),)
    assert p.rate == policy.Rate(10, 60)
    other = FakeRoute("/y", lambda req: None)
    p2 = policy.REGISTRY.policy_for(other, FakeDomain("www.test", [other]), app)
    assert p2.roles == ("user",) and p2.source is None


def test_public_route_and_mount_prefix():
    config.enable_gateway(True, SECRET)
    policy.gateway_policy("/health", auth=False)
    policy.gateway_policy("/legacy/", roles=["ops"])
    app = config.GATEWAY.app_policy
    r = FakeRoute("/health", lambda req: None)
    m = FakeMount("/legacy")
    d = FakeDomain("*", [r], [m])
    assert policy.REGISTRY.policy_for(r, d, app).auth is False
    pm = policy.REGISTRY.policy_for(m, d, app)
    assert pm.auth and pm.roles == ("ops",)
    policy.REGISTRY.check_targets([d])


def test_mount_attributes_like_skitai_alias():
    config.enable_gateway(True, SECRET)
    m = FakeMount("/members", role="admin", source="172.30.1.0/24")
    pol = policy.REGISTRY.policy_for(m, FakeDomain("*", [], [m]), config.GATEWAY.app_policy)
    assert pol.roles == ("admin",) and pol.source[0].prefixlen == 24


def test_policy_for_missing_target_stops_startup():
    config.enable_gateway(True, SECRET)
    policy.gateway_policy("/nope", roles=["x"])
    d = FakeDomain("*", [FakeRoute("/yes", lambda r: None)])
    with pytest.raises(ConfigError, match="no route or mount matches '/nope'"):
        policy.REGISTRY.check_targets([d])
    policy.reset()
    policy.gateway_policy(None, domain="missing.test", auth=False)
    with pytest.raises(ConfigError, match="domain 'missing.test' does not exist"):
        policy.REGISTRY.check_targets([d])


# ---------------------------------------------------------------------------
# transaction ids
# ---------------------------------------------------------------------------

def test_trace_ids_are_uuid7_and_unique():
    ids = {txn.new_trace_id() for _ in range(5000)}
    assert len(ids) == 5000
    one = next(iter(ids))
    assert len(one) == 32 and one[12] == "7" and one[16] in "89ab"
    assert txn.parse_traceparent("00-%s-%s-01" % (one, txn.new_span_id()))[0] == one


def test_traceparent_parsing():
    good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert txn.parse_traceparent(good) == ("4bf92f3577b34da6a3ce929d0e0e4736",
                                           "00f067aa0ba902b7", "01")
    for bad in ("", "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
                "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
                "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
                good + "-extra"):
        assert txn.parse_traceparent(bad) is None, bad


def test_local_ids_are_depth_coded_like_skitai():
    t = txn.Txn("g" * 4, 1000, "a" * 32, None, "01")
    assert [t.outgoing()["X-Ltxn-Id"] for _ in range(2)] == ["2001", "2002"]
    assert txn.Txn("g", 2001, "a" * 32, None, "01").outgoing()["X-Ltxn-Id"] == "3002"
    assert txn.Txn("g", 2002, "a" * 32, None, "01").outgoing()["X-Ltxn-Id"] == "3003"
    h = t.outgoing()
    assert h["X-Gtxn-Id"] == "gggg"
    assert txn.parse_traceparent(h["traceparent"])[0] == "a" * 32


def test_skitai_gtxid_maps_to_a_trace_id():
    tid = txn.trace_id_for("GTID-C3-R8")
    assert len(tid) == 32 and tid == txn.trace_id_for("GTID-C3-R8")
    hexid = txn.new_trace_id()
    assert txn.trace_id_for(hexid) == hexid


# ---------------------------------------------------------------------------
# rate limits
# ---------------------------------------------------------------------------

def test_memory_store_never_grants_past_the_limit():
    s = MemoryCounterStore()
    got = [s.take("k", 3, 10, 60, 5) for _ in range(5)]
    assert [g for g, _ in got] == [3, 3, 3, 1, 0]
    assert got[-1][1] == 0
    assert s.take("k", 3, 10, 60, 6) == (3, 7)      # next window starts over
    assert s.take("k", 3, 10, 60, 5) == (0, 0)      # a late lease for an old window


def test_limiter_without_master_counts_locally():
    now = [1000.0]
    lim = Limiter(clock=lambda: now[0])
    rate = policy.Rate(3, 60)
    got = [lim.check("k", rate) for _ in range(5)]
    assert [d.allowed for d in got] == [True, True, True, False, False]
    assert [d.remaining for d in got[:3]] == [2, 1, 0]
    assert got[-1].reset == 20                        # 1000 -> window ends at 1020
    now[0] = 1021.0
    assert lim.check("k", rate).allowed


class FakeArbiter:
    def __init__(self, workers):
        self.num_workers = workers
        self.sent = []

    def route(self, msg):
        self.sent.append(msg)


class Msg:
    def __init__(self, payload, src, kind="gateway.take"):
        self.payload = payload
        self.src = src
        self.kind = kind


def test_master_leases_shrink_with_what_is_left():
    mc = MasterCounts()
    arb = FakeArbiter(workers=2)
    grants = []
    for i in range(40):
        mc.take(arb, Msg(json.dumps({"id": i, "key": "k", "limit": 100, "window": 60,
                                     "index": 1}).encode(), src=1 + i % 2))
        reply = json.loads(arb.sent[-1].payload)
        assert arb.sent[-1].kind == MSG_GRANT and arb.sent[-1].dst == 1 + i % 2
        grants.append(reply["granted"])
    assert sum(grants) == 100                       # never more than the limit
    assert grants[0] == 25 and grants[-1] == 0      # a quarter of what is left, then 1s
    assert 1 in grants


def test_concurrent_requests_share_leases_and_never_exceed(monkeypatch):
    """50 greenlets of one worker race for a limit of 20 through a fake
    master that grants one request at a time, slowly."""
    import gevent
    from kore import runtime

    store = MemoryCounterStore()
    lim = Limiter()
    sent = []

    class W:
        def send(self, msg):
            req = json.loads(msg.payload)
            sent.append(req)

            def answer():
                granted, left = store.take(req["key"], 1, req["limit"], req["window"],
                                           req["index"])
                lim.granted(json.dumps({"id": req["id"], "granted": granted,
                                        "left": left}).encode())
            gevent.spawn_later(0.001, answer)

    monkeypatch.setattr(runtime, "worker", lambda: W())
    rate = policy.Rate(20, 3600)
    results = []
    jobs = [gevent.spawn(lambda: results.append(lim.check("k", rate).allowed))
            for _ in range(50)]
    gevent.joinall(jobs, timeout=20)
    assert len(results) == 50
    assert results.count(True) == 20
    # one take per granted request; the last grant said nothing is left, so
    # the 30 others were refused without asking again
    assert len(sent) == 20


def test_memory_store_takes_back_an_unused_lease():
    s = MemoryCounterStore()
    assert s.take("k", 10, 10, 60, 5) == (10, 0)
    s.give_back("k", 4, 5)
    assert s.take("k", 10, 10, 60, 5) == (4, 0)
    s.give_back("k", 3, 4)                          # a window already over: ignored
    assert s.take("k", 10, 10, 60, 5) == (0, 0)
    s.give_back("k", 50, 5)                         # never below zero used
    assert s.take("k", 20, 10, 60, 5) == (10, 0)


def test_master_gives_a_returned_lease_to_the_next_asker():
    from kore_gateway.ratelimit import MSG_RETURN
    mc = MasterCounts()
    arb = FakeArbiter(workers=2)

    def take(i, src):
        mc.take(arb, Msg(json.dumps({"id": i, "key": "k", "limit": 8, "window": 60,
                                     "index": 1}).encode(), src=src))
        return json.loads(arb.sent[-1].payload)
    got = [take(i, 1 + i % 2)["granted"] for i in range(12)]
    assert sum(got) == 8
    # worker 2 gives 3 unused back: worker 1 gets them, and no more
    mc.give_back(Msg(json.dumps({"key": "k", "index": 1, "n": 3}).encode(), src=2,
                     kind=MSG_RETURN))
    got = [take(20 + i, 1)["granted"] for i in range(5)]
    assert sum(got) == 3 and got[-1] == 0
    # a return for a window that is over changes nothing
    mc.give_back(Msg(json.dumps({"key": "k", "index": 0, "n": 3}).encode(), src=2,
                     kind=MSG_RETURN))
    assert take(30, 1)["granted"] == 0


def test_idle_lease_goes_back_and_a_refused_worker_asks_again(monkeypatch):
    """Worker A holds a lease it stops drawing on; worker B, refused, asks
    again after RECHECK and gets what A gave back after IDLE."""
    import gevent
    from kore import runtime
    from kore_gateway import ratelimit
    from kore_gateway.ratelimit import MSG_RETURN
    monkeypatch.setattr(ratelimit, "IDLE", 0.2)
    monkeypatch.setattr(ratelimit, "RECHECK", 0.05)
    mc = MasterCounts()
    arb = FakeArbiter(workers=2)
    limiters = {1: Limiter(), 2: Limiter()}
    returns = []

    class W:
        def __init__(self, src):
            self.src = src

        def send(self, msg):
            m = Msg(msg.payload, src=self.src, kind=msg.kind)
            if msg.kind == MSG_RETURN:
                returns.append((self.src, json.loads(msg.payload)["n"]))
                mc.give_back(m)
                return
            mc.take(arb, m)
            reply = arb.sent[-1]
            gevent.spawn(limiters[reply.dst].granted, reply.payload)

    current = {"w": None}
    monkeypatch.setattr(runtime, "worker", lambda: current["w"])
    rate = policy.Rate(20, 3600)

    def check(src):
        current["w"] = W(src)
        return limiters[src].check("k", rate).allowed
    assert check(1)                                 # A leases 20 // 4 = 5, spends 1
    admitted = 1 + sum(check(2) for _ in range(30))  # B takes every other request
    assert admitted == 16                           # A still holds 4
    assert not check(2)
    deadline = time.monotonic() + 10
    while not returns and time.monotonic() < deadline:
        gevent.sleep(0.05)                          # A's lease goes idle
    assert returns == [(1, 4)]
    gevent.sleep(0.1)                               # past RECHECK: B asks again
    assert sum(check(2) for _ in range(10)) == 4    # the whole limit, no more
    assert not check(1) and not check(2)


def test_admission_hook_only_while_the_gateway_is_enabled(monkeypatch):
    """An installed but unused gateway adds nothing to the request path."""
    import pluggy
    from kore import runtime
    from kore_gateway import plugin
    from kore_http import hookspecs
    pm = pluggy.PluginManager("kore")
    pm.add_hookspecs(hookspecs)
    monkeypatch.setattr(runtime, "plugin_manager", lambda: pm)

    class Routes:
        def domains(self):
            return []
    plugin.kore_http_routes(routes=Routes())
    assert pm.get_plugin(plugin.Admission.NAME) is None
    config.enable_gateway(False)
    plugin.kore_http_routes(routes=Routes())
    assert len(pm.hook.kore_http_admit.get_hookimpls()) == 1
    plugin.kore_app_reset()                       # a reload without the gateway
    assert pm.get_plugin(plugin.Admission.NAME) is None


class FakeTokenReq:
    _fields = None          # not HTTP/1.1: no raw field block

    def __init__(self, token):
        self.headers = {"authorization": "Bearer " + token}

    def request_header(self, name):
        return self.headers.get(name)


def test_a_known_token_takes_the_short_path_with_the_same_outcome():
    from kore_gateway import gate
    v = verifier(leeway=0)
    g = config.GATEWAY
    tok = jwt.encode({"sub": "a", "roles": ["user"], "exp": int(time.time()) + 60}, SECRET)
    pol = policy.Policy(auth=True).plan()
    assert pol.mode == 1
    first = FakeTokenReq(tok)
    assert not gate.admit_known(first, g, pol, v)        # never seen: the full path
    assert gate.authenticate(first, g, v)
    again = FakeTokenReq(tok)
    assert gate.admit_known(again, g, pol, v)
    st = again.__dict__["_gw"]
    assert (st.username, st.roles, st.token, st.claim["sub"]) == ("a", ("user",), tok, "a")
    assert v.decodes == 1
    # a role the token lacks goes down the full path (which answers 403)
    assert not gate.admit_known(FakeTokenReq(tok), g,
                                policy.Policy(auth=True, roles=("admin",)).plan(), v)
    assert gate.admit_known(FakeTokenReq(tok), g,
                            policy.Policy(auth=True, roles=("user", "x")).plan(), v)
    # no bearer token, another scheme: the full path
    other = FakeTokenReq(tok)
    other.headers["authorization"] = "Basic " + tok
    assert not gate.admit_known(other, g, pol, v)
    # expiry is checked against the clock on the short path too
    st, since, until = v.states[tok]
    v.states[tok] = (st, since, time.time() - 1)
    assert not gate.admit_known(FakeTokenReq(tok), g, pol, v)
    assert tok not in v.states
    # a source list or a rate limit always takes the full path
    assert policy.Policy(auth=True, source=policy.parse_sources("127.0.0.1", "t")).plan().mode == 2
    assert policy.Policy(auth=False).plan().mode == 0


class FakeH1Req:
    """A request with HTTP/1.1's raw field block; request_header() counts
    its calls (the block's look-up should make them unnecessary)."""

    def __init__(self, token, extra=b""):
        self._fields = (b"Host: x\r\nAuthorization: Bearer %s\r\n%s"
                        % (token.encode(), extra))
        self.calls = 0

    def request_header(self, name):
        self.calls += 1
        from kore_http.parser import raw_field
        return raw_field(self._fields, name)


def test_a_repeated_request_head_is_matched_to_its_token_by_its_bytes():
    from kore_gateway import gate
    v = verifier(leeway=0)
    g = config.GATEWAY
    now = int(time.time())
    tok = jwt.encode({"sub": "a", "roles": ["user"], "exp": now + 60}, SECRET)
    other = jwt.encode({"sub": "b", "roles": [], "exp": now + 60}, SECRET)
    pol = policy.Policy(auth=True).plan()
    first = FakeH1Req(tok)
    assert not gate.admit_known(first, g, pol, v)
    assert gate.authenticate(first, g, v)
    second = FakeH1Req(tok)
    assert gate.admit_known(second, g, pol, v) and second.calls == 1   # found by header
    assert v.heads == {second._fields: tok}
    third = FakeH1Req(tok)
    assert gate.admit_known(third, g, pol, v) and third.calls == 0     # by its bytes
    assert third.__dict__["_gw"].username == "a"
    # another head (another token) is not taken for it
    b = FakeH1Req(other)
    assert not gate.admit_known(b, g, pol, v)
    assert gate.authenticate(b, g, v) and b.__dict__["_gw"].username == "b"
    c = FakeH1Req(other)
    assert gate.admit_known(c, g, pol, v) and c.__dict__["_gw"].username == "b"
    # roles are still checked per policy, and expiry against the clock
    assert not gate.admit_known(FakeH1Req(tok), g,
                                policy.Policy(auth=True, roles=("admin",)).plan(), v)
    st, since, until = v.states[tok]
    v.states[tok] = (st, since, time.time() - 1)
    late = FakeH1Req(tok)
    assert not gate.admit_known(late, g, pol, v) and late.calls == 0
    assert tok not in v.states
    # a huge head is not kept
    big = FakeH1Req(other, b"X-Pad: " + b"p" * 4096 + b"\r\n")
    assert gate.admit_known(big, g, pol, v) and big._fields not in v.heads
    # the map is bounded by the cache size
    v2 = verifier(leeway=0, token_cache=4)
    g = config.GATEWAY
    for i in range(10):
        t = jwt.encode({"sub": "u%d" % i, "exp": now + 60}, SECRET)
        r = FakeH1Req(t)
        assert gate.authenticate(r, g, v2)
        assert gate.admit_known(FakeH1Req(t), g, pol, v2)
        assert len(v2.heads) <= 4


def test_the_short_path_is_off_with_an_authorizer_or_without_a_cache():
    from kore_gateway import gate

    class Authz:
        def handle_claim(self, handler, request):
            handler.continue_request(request, "from-authorizer", ["r"])

    tok = jwt.encode({"sub": "a", "exp": int(time.time()) + 60}, SECRET)
    pol = policy.Policy(auth=True).plan()
    v = verifier()
    config.set_authorizer(Authz())
    g = config.GATEWAY
    req = FakeTokenReq(tok)
    assert gate.authenticate(req, g, v) and req.__dict__["_gw"].username == "from-authorizer"
    assert not v.states and not gate.admit_known(FakeTokenReq(tok), g, pol, v)
    config.reset()
    v = verifier(token_cache=0)
    g = config.GATEWAY
    assert gate.authenticate(FakeTokenReq(tok), g, v)
    assert not v.states and not gate.admit_known(FakeTokenReq(tok), g, pol, v)

"""Pure parts of the proxy: members, balancing, passive and active health,
header rewriting, mount targets."""

import pytest

from kore.config import ConfigError
from kore_proxy.balancer import Balancer
from kore_proxy.headers import request_headers, response_headers
from kore_proxy.members import parse_member, parse_target


def members(*specs):
    return [parse_member(s, False, "test") for s in specs]


def test_parse_member_forms():
    m = parse_member("10.0.0.1:9001 3", False, "t")
    assert (m.host, m.port, m.weight, m.basepath) == ("10.0.0.1", 9001, 3, "")
    m = parse_member("user:pw@api.example:8080/v2/ 1", False, "t")
    assert (m.host, m.port, m.basepath) == ("api.example", 8080, "/v2")
    assert m.authorization == "Basic dXNlcjpwdw=="
    assert parse_member("example.org", True, "t").port == 443
    assert parse_member("example.org", False, "t").port == 80
    m = parse_member("[::1]:81", False, "t")
    assert (m.host, m.port, m.address) == ("::1", 81, "[::1]:81")


@pytest.mark.parametrize("bad", ["", "h:0", "h:x", "h:1 w", "h:1 0", "a b c", "[::1"])
def test_parse_member_errors(bad):
    with pytest.raises(ConfigError):
        parse_member(bad, False, "kore.alias('@x')")


def test_parse_target():
    assert parse_target("@api") == ("api", "")
    assert parse_target("@api/v1/") == ("api", "/v1")
    assert parse_target("/static") is None
    assert parse_target(print) is None


def test_smooth_weighted_round_robin_shares_and_spread():
    b = Balancer("t", members("a:1 5", "b:1 1", "c:1 1"))
    seq = [b.pick(0.0).name for _ in range(7)]
    # nginx's smooth order: never 5 a's in a row
    assert seq == ["a:1", "a:1", "b:1", "a:1", "c:1", "a:1", "a:1"]
    counts = {}
    for _ in range(700):
        n = b.pick(0.0).name
        counts[n] = counts.get(n, 0) + 1
    assert counts == {"a:1": 500, "b:1": 100, "c:1": 100}


def test_least_conn_prefers_idle_nodes_by_weight():
    b = Balancer("t", members("a:1 2", "b:1 1"), policy="least_conn")
    a, bb = b.nodes
    a.conns, bb.conns = 2, 0
    assert b.pick(0.0) is bb
    a.conns, bb.conns = 1, 1       # 1/2 < 1/1
    assert b.pick(0.0) is a


def test_passive_health_takes_a_node_out_for_fail_timeout():
    b = Balancer("t", members("a:1", "b:1"), max_fails=2, fail_timeout=10)
    a, bb = b.nodes
    b.failed(a, 100.0, "refused")
    assert a.available(100.0)
    b.failed(a, 101.0, "refused")
    assert not a.available(105.0)
    assert all(b.pick(105.0) is bb for _ in range(5))
    assert a.available(111.5)          # tried again after fail_timeout
    b.succeeded(a)
    assert a.fails == 0 and a.down_until == 0.0


def test_all_down_and_exclusions():
    b = Balancer("t", members("a:1", "b:1"), max_fails=1, fail_timeout=10)
    a, bb = b.nodes
    assert b.pick(0.0, exclude=[a]) is bb
    assert b.pick(0.0, exclude=[a, bb]) is None
    b.failed(a, 0.0, "x")
    b.failed(bb, 0.0, "x")
    assert b.pick(1.0) is None


def test_single_node_is_never_taken_out_passively():
    b = Balancer("t", members("a:1"), max_fails=1)
    b.failed(b.nodes[0], 0.0, "x")
    assert b.pick(0.5) is b.nodes[0]


def test_active_checks_rise_and_fall():
    b = Balancer("t", members("a:1", "b:1"))
    a = b.nodes[0]
    assert not b.check_result(a, False, 2, 3)
    assert not b.check_result(a, False, 2, 3)
    assert b.check_result(a, False, 2, 3) and a.checked_down
    assert not b.check_result(a, True, 2, 3)
    assert b.check_result(a, True, 2, 3) and not a.checked_down


def test_request_headers_untrusted_peer():
    hs = [("host", "site"), ("connection", "keep-alive, x-hop"), ("x-hop", "1"),
          ("te", "trailers"), ("keep-alive", "5"), ("upgrade", "h2c"),
          ("proxy-authorization", "secret"), ("content-length", "3"),
          ("transfer-encoding", "chunked"), ("x-forwarded-for", "6.6.6.6"),
          ("forwarded", "for=6.6.6.6"), ("accept", "*/*")]
    out = request_headers(hs, "10.1.1.1", False, "https", "site")
    assert out == [("host", "site"), ("accept", "*/*"), ("x-forwarded-for", "10.1.1.1"),
                   ("x-forwarded-proto", "https"), ("x-forwarded-host", "site")]


def test_request_headers_trusted_peer_appends_and_host_rewrite():
    hs = [("host", "site"), ("x-forwarded-for", "1.1.1.1, 2.2.2.2"),
          ("x-forwarded-proto", "https"), ("x-forwarded-host", "public.example")]
    out = dict(request_headers(hs, "127.0.0.1", True, "http", "site", "up:81"))
    assert out["x-forwarded-for"] == "1.1.1.1, 2.2.2.2, 127.0.0.1"
    assert out["x-forwarded-proto"] == "https"
    assert out["x-forwarded-host"] == "public.example"
    assert out["host"] == "up:81"


def test_response_headers():
    raw = [("Connection", "close, X-Drop"), ("X-Drop", "1"), ("Keep-Alive", "t=5"),
           ("Transfer-Encoding", "chunked"), ("Content-Length", "9"), ("Vary", "Accept"),
           ("Age", "3"), ("Date", "x"), ("Server", "up"), ("Set-Cookie", "a=1"),
           ("Set-Cookie", "b=2")]
    hs, length = response_headers(raw)
    assert hs == [("Vary", "Accept"), ("Age", "3"), ("Date", "x"), ("Set-Cookie", "a=1"),
                  ("Set-Cookie", "b=2")]
    assert length is None          # chunked wins over a Content-Length
    hs, length = response_headers([("Content-Length", "12")])
    assert (hs, length) == ([], "12")

"""RFC 9111 shared-cache rules and the two-tier LRU cache, in process."""

from kore_proxy import cachepolicy as P
from kore_proxy.cache import Cache


def test_lifetime_precedence_and_refusals():
    assert P.lifetime(200, [("Cache-Control", "max-age=60, s-maxage=5")]) == 5
    assert P.lifetime(200, [("Cache-Control", "max-age=60")]) == 60
    hs = [("Date", "Tue, 01 Dec 2026 10:00:00 GMT"), ("Expires", "Tue, 01 Dec 2026 10:01:40 GMT")]
    assert P.lifetime(200, hs) == 100
    assert P.lifetime(200, hs + [("Cache-Control", "max-age=7")]) == 7
    assert P.lifetime(200, [("Expires", "garbage")]) is None
    for bad in ("private, max-age=60", "no-store", "no-cache, max-age=9"):
        assert P.lifetime(200, [("Cache-Control", bad)]) is None, bad
    assert P.lifetime(200, [("Cache-Control", "max-age=60"), ("Set-Cookie", "a=1")]) is None
    assert P.lifetime(200, [("Cache-Control", "max-age=60"), ("Vary", "*")]) is None
    assert P.lifetime(500, [("Cache-Control", "max-age=60")]) is None
    assert P.lifetime(200, []) is None               # no heuristic freshness


def test_request_rules():
    assert P.request_cacheable("GET", [("accept", "*/*")])
    assert not P.request_cacheable("POST", [])
    assert not P.request_cacheable("GET", [("authorization", "Basic x")])
    assert not P.request_cacheable("GET", [("cache-control", "no-store")])
    assert P.request_wants_fresh([("cache-control", "no-cache")])
    assert P.request_wants_fresh([("cache-control", "max-age=0")])
    assert P.request_wants_fresh([("pragma", "no-cache")])
    assert not P.request_wants_fresh([("cache-control", "max-age=5")])


def test_hit_age_expiry_and_vary():
    c = Cache(10000)
    k = c.key("http", "Site", "/a?b=1")
    assert k == "http://site/a?b=1"
    hs = [("Cache-Control", "max-age=10"), ("Age", "3"), ("Vary", "Accept-Encoding")]
    assert c.store(k, [("accept-encoding", "gzip")], 200, hs, b"zipped", now=100.0)
    e, how = c.lookup(k, [("accept-encoding", "gzip")], now=104.0)
    assert how == "MEM_HIT" and e.body == b"zipped" and int(e.current_age(104.0)) == 7
    assert c.lookup(k, [("accept-encoding", "br")], now=104.0) == (None, None)
    assert c.lookup(k, [("accept-encoding", "gzip")], now=108.0) == (None, None)   # stale
    assert c.lookup(c.key("https", "site", "/a?b=1"), [], now=100.0) == (None, None)


def test_memory_lru_limit_and_disk_tier(tmp_path):
    c = Cache(3300, 5500, str(tmp_path), max_object=2500)   # ~1100 bytes an entry
    hs = [("Cache-Control", "max-age=100")]
    for i in range(4):
        assert c.store("k%d" % i, [], 200, hs, bytes([65 + i]) * 1000, now=0.0)
    assert c.mem_size <= 3300 and c.disk_size <= 5500
    assert list(k for k, _ in c.mem) == ["k1", "k2", "k3"]
    e, how = c.lookup("k0", [], now=1.0)            # from disk, back into memory
    assert how == "HIT" and e.body == b"A" * 1000
    assert ("k0", ()) in c.mem and ("k1", ()) in c.disk
    for i in range(4, 12):
        c.store("k%d" % i, [], 200, hs, b"x" * 1000, now=0.0)
    assert c.mem_size <= 3300 and c.disk_size <= 5500
    assert c.lookup("k0", [], now=1.0) == (None, None)      # evicted from both
    assert not c.store("huge", [], 200, hs, b"x" * 2600, now=0.0)   # > max_object
    c.close()
    assert not any(tmp_path.iterdir())

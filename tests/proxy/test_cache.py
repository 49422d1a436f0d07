"""The response cache (kore.enable_cachefs), kore.set_max_age on filemaps
and kore.enable_forward, through real processes."""

import email.utils
import time

import pytest

from kore_testing import KoreServer, started_on, with_free_ports
from px_util import get, start_upstream

APP = '''
import os
import kore

PORT, FWD, FWD2, UP, STATIC, CACHEDIR = os.environ["SPEC"].split(",")
kore.server("default", ip="127.0.0.1", port=PORT, tls=False)
d = kore.domain("*", attach="default")
d.filemaps({"/static": STATIC, "/files": STATIC})
kore.set_max_age("/static", 300)
kore.set_max_age("/static/long", 86400)
kore.alias("@c", kore.PROTO_HTTP, [UP])
kore.mount("/c", "@c")
kore.enable_cachefs(200000, 1000000, CACHEDIR)
kore.enable_forward(int(FWD), 8443, ip="127.0.0.1")
kore.enable_forward(int(FWD2), 443, status=308, ip="127.0.0.1")
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    up = start_upstream(tmp_path_factory, "a")
    tmp = tmp_path_factory.mktemp("cacheproxy")
    static = tmp / "static"
    (static / "long").mkdir(parents=True)
    (static / "a.txt").write_text("static a")
    (static / "long" / "b.txt").write_text("static b")

    def start(port, fwd, fwd2):
        spec = ",".join([str(port), str(fwd), str(fwd2), "127.0.0.1:%d" % up.port,
                         str(static), str(tmp / "cache")])
        p = KoreServer(tmp, APP, workers=1, bind=False, env={"SPEC": spec})
        p.ports = (port, fwd, fwd2)
        return started_on(p, p.ports)
    p = with_free_ports(3, start)
    port, fwd, fwd2 = p.ports
    yield {"port": port, "fwd": fwd, "fwd2": fwd2, "proxy": p, "up": up}
    p.cleanup()
    up.cleanup()


def fetch(env, path, headers=None):
    status, hs, body = get(env["port"], path, headers=headers)
    return status, dict((k.lower(), v) for k, v in hs), body


def count(body):
    return int(body.split()[1])


def test_second_get_is_a_hit_with_age(env):
    s1, h1, b1 = fetch(env, "/c/cache?cc=max-age%3D60&t=1")
    s2, h2, b2 = fetch(env, "/c/cache?cc=max-age%3D60&t=1")
    assert s1 == s2 == 200
    assert h1["x-cache-lookup"] == "MISS" and h2["x-cache-lookup"] == "MEM_HIT"
    assert b1 == b2 and "age" in h2 and 0 <= int(h2["age"]) <= 60
    assert h2["cache-control"] == "max-age=60"
    # the key holds the query: another URI is another entry
    assert fetch(env, "/c/cache?cc=max-age%3D60&t=2")[1]["x-cache-lookup"] == "MISS"
    # a client asking for a fresh answer gets one (and it is stored again)
    s3, h3, b3 = fetch(env, "/c/cache?cc=max-age%3D60&t=1", {"Cache-Control": "no-cache"})
    assert h3["x-cache-lookup"] == "MISS" and count(b3) > count(b1)


@pytest.mark.parametrize("query,headers", [
    ("cc=private%2C%20max-age%3D60", {}),
    ("cc=no-store", {}),
    ("cc=max-age%3D60&cookie=1", {}),
    ("cc=max-age%3D60", {"Authorization": "Basic dTpw"}),
    ("", {}),
])
def test_never_stored(env, query, headers):
    path = "/c/cache?n=%s&%s" % (abs(hash((query, tuple(headers)))), query)
    _, h1, b1 = fetch(env, path, headers)
    _, h2, b2 = fetch(env, path, headers)
    assert count(b2) == count(b1) + 1, (b1, b2)
    assert "HIT" not in h2.get("x-cache-lookup", "")


def test_vary_keeps_variants_apart(env):
    path = "/c/cache?cc=max-age%3D60&vary=accept-encoding&v=1"
    _, _, gz = fetch(env, path, {"Accept-Encoding": "gzip"})
    _, _, br = fetch(env, path, {"Accept-Encoding": "br"})
    assert gz.endswith(b"gzip") and br.endswith(b"br")
    _, h, gz2 = fetch(env, path, {"Accept-Encoding": "gzip"})
    _, h2, br2 = fetch(env, path, {"Accept-Encoding": "br"})
    assert (gz2, br2) == (gz, br)
    assert h["x-cache-lookup"] == h2["x-cache-lookup"] == "MEM_HIT"


def test_s_maxage_over_max_age_over_expires_and_expiry(env):
    path = "/c/cache?cc=max-age%3D60%2C%20s-maxage%3D1&e=1"
    _, _, b1 = fetch(env, path)
    _, h, b2 = fetch(env, path)
    assert b1 == b2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:          # s-maxage=1 wins over max-age=60
        _, h, b3 = fetch(env, path)
        if b3 != b1:
            break
    assert b3 != b1 and h["x-cache-lookup"] == "MISS"
    _, _, e1 = fetch(env, "/c/cache?expires=60&e=2")
    _, h, e2 = fetch(env, "/c/cache?expires=60&e=2")
    assert e1 == e2 and h["x-cache-lookup"] == "MEM_HIT"


def test_large_objects_go_to_the_disk_tier(env):
    # 30 kB each: the 200 kB memory tier holds about six, the rest is on disk
    paths = ["/c/cache?cc=max-age%%3D300&size=30000&d=%d" % i for i in range(12)]
    first = [fetch(env, p)[2] for p in paths]
    looks = []
    for p, b in zip(paths, first):
        _, h, again = fetch(env, p)
        assert again == b
        looks.append(h["x-cache-lookup"])
    assert "HIT" in looks                       # served from disk


def test_set_max_age_longest_prefix_from_now(env):
    for path, age in (("/static/a.txt", 300), ("/static/long/b.txt", 86400)):
        status, h, body = fetch(env, path)
        assert status == 200
        assert h["cache-control"] == "max-age=%d" % age
        expires = email.utils.parsedate_to_datetime(h["expires"]).timestamp()
        date = email.utils.parsedate_to_datetime(h["date"]).timestamp()
        assert abs(expires - date - age) <= 2
    status, h, _ = fetch(env, "/files/a.txt")
    assert status == 200 and "cache-control" not in h
    status, h, _ = fetch(env, "/static/missing.txt")
    assert status == 404 and "cache-control" not in h


def test_enable_forward_redirects_to_https(env):
    status, hs, _ = get(env["fwd"], "/a/b?x=1&y=2", headers={"Host": "example.org:8080"})
    assert status == 301
    assert dict(hs)["Location"] == "https://example.org:8443/a/b?x=1&y=2"
    status, hs, _ = get(env["fwd2"], "/p?q", method="POST", body=b"x",
                        headers={"Host": "example.org"})
    assert status == 308 and dict(hs)["Location"] == "https://example.org/p?q"

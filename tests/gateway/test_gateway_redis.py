"""The rate limit across hosts: two korectl instances sharing one real
redis-server through the Redis backplane enforce one count of N per window
between them; with Redis down each host goes on counting alone (fail open
to the per-host count, never a refusal because Redis is down), and the
shared count comes back with Redis."""

import os
import signal
import sys
import time

import pytest

from kore_testing import KoreServer, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))), "backplane"))
from backplane_services import RedisServer  # noqa: E402
from test_gateway_ratelimit import fresh_get  # noqa: E402

pytestmark = pytest.mark.timeout(120)

APP = """
import kore
kore.enable_gateway(False)

@kore.route("/shared", methods=["get"])
def shared(req):
    req.response(200, b"ok")

@kore.route("/down", methods=["get"])
def down(req):
    req.response(200, b"ok")

@kore.route("/after", methods=["get"])
def after(req):
    req.response(200, b"ok")

kore.gateway_policy("/shared", rate_limit="10/day")
kore.gateway_policy("/down", rate_limit="4/day")
kore.gateway_policy("/after", rate_limit="6/day")

@kore.route("/hung", methods=["get"])
def hung(req):
    req.response(200, b"ok")

kore.gateway_policy("/hung", rate_limit="3/day")
"""

DAY = 86400


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gwredis")
    rd = RedisServer(tmp)
    hosts = []
    try:
        for name in ("a", "b"):
            d = tmp / name
            d.mkdir()
            k = KoreServer(d, APP, workers=1, env={"KORE_BACKPLANE": rd.url})
            hosts.append(k)
            k.wait_ready(1)
        yield rd, hosts
    finally:
        for h in hosts:
            h.cleanup()
        rd.stop()


def alternate(hosts, path, n):
    """``n`` GETs of ``path`` spread over the hosts in turn: their statuses,
    repeated in a fresh window if the day's window ended meanwhile."""
    for _ in range(2):
        day = time.time() // DAY
        codes = [fresh_get(hosts[i % len(hosts)], path).status_code for i in range(n)]
        if time.time() // DAY == day:
            return codes
    raise AssertionError("two window changes during one test")


def test_one_count_across_hosts(two):
    rd, hosts = two
    codes = alternate(hosts, "/shared", 20)
    # each host alone would admit 10 (20 in all): the count is Redis's
    assert codes.count(200) == 10, codes
    assert codes.count(429) == 10, codes
    r = fresh_get(hosts[1], "/shared")
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    keys = rd.cli("--scan", "--pattern", "kore:ratelimit:*")
    assert "/shared@*|addr:127.0.0.1" in keys, keys
    ttl = int(rd.cli("pttl", keys.split()[0]).strip() or -2)
    assert 0 < ttl <= (DAY + 1) * 1000


def test_redis_down_counts_per_host_then_shared_again(two):
    rd, hosts = two
    rd.stop()
    try:
        for h in hosts:
            codes = alternate([h], "/down", 6)
            # fail open to the host's own count: never a 5xx, the limit
            # still holds on each host
            assert codes == [200] * 4 + [429] * 2, codes
        for h in hosts:
            assert wait_for(lambda: "shared rate-limit count cannot be reached"
                            in h.log(), 10), h.log()
    finally:
        rd.start()
    codes = alternate(hosts, "/after", 12)
    assert codes.count(200) == 6, codes
    assert wait_for(lambda: "shared rate-limit count answers again" in hosts[0].log(),
                    10), hosts[0].log()


def test_hung_redis_costs_a_timeout_not_a_refusal(two):
    """Redis stopped (SIGSTOP): connections open but nothing answers.  The
    lease waits for the 0.5 s timeout once, then the host counts alone;
    every answer comes well within the worker's 2 s lease timeout."""
    rd, hosts = two
    rd.proc.send_signal(signal.SIGSTOP)
    try:
        codes, took = [], []
        for _ in range(4):
            t0 = time.monotonic()
            codes.append(fresh_get(hosts[0], "/hung").status_code)
            took.append(time.monotonic() - t0)
    finally:
        rd.proc.send_signal(signal.SIGCONT)
    assert codes == [200, 200, 200, 429], codes
    assert max(took) < 1.9, took
    lines = [l for l in hosts[0].log().splitlines()
             if "shared rate-limit count cannot be reached" in l]
    assert lines and "imeout" in lines[-1], lines


def test_a_lease_given_back_to_redis(two):
    """The master gives a worker's idle lease back to the shared count
    (one Lua script: DECRBY, never below zero, nothing for an expired key)."""
    from kore_redis.counters import RedisCounterStore
    rd, _hosts = two
    store = RedisCounterStore(rd.url, "kore-test-giveback")
    i = int(time.time() // 3600) + 1           # the next hour: it cannot end meanwhile
    assert store.take("g", 10, 10, 3600, i) == (10, 0)
    store.give_back("g", 4, i)
    assert store.take("g", 10, 10, 3600, i) == (4, 0)
    store.give_back("g", 50, i)                     # never below zero
    assert store.take("g", 20, 10, 3600, i) == (10, 0)
    store.give_back("g", 5, i - 1)                      # a window with no key: nothing
    assert rd.cli("exists", "kore-test-giveback:ratelimit:g:%d" % (i - 1)).strip() == "0"

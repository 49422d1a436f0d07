"""Redis failures under two kore instances: redis-server restarted mid-run,
a connection killed on the server (CLIENT KILL), a server that hangs
(SIGSTOP: the socket stays open, nothing answers)."""

import asyncio
import json
import signal
import time

import httpx
import pytest
import websockets

from test_redis_hosts import (Cluster, ask, broadcast_once, connect_everywhere, drain, run,
                              wait_connected)

pytestmark = pytest.mark.timeout(150)


async def status(ws):
    return json.loads(await ask(ws, "status:"))


async def wait_state(ws, state, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = await status(ws)
        if st["state"] == state:
            return st
        await asyncio.sleep(0.05)
    raise AssertionError("backplane never %s: %r" % (state, st))


def readyz(host, want, timeout=10):
    """/readyz of ``host`` until its body says ``want`` (whichever worker
    answers); the last (status code, body)."""
    deadline = time.monotonic() + timeout
    while True:
        r = httpx.get(host.url + "/readyz", timeout=10)
        got = (r.status_code, r.json())
        if got[1]["status"] == want or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


async def collect(ws, n, timeout=20):
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        try:
            m = await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            break
        if m.isdigit():
            got.append(int(m))
    return got


def outage(c, streams):
    """Publish 0..99 from one host, restart redis-server, publish 100..199 while
    it is down, then 200..299 after; what every subscriber gets."""
    async def go():
        by = await connect_everywhere(c.url, per_place=2)
        places = sorted(by)
        subs = {p: by[p][0] for p in places}        # receive only
        ctl = {p: by[p][1] for p in places}         # status and publishing
        for p in places:
            await ask(subs[p], "sub:t")
            await wait_connected(ctl[p])
        pub = ctl[places[0]]
        same_host = [p for p in places if p[0] == places[0][0]]
        other_host = [p for p in places if p[0] != places[0][0]]
        await pub.send("burst:t:0:100")
        # the other host has 0..99 before Redis goes (a publish still on its
        # way through Redis when it stops is the outage's, not 0..99's)
        before = {p: await collect(subs[p], 100) for p in other_host}
        c.redis.stop()
        await wait_state(pub, "degraded")
        await pub.send("burst:t:100:100")
        for p in same_host:     # local delivery never stops
            assert await collect(subs[p], 200) == list(range(200))
        for h in c.hosts:       # /readyz: degraded (warn), not failed (503)
            code, doc = readyz(h, "warn")
            assert code == 200 and doc["status"] == "warn", doc
            assert doc["output"].startswith("backplane %s degraded: " % c.driver), doc
        t0 = time.monotonic()
        c.redis.start()
        for ws in ctl.values():
            await wait_connected(ws, timeout=5)
        reconnect = time.monotonic() - t0
        print("backplane reconnected %.2f s after redis-server was up again" % reconnect)
        for h in c.hosts:
            for _ in range(4):      # every worker is connected again
                assert readyz(h, "pass", timeout=0) == (200, {"status": "pass"})
        for ws in ctl.values():     # the counts of both hosts again
            for _ in range(100):
                if await ask(ws, "count:t") == "4":
                    break
                await asyncio.sleep(0.05)
            assert await ask(ws, "count:t") == "4"
        await pub.send("burst:t:200:100")
        # after the outage: pubsub lost 100..199 on the other host, streams
        # deliver them late (once, in order)
        got = {p: (before[p] + await collect(subs[p], 200 if streams else 100, 20))
               if p in other_host else await collect(subs[p], 100, 20)
               for p in places}
        st = await status(ctl[other_host[0]])
        stp = await status(pub)
        for ws in subs.values():
            assert [m for m in await drain(ws, 0.3) if m.isdigit()] == []
        for v in by.values():
            for ws in v:
                await ws.close()
        return got, same_host, other_host, reconnect, st, stp
    return run(go(), timeout=120)


def test_redis_restart_pubsub_reconnects_counts_drops(tmp_path):
    c = Cluster(tmp_path, metrics=True)
    try:
        got, same, other, reconnect, st, stp = outage(c, streams=False)
        # what status() says, exported by every host's /metrics
        m = [c.metrics(h) for h in c.hosts]
    finally:
        c.close()
    assert reconnect < 4.0        # retried every 0.2 s, no growing back-off
    for p in same:
        assert got[p] == list(range(200, 300))
    for p in other:
        # at most once: 0..99 arrived, the outage window lost, 200..299 again
        assert got[p][:100] == list(range(100)) and got[p][-100:] == list(range(200, 300))
        assert len(got[p]) == 200
    assert stp["dropped"] >= 100          # the publisher counted what it could not send
    assert st["reconnects"] >= 1
    for host in m:
        assert host[("kore_backplane_connected", "redis")] == 2     # both workers again
        assert host[("kore_backplane_reconnects_total", "redis")] >= 2
        assert ("kore_backplane_queued", "redis") in host
    assert sum(h[("kore_backplane_dropped_total", "redis")] for h in m) >= 100


def test_redis_restart_streams_delivers_the_outage_once(tmp_path):
    c = Cluster(tmp_path, driver="redis-streams", appendonly=True)
    try:
        got, same, other, reconnect, st, stp = outage(c, streams=True)
        broadcast_once(c)       # GLOBAL broadcasts through the stream too
    finally:
        c.close()
    assert reconnect < 4.0        # retried every 0.2 s, no growing back-off
    for p in same:
        assert got[p] == list(range(200, 300))
    for p in other:
        assert got[p] == list(range(300))     # everything, once, in order
    assert stp["dropped"] == 0 and st["dropped"] == 0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("faults"), relay=True)
    yield c
    c.close()


def _recovers(c, breaker):
    """Break the backplane's connections with ``breaker()``; how long until
    every worker found it, and each worker's status then.  Delivery across
    both hosts works again afterwards."""
    async def go():
        by = await connect_everywhere(c.url)
        subs = [v[0] for v in by.values()]
        for ws in subs:
            await ask(ws, "sub:k")
            await wait_connected(ws)
        before = [(await status(ws))["reconnects"] for ws in subs]
        breaker()
        t0 = time.monotonic()
        found = []
        for ws, n in zip(subs, before):
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                st = await status(ws)
                if st["reconnects"] != n:
                    break
                await asyncio.sleep(0.05)
            found.append(st)
        took = time.monotonic() - t0
        c.redis.proc.send_signal(signal.SIGCONT)
        for ws in subs:
            await wait_connected(ws)
        await subs[0].send("pub:k:after")
        for ws in subs:
            assert await drain(ws, 0.3, want=1) == ["after"]
        for v in by.values():
            for ws in v:
                await ws.close()
        return took, found
    return run(go())


def test_half_open_connection_is_found_by_the_health_check(cluster):
    """CLIENT KILL behind a relay that keeps the kore side of the socket
    open: no EOF ever arrives, only the unanswered PING tells.  Then the
    writers' connections the same way."""
    accepted = cluster.relay.accepted
    took, found = _recovers(cluster, lambda: cluster.redis.cli("CLIENT", "KILL", "TYPE",
                                                               "pubsub"))
    assert took < 8                 # 2 health intervals (1 s) and the polling
    for st in found:                # each reader, by its PING
        assert "reader: no answer to PING" in st["last_error"], found
    assert cluster.relay.accepted >= accepted + 4   # four readers connected again
    took, found = _recovers(cluster, lambda: cluster.redis.cli("CLIENT", "KILL", "TYPE",
                                                               "normal"))
    assert took < 10                # the writer's PING times out after 2 s
    for st in found:
        assert st["last_error"].startswith("writer:"), found


def test_hung_server_is_found_by_the_health_check(cluster):
    def hang():
        cluster.redis.proc.send_signal(signal.SIGSTOP)
    took, found = _recovers(cluster, hang)
    assert took < 8     # a PING unanswered for 2 health intervals

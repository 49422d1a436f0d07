"""rediss:// (TLS) with a password between two instances; a wrong password
leaves the backplane degraded, saying why, while local delivery goes on."""

import asyncio
import json

import httpx
import pytest
import websockets

from kore_testing import KoreServer
from backplane_services import RedisServer, make_cert
from test_redis_hosts import APP, Cluster, ask, connect_everywhere, drain, run, wait_connected

pytestmark = pytest.mark.timeout(90)


def test_tls_and_password_across_hosts(tmp_path):
    c = Cluster(tmp_path, tls=make_cert(tmp_path), password="s3cret")
    try:
        assert c.spec.startswith("rediss://:s3cret@")
        assert "PONG" in c.redis.cli("PING")

        async def go():
            by = await connect_everywhere(c.url)
            everyone = [v[0] for v in by.values()]
            for ws in everyone:
                await wait_connected(ws)
            await everyone[0].send("bcast-global:T")
            for ws in everyone[1:]:
                assert await drain(ws, 0.3, want=1) == ["T"]
            assert await drain(everyone[0], 0.2) == []
            for ws in everyone:
                await ws.close()
        run(go())
    finally:
        c.close()


def test_wrong_password_is_degraded_not_failed(tmp_path):
    redis = RedisServer(tmp_path, password="right")
    k = KoreServer(tmp_path, APP, workers=2,
                   env={"KORE_BACKPLANE": "redis://:wrong@127.0.0.1:%d/0" % redis.port})
    try:
        k.wait_ready(2)

        async def go():
            a = await websockets.connect("ws://127.0.0.1:%d/ws" % k.port)
            for _ in range(100):
                st = json.loads(await ask(a, "status:"))
                if st["last_error"]:
                    break
                await asyncio.sleep(0.05)
            assert st["state"] == "degraded" and not st["connected"]
            assert "password" in st["last_error"].lower() or "auth" in st["last_error"].lower()
            # /readyz: degraded, not failed (the load balancer keeps the host);
            # it says "workers starting" until the master has heard from every
            # worker's readiness, which can come after the ready lines
            for _ in range(100):
                r = httpx.get(k.url + "/readyz", timeout=10)
                if "workers starting" not in r.text:
                    break
                await asyncio.sleep(0.1)
            assert r.status_code == 200 and r.json()["status"] == "warn", r.text
            assert r.json()["output"].startswith("backplane redis degraded: ")
            # one server's workers still reach each other (the local relay)
            b = await websockets.connect("ws://127.0.0.1:%d/ws" % k.port)
            await b.send("bcast-global:L")
            assert await drain(a, 0.3, want=1) == ["L"]
            await a.close()
            await b.close()
        run(go())
    finally:
        k.cleanup()
        redis.stop()

"""examples/scale-out as shipped: two instances, one redis-server, nginx in
front; a chat line reaches a client of the other instance, /backplane
reports the health."""

import asyncio
import json
import os

import httpx
import pytest
import websockets

from kore_testing import ROOT, KoreServer
from services import Nginx, RedisServer

APP = os.path.join(ROOT, "examples", "scale-out", "app.py")
pytestmark = pytest.mark.timeout(90)


def test_scale_out_example(tmp_path):
    redis = RedisServer(tmp_path)
    hosts = []
    try:
        for name in ("a", "b"):
            d = tmp_path / name
            d.mkdir()
            k = KoreServer(d, APP, workers=2, env={"KORE_BACKPLANE": redis.url})
            k.wait_ready(2)
            hosts.append(k)
        nginx = Nginx(tmp_path, [h.port for h in hosts])
        try:
            async def go():
                url = "ws://127.0.0.1:%d/ws" % nginx.port
                by = {}
                for _ in range(30):
                    ws = await websockets.connect(url)
                    host = json.loads(await ws.recv())["system"].split()[3]
                    if host in by:
                        await ws.close()
                    else:
                        by[host] = ws
                    if len(by) == 2:
                        break
                a, b = by.values()
                for _ in range(100):        # b's worker has subscribed on Redis
                    await a.send(json.dumps({"text": "ping"}))
                    m = json.loads(await asyncio.wait_for(a.recv(), 10))
                    try:
                        got = json.loads(await asyncio.wait_for(b.recv(), 0.3))
                        break
                    except asyncio.TimeoutError:
                        continue
                assert m["text"] == "ping" and got["text"] == "ping"
                assert got["host"] != [h for h in by if by[h] is b][0]
                await a.close()
                await b.close()
            asyncio.run(asyncio.wait_for(go(), 60))
            for h in hosts:
                st = httpx.get(h.url + "/backplane", timeout=10).json()
                assert st["driver"] == "redis" and st["state"] == "ok"
        finally:
            nginx.stop()
    finally:
        for h in hosts:
            h.cleanup()
        redis.stop()

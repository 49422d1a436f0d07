"""The local backplane's lock: the workers of one server (no Redis), and its
health reads ok."""

import json
import os
import tempfile

import pytest
import websockets

from kore_testing import KoreServer
from test_redis_hosts import APP, ask, run

pytestmark = pytest.mark.timeout(60)


def test_local_lock_one_holder_among_workers(tmp_path):
    k = KoreServer(tmp_path, APP, workers=2)
    try:
        k.wait_ready(2)

        async def go():
            by = {}
            for _ in range(40):
                ws = await websockets.connect("ws://127.0.0.1:%d/ws" % k.port)
                inst, wid = (await ask(ws, "where:")).split()
                if wid in by:
                    await ws.close()
                else:
                    by[wid] = ws
                if len(by) == 2:
                    break
            assert len(by) == 2
            a, b = by.values()
            assert json.loads(await ask(a, "status:")) == {"driver": "local", "state": "ok"}
            got = [await ask(a, "claim:job:30"), await ask(b, "claim:job:30")]
            assert got[0] != "claim None" and got[1] == "claim None"
            token = got[0].split()[1]
            assert await ask(b, "release:job:%s" % token) == "release True"
            assert await ask(b, "claim:job:30") != "claim None"
            await a.close()
            await b.close()
            return inst
        inst = run(go())
        locks = os.path.join(tempfile.gettempdir(), "kore-locks-%d-%s" % (os.getuid(), inst))
        assert os.path.isdir(locks)
        assert k.stop() == 0
        assert not os.path.exists(locks)        # the master removed them
    finally:
        k.cleanup()

"""The local backplane's lock: the workers of one server (no Redis), and its
health reads ok."""

import json
import os
import tempfile

import pytest

from kore_testing import KoreServer
from test_redis_hosts import APP, ask, connect_everywhere, run

pytestmark = pytest.mark.timeout(60)


def test_local_lock_one_holder_among_workers(tmp_path):
    k = KoreServer(tmp_path, APP, workers=2)
    try:
        k.wait_ready(2)

        async def go():
            # both workers, whichever the kernel hands the accepts to
            by = await connect_everywhere("ws://127.0.0.1:%d/ws" % k.port, places=2)
            ((inst, _w), _l) = next(iter(by.items()))
            a, b = (ws for (ws,) in by.values())
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

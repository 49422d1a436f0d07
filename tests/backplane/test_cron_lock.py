"""The cron plugin's tick runs once across hosts: two kore instances with a
Redis backplane and the same shell job, one test clock at a minute a second
with host 1's clock 20 s of schedule behind host 0's; each tick's run
appears exactly once in the shared output file, also across a restart of
redis-server (while it is down, no host runs a tick)."""

import collections
import re
import time

from kore_testing import KoreServer, wait_for
from backplane_services import RedisServer

APP = """
import kore
kore.server("default", ip="127.0.0.1", port="1", tls=False)
kore.domain("*").route("/", lambda req: req.response(200, b"ok"))
kore.cron("* * * * *", "echo tick $KORE_CRON_SCHEDULED >> %s", name="tick")
"""

FAILED = re.compile(r"cron job 'tick': the Redis lock for (\S+) cannot be taken")


def test_one_run_per_tick_across_two_hosts(tmp_path):
    out = tmp_path / "ticks.log"
    r = RedisServer(tmp_path)
    servers = []

    def lines():
        return out.read_text().splitlines() if out.exists() else []

    def failed(srv):
        return set(FAILED.findall(srv.log()))
    try:
        app = tmp_path / "app.py"
        app.write_text(APP % out)
        # One clock for both (anchored at the same real time), host 1 skewed
        # 20 s behind: it reaches each tick a third of a second after host 0,
        # when the tick's key (job, scheduled time) is already taken.
        real = time.time()
        for i, start in enumerate(("2026-05-04T08:59:58+00:00",
                                   "2026-05-04T08:59:38+00:00")):
            d = tmp_path / ("host%d" % i)
            d.mkdir()
            env = {"KORE_BACKPLANE": r.url, "TZ": "UTC",
                   "KORE_CRON_CLOCK": "%s x60 @%f" % (start, real)}
            servers.append(KoreServer(d, str(app), env=env, workers=2))
        for s in servers:
            s.wait_ready(2)
        first = len(set(lines()))
        assert wait_for(lambda: len(set(lines())) >= first + 4, timeout=40), \
            servers[0].log()[-2000:]
        assert "is claimed elsewhere" in servers[1].log(), servers[1].log()[-2000:]

        # redis-server goes away: every host skips the ticks (logged), none
        # runs one on its own; back, the ticks run once again
        r.stop()
        assert wait_for(lambda: failed(servers[0]) & failed(servers[1]), timeout=20), \
            servers[0].log()[-2000:]
        r.start()
        down = failed(servers[0]) & failed(servers[1])      # ticks both hosts skipped
        before = len(set(lines()))
        assert wait_for(lambda: len(set(lines())) >= before + 3, timeout=40), \
            servers[0].log()[-2000:]
        for s in servers:
            assert s.stop() == 0
        counts = collections.Counter(lines())
        assert counts and max(counts.values()) == 1, counts
        ran = [s.log().count("cron job 'tick': started") for s in servers]
        assert sum(ran) == len(counts)
        assert not {"tick " + t for t in down} & set(counts), (down, counts)
    finally:
        for s in servers:
            s.cleanup()
        r.stop()

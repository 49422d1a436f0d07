"""The cron plugin's tick runs once across hosts: two kore instances with a
Redis backplane and the same shell job, the test clock at a minute a second;
each tick's run appears exactly once in the shared output file."""

import collections
import os

from kore_testing import KoreServer, wait_for
from backplane_services import RedisServer

APP = """
import kore
kore.server("default", ip="127.0.0.1", port="1", tls=False)
kore.domain("*").route("/", lambda req: req.response(200, b"ok"))
kore.cron("* * * * *", "echo tick $KORE_CRON_SCHEDULED >> %s", name="tick")
"""


def test_one_run_per_tick_across_two_hosts(tmp_path):
    out = tmp_path / "ticks.log"
    r = RedisServer(tmp_path)
    servers = []
    try:
        env = {"KORE_BACKPLANE": r.url, "TZ": "UTC",
               "KORE_CRON_CLOCK": "2026-05-04T08:59:58+00:00 x60"}
        app = tmp_path / "app.py"
        app.write_text(APP % out)
        for i in range(2):
            d = tmp_path / ("host%d" % i)
            d.mkdir()
            servers.append(KoreServer(d, str(app), env=env, workers=2))
        for s in servers:
            s.wait_ready(2)

        def lines():
            return out.read_text().splitlines() if out.exists() else []
        assert wait_for(lambda: len(set(lines())) >= 6, timeout=40), \
            servers[0].log()[-2000:]
        for s in servers:
            s.stop()
        counts = collections.Counter(lines())
        assert counts and max(counts.values()) == 1, counts
        ran = [s.log().count("cron job 'tick': started") for s in servers]
        assert sum(ran) == len(counts)
    finally:
        for s in servers:
            s.cleanup()
        r.stop()

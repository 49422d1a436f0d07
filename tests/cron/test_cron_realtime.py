"""The one real-time test: a real minute boundary, the real clock, 4 workers."""

import math
import time

import pytest

from kore_testing import wait_for
from test_cron_server import lines, start


@pytest.mark.slow
@pytest.mark.serial
@pytest.mark.timeout(150)
def test_jobs_start_within_a_second_of_the_minute(tmp_path):
    srv = start(tmp_path, """
        import time, kore
        kore.cron("* * * * *", "date +%s.%N >> shell.txt")
        def stamp():
            with open("py.txt", "a") as f:
                f.write("%.6f\\n" % time.time())
        kore.cron("* * * * *", stamp)
        """, workers=4, env={"TZ": "UTC"})
    try:
        # the first minute boundary with all 4 workers ready (a tick during
        # start-up may find no worker ready yet and start late)
        boundary = math.ceil(time.time() / 60) * 60

        def runs(name):
            return [float(x) for x in lines(tmp_path / name)
                    if boundary <= float(x) < boundary + 60]
        assert wait_for(lambda: runs("shell.txt") and runs("py.txt"), timeout=85), srv.log()
        # stopped at once: a second run for the tick would have come with the first
        assert srv.stop() == 0
        shell, py = runs("shell.txt"), runs("py.txt")
        assert len(shell) == 1 and len(py) == 1, (shell, py)
        assert shell[0] - boundary < 1.0, shell[0] - boundary
        assert py[0] - boundary < 1.0, py[0] - boundary
        print("shell job started %.3f s, python job %.3f s after the minute"
              % (shell[0] - boundary, py[0] - boundary))
    finally:
        srv.cleanup()

"""The one real-time test: a real minute boundary, the real clock, 4 workers."""

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
        started = time.time()
        assert wait_for(lambda: lines(tmp_path / "shell.txt") and lines(tmp_path / "py.txt"),
                        timeout=85), srv.log()
        time.sleep(0.5)   # a second run for the same tick would come right away
        shell = [float(x) for x in lines(tmp_path / "shell.txt")]
        py = [float(x) for x in lines(tmp_path / "py.txt")]
        assert len(shell) == 1 and len(py) == 1, (shell, py)
        boundary = shell[0] // 60 * 60          # the minute the run belongs to
        assert boundary > started - 1, (boundary, started)
        assert 0 <= shell[0] - boundary < 1.0, shell[0] - boundary
        assert 0 <= py[0] - boundary < 1.0, py[0] - boundary
        print("shell job started %.3f s, python job %.3f s after the minute"
              % (shell[0] - boundary, py[0] - boundary))
        assert srv.stop() == 0
    finally:
        srv.cleanup()

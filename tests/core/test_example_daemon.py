"""examples/daemon: started with korectl start, its stuck route replaced by
the watchdog, stopped with korectl stop."""

import os
import signal

import httpx

from kore_testing import ROOT, logged_port, wait_for

APP = os.path.join(ROOT, "examples", "daemon", "app.py")


def test_daemon_example(korectl, tmp_path):
    pidfile, logfile = tmp_path / "d.pid", tmp_path / "d.log"
    r = korectl("start", "-p", str(pidfile), "--log-file", str(logfile), "-b",
                "127.0.0.1:0", "--timeout", "2", APP,
                env={"KORE_PLUGINS": "http"}, timeout=60)
    assert r.returncode == 0, r.stderr
    url = "http://127.0.0.1:%d" % logged_port(logfile)    # start returns once it serves
    pid = int(pidfile.read_text())
    pgid = os.getpgid(pid)              # the daemon's own session and group
    try:
        assert httpx.get(url + "/", timeout=5).text.startswith("worker ")
        try:
            httpx.get(url + "/stuck", timeout=1)
        except httpx.TimeoutException:
            pass
        assert wait_for(lambda: "restarting it" in logfile.read_text(), 30), \
            logfile.read_text()
        log = logfile.read_text()
        assert "timed out" in log and "in stuck" in log
        assert httpx.get(url + "/", timeout=5).status_code == 200
        assert korectl("stop", "-p", str(pidfile), timeout=90).returncode == 0
        assert not pidfile.exists()
    finally:
        try:
            os.killpg(pgid, signal.SIGKILL)     # what is left: the stuck worker's sleep
        except ProcessLookupError:
            pass

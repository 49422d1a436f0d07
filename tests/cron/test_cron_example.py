"""examples/cron runs under korectl (with the test clock: a minute a second)."""

import os
import re

from kore_testing import KoreServer, ROOT, wait_for

APP = os.path.join(ROOT, "examples", "cron", "app.py")
CONF = os.path.join(ROOT, "examples", "cron", "kore.conf")


def test_example_app_runs_its_jobs(tmp_path):
    env = {"CRON_EXAMPLE_DIR": str(tmp_path / "var"), "TZ": "UTC",
           "KORE_CRON_CLOCK": "2026-05-04T08:59:58+00:00 x60"}
    srv = KoreServer(tmp_path, APP, workers=None, bind=False, env=env)
    try:
        srv.wait_ready(2)
        var = tmp_path / "var"
        assert wait_for(lambda: (var / "python-jobs.log").exists()
                        and "heartbeat" in (var / "python-jobs.log").read_text()
                        and len((var / "minutes.log").read_text().splitlines()) >= 5,
                        timeout=30), srv.log()
        assert (var / "boot.log").read_text() == "started\n"
        log = srv.log()
        assert "cron job 'disk-check' stderr: no disk check on this box" in log
        assert re.search(r"cron job 'disk-check': pid \d+ exited with status 0", log)
        assert "rotate in worker 1" in (var / "python-jobs.log").read_text()
        assert srv.stop() == 0
    finally:
        srv.cleanup()


def test_example_app_lists_its_jobs(tmp_path, korectl):
    r = korectl("cron", "list", "--count", "2", APP, cwd=str(tmp_path),
                env={"TZ": "UTC", "KORE_CRON_CLOCK": "2026-05-04T08:59:58+00:00",
                     "CRON_EXAMPLE_DIR": str(tmp_path / "var")})
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "time zone UTC, now 2026-05-04T08:59:58+00:00\n" in out, out
    assert "disk-check\n    schedule  */5 8-18 * * mon-fri\n" \
        "    next      2026-05-04T09:00:00+00:00, 2026-05-04T09:05:00+00:00\n" \
        "    runs      shell: df -h . | tail -1; echo 'no disk check on this box' >&2\n" \
        "    options   overlap=skip timeout=30s\n    declared  %s:" % APP in out
    assert "app.rotate\n    schedule  */2 * * * *\n" \
        "    next      2026-05-04T09:00:00+00:00, 2026-05-04T09:02:00+00:00\n" \
        "    runs      worker: python app.rotate\n" in out
    assert "heartbeat\n    schedule  @hourly\n" \
        "    next      2026-05-04T09:00:00+00:00, 2026-05-04T10:00:00+00:00\n" \
        "    runs      worker: python app.heartbeat\n    options   overlap=allow\n" in out
    assert "boot\n    schedule  @reboot\n    next      at server start (@reboot)\n" in out
    assert not (tmp_path / "var" / "boot.log").exists()      # listed, not run


def test_example_conf_lists_and_runs(tmp_path, korectl):
    r = korectl("cron", "list", "--count", "3", CONF, cwd=str(tmp_path),
                env={"TZ": "UTC", "KORE_CRON_CLOCK": "2026-05-04T08:59:58+00:00"})
    assert r.returncode == 0, r.stderr
    assert "report\n    schedule  */10 * * * *\n    next      2026-05-04T09:00:00+00:00, " \
        "2026-05-04T09:10:00+00:00, 2026-05-04T09:20:00+00:00" in r.stdout
    assert "0 3 * * *" in r.stdout and "@reboot" in r.stdout
    srv = KoreServer(tmp_path, CONF, workers=None, bind=False,
                     env={"KORE_CRON_CLOCK": "2026-05-04T08:59:58+00:00 x60", "TZ": "UTC"})
    try:
        srv.wait_ready(2)
        assert wait_for(lambda: "report from worker 1" in srv.log()
                        and "stdout: every two minutes from" in srv.log()
                        and "stdout: kore.conf jobs loaded" in srv.log(), timeout=20), srv.log()
        assert srv.stop() == 0
    finally:
        srv.cleanup()

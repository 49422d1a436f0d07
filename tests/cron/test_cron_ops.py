"""Reload, restarts, the per-tick claim, config files and ``korectl cron list``."""

import json
import os
import re
import signal
import textwrap

import pytest

from kore_testing import KoreServer, wait_for
from test_cron_server import lines, start


@pytest.fixture
def servers():
    started = []
    yield started
    for srv in started:
        srv.cleanup()


def handed(log, name):
    """The ticks the master handed job ``name`` to a worker for, in order."""
    return re.findall(r"cron job '%s': handed to worker \d \(pid \d+\) for (\S+)"
                      % re.escape(name), log)


def test_reload_neither_drops_nor_doubles_a_tick(tmp_path, servers):
    # Each reload adds a shell job and a Python job (and drops the previous
    # reload's); @reboot runs once, at start-up, not on a reload.
    app = """
        import kore
        kore.cron("* * * * *", "echo $KORE_CRON_SCHEDULED >> ticks.txt", name="ticker")
        kore.cron("@reboot", "echo boot >> boot.txt", name="boot")

        def py():
            pass
        kore.cron("* * * * *", py, name="py")
        %s
        """
    srv = start(tmp_path, app % "", workers=2, clock="2026-05-04T09:59:50+02:00 x20")
    servers.append(srv)
    ticks = tmp_path / "ticks.txt"
    assert wait_for(lambda: len(lines(ticks)) >= 1, timeout=20), srv.log()
    for n in range(3):
        # change the app (new jobs appear), reload, wait for the new generation
        assert wait_for(lambda: len(lines(ticks)) >= n + 2, timeout=20), srv.log()
        if n:       # the previous reload's Python job has had a tick
            assert wait_for(lambda: handed(srv.log(), "pynew%d" % (n - 1)), timeout=20), \
                srv.log()
        (tmp_path / "app.py").write_text(textwrap.dedent(app % (
            'kore.cron("* * * * *", "echo %d >> new%d.txt", name="new%d")\n'
            '        def pynew():\n'
            '            pass\n'
            '        kore.cron("* * * * *", pynew, name="pynew%d")' % (n, n, n, n))))
        srv.send_signal(signal.SIGHUP)
        assert wait_for(lambda: srv.log().count("reload complete") == n + 1, timeout=30), \
            srv.log()
    assert wait_for(lambda: len(lines(tmp_path / "new2.txt")) >= 2
                    and len(handed(srv.log(), "pynew2")) >= 2, timeout=20), srv.log()
    assert srv.stop() == 0
    got = lines(ticks)
    assert got == ["2026-05-04T10:%02d:00+02:00" % m for m in range(len(got))], got
    assert len(got) >= 5
    assert lines(tmp_path / "new2.txt")[:2] == ["2", "2"]
    log = srv.log()
    assert "missed" not in log
    assert lines(tmp_path / "boot.txt") == ["boot"]
    # The Python jobs: no tick handed twice, none lost silently.  During a
    # reload a tick waits for the new generation's first ready worker (the
    # old ones are about to retire); a tick that finds the previous one still
    # waiting is skipped and logged (the overlap rule), as a tick that finds
    # it running would be.  No worker was handed a job it does not know, or
    # retired with one.
    for name in ("py", "pynew0", "pynew1", "pynew2"):
        ran = handed(log, name)
        skipped = re.findall(r"cron job '%s': still running \([^)]*\), skipping "
                             r"the tick at (\S+)" % name, log)
        # (a reload that removes the job drops its tick still waiting, and says so)
        dropped = re.findall(r"cron job '%s': the tick at (\S+) did not run: the job "
                             r"is gone" % name, log)
        seen = sorted(ran + skipped + dropped)
        assert ran and len(seen) == len(set(seen)), (name, ran, skipped, dropped)
        first = 0 if name == "py" else int(seen[0][14:16])
        assert seen == ["2026-05-04T10:%02d:00+02:00" % m
                        for m in range(first, first + len(seen))], (name, seen)
    assert len(handed(log, "py")) >= len(got) // 2
    assert "has no Python job named" not in log and "failed in worker" not in log, log
    assert "exited while running it" not in log
    assert "did not run: no worker" not in log


def test_missed_ticks_not_replayed_unless_catch_up(tmp_path, servers):
    app = """
        import kore
        kore.config.cron_state_file = "cron-state.json"
        kore.cron("*/10 * * * *", "echo $KORE_CRON_SCHEDULED >> eager.txt", name="eager",
                  catch_up=True)
        kore.cron("*/10 * * * *", "echo $KORE_CRON_SCHEDULED >> lazy.txt", name="lazy")
        """
    srv = start(tmp_path, app, clock="2026-05-04T09:59:58+02:00 x60")
    servers.append(srv)
    assert wait_for(lambda: len(lines(tmp_path / "lazy.txt")) == 1
                    and len(lines(tmp_path / "eager.txt")) == 1, timeout=15), srv.log()
    assert srv.stop() == 0
    state = json.loads((tmp_path / "cron-state.json").read_text())
    assert set(state["last_tick"]) == {"eager", "lazy"}
    # Down from 10:00 to 10:45: 10:10 .. 10:40 were missed.
    srv = start(tmp_path, app, clock="2026-05-04T10:45:30+02:00 x60")
    servers.append(srv)
    assert wait_for(lambda: len(lines(tmp_path / "eager.txt")) == 2, timeout=15), srv.log()
    assert re.search(r"cron job 'eager': 4 ticks missed while the server was down "
                     r"\(first 2026-05-04T10:10:00\+02:00\), catching up once", srv.log())
    assert wait_for(lambda: len(lines(tmp_path / "lazy.txt")) == 2, timeout=20), srv.log()
    assert srv.stop() == 0
    assert lines(tmp_path / "eager.txt") == ["2026-05-04T10:00:00+02:00",
                                             "2026-05-04T10:40:00+02:00",
                                             "2026-05-04T10:50:00+02:00"][:len(
                                                 lines(tmp_path / "eager.txt"))]
    assert lines(tmp_path / "lazy.txt") == ["2026-05-04T10:00:00+02:00",
                                            "2026-05-04T10:50:00+02:00"]


def test_claim_seam_decides_per_job_and_scheduled_time(tmp_path, servers):
    # A stand-in for the backplane's lock: claims only even minutes, and
    # records each question (job name, scheduled time).
    srv = start(tmp_path, """
        import kore
        from kore import runtime

        class EvenMinutes:
            @kore.hookimpl
            def kore_cron_claim(self, job, scheduled):
                if job.name == "unsure":
                    raise ConnectionError("the shared store is down")
                with open("claims.txt", "a") as f:
                    f.write("%s@%s\\n" % (job.name, scheduled.isoformat()))
                return scheduled.minute % 2 == 0

        runtime.plugin_manager().register(EvenMinutes(), name="test-claim")
        kore.cron("* * * * *", "echo $KORE_CRON_SCHEDULED >> ran.txt", name="j")
        kore.cron("@reboot", "echo boot >> boot.txt", name="boot")
        kore.cron("* * * * *", "echo $KORE_CRON_SCHEDULED >> unsure.txt", name="unsure")
        """, clock="2026-05-04T09:59:59+02:00 x30")
    servers.append(srv)
    assert wait_for(lambda: len(lines(tmp_path / "claims.txt")) >= 5, timeout=20), srv.log()
    assert srv.stop() == 0
    claims = lines(tmp_path / "claims.txt")
    assert claims[:5] == ["j@2026-05-04T10:%02d:00+02:00" % m for m in range(5)]
    ran = lines(tmp_path / "ran.txt")
    assert ran and all(int(t[14:16]) % 2 == 0 for t in ran)
    assert "the tick at 2026-05-04T10:01:00+02:00 is claimed elsewhere" in srv.log()
    assert lines(tmp_path / "boot.txt") == ["boot"]       # @reboot is per host
    # a claim that fails means "not here" (at most once), never "run here"
    assert not lines(tmp_path / "unsure.txt")
    assert "cron job 'unsure': kore_cron_claim failed for the tick at " \
        "2026-05-04T10:00:00+02:00: not running it here" in srv.log()


def test_python_job_in_a_worker_that_dies(tmp_path, servers):
    srv = start(tmp_path, """
        import os, kore
        def die():
            os._exit(9)
        kore.cron("* * * * *", die)
        """, workers=2, clock="2026-05-04T09:59:59+02:00 x30")
    servers.append(srv)
    assert wait_for(lambda: "exited while running it" in srv.log(), timeout=20), srv.log()
    # the ready worker with the lowest id runs it: worker 2 when worker 1
    # was not ready yet at the first (accelerated) tick
    assert re.search(r"cron job 'app.die': worker [12] \(pid \d+\) exited while running it",
                     srv.log())
    assert srv.stop() == 0


CONF = """\
# Skitai's [:crontab] lines go into a cron block
workers 2
python_import app.py
cron {
    */2 * * * *   echo "two's" >> conf.txt   # a shell comment
    @daily        /usr/bin/true
    0 0 1 * 1     echo first-or-monday
    # * * * * *   echo never: a comment line is no job
    0 12 * * 5#3  echo third-friday
    0 0 L * *     echo last-day
}
"""


def test_conf_block_and_cron_list(tmp_path, korectl):
    (tmp_path / "app.py").write_text(textwrap.dedent("""
        import kore
        def koreapp_job():
            pass
        class App:
            def configure(self, args):
                kore.cron("@reboot", koreapp_job, name="at-start")
        koreapp = App()
        """))
    (tmp_path / "kore.conf").write_text(CONF)
    env = {"KORE_CRON_CLOCK": "2026-05-04T10:01:30+02:00", "TZ": "Europe/Berlin"}
    r = korectl("cron", "list", "--count", "2", str(tmp_path / "kore.conf"), env=env,
                cwd=str(tmp_path))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "time zone Europe/Berlin, now 2026-05-04T10:01:30+02:00" in out
    assert "echo \"two's\" >> conf.txt # a shell comment\n    schedule  */2 * * * *\n" \
        "    next      2026-05-04T10:02:00+02:00, 2026-05-04T10:04:00+02:00\n" \
        "    runs      shell: echo \"two's\" >> conf.txt   # a shell comment\n" in out
    assert "/usr/bin/true\n    schedule  @daily\n    next      2026-05-05T00:00:00+02:00" in out
    # day-of-month OR day-of-week: Friday May 1st was the last; next Monday May 11
    assert "next      2026-05-11T00:00:00+02:00, 2026-05-18T00:00:00+02:00" in out
    assert "kore.conf:5" in out and "kore.conf:7" in out and "kore.conf:9" in out
    assert "never" not in out and "kore.conf:8" not in out
    # the third Friday (#), the last day of the month (L)
    assert "echo third-friday\n    schedule  0 12 * * 5#3\n    next      " \
        "2026-05-15T12:00:00+02:00, 2026-06-19T12:00:00+02:00\n" in out
    assert "echo last-day\n    schedule  0 0 L * *\n    next      " \
        "2026-05-31T00:00:00+02:00, 2026-06-30T00:00:00+02:00\n" in out
    assert "at-start\n    schedule  @reboot\n    next      at server start" in out
    assert "runs      worker: python app.koreapp_job" in out


def test_conf_block_runs(tmp_path, servers):
    (tmp_path / "app.py").write_text("import kore\n")
    (tmp_path / "kore.conf").write_text(CONF)
    srv = KoreServer(tmp_path, str(tmp_path / "kore.conf"), workers=None, bind=False,
                     env={"KORE_CRON_CLOCK": "2026-05-04T10:01:59+02:00 x60"})
    servers.append(srv)
    assert wait_for(lambda: len(lines(tmp_path / "conf.txt")) >= 2, timeout=20), srv.log()
    assert srv.stop() == 0
    assert set(lines(tmp_path / "conf.txt")) == {"two's"}


@pytest.mark.parametrize("line, message", [
    ("61 * * * * echo x", "bad minute field '61'"),
    ("* * * * mon-xyz echo x", "bad day-of-week field 'mon-xyz'"),
    ("* * * echo x", "expected five schedule fields"),
    ("@fortnightly echo x", "unknown schedule '@fortnightly'"),
])
def test_invalid_conf_line_stops_start_up(tmp_path, korectl, line, message):
    (tmp_path / "app.py").write_text("import kore\n")
    (tmp_path / "kore.conf").write_text("python_import app.py\ncron {\n  %s\n}\n" % line)
    r = korectl("run", str(tmp_path / "kore.conf"), cwd=str(tmp_path), timeout=30)
    assert r.returncode == 2
    err = r.stderr.strip()
    assert err.startswith("korectl: configuration error: %s:3: cron line '%s'"
                          % (tmp_path / "kore.conf", line)), err
    assert message in err


def test_invalid_kore_cron_call_names_the_app_line(tmp_path, korectl):
    (tmp_path / "app.py").write_text("import kore\n\nkore.cron('0 25 * * *', 'echo x')\n")
    r = korectl("run", str(tmp_path / "app.py"), cwd=str(tmp_path), timeout=30)
    assert r.returncode == 2
    assert "%s:3: kore.cron: schedule '0 25 * * *': bad hour field '25'" \
        % (tmp_path / "app.py") in r.stderr
    (tmp_path / "app.py").write_text("import kore\nkore.cron('@daily', 42)\n")
    r = korectl("cron", "list", str(tmp_path / "app.py"), cwd=str(tmp_path), timeout=30)
    assert r.returncode == 2 and "command must be a shell command line" in r.stderr
    (tmp_path / "app.py").write_text(
        "import kore\nkore.cron('@daily', 'x', catch_up=True)\n")
    r = korectl("run", str(tmp_path / "app.py"), cwd=str(tmp_path), timeout=30)
    assert r.returncode == 2 and "needs option 'cron_state_file'" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to another user needs root")
def test_shell_jobs_run_as_the_app_user_in_its_directory(tmp_path, servers):
    import pwd
    import shutil
    import tempfile
    user = "nobody"
    pwd.getpwnam(user)
    workdir = tempfile.mkdtemp(prefix="kore-cron-root-")
    try:
        os.chmod(workdir, 0o777)
        srv = start(tmp_path, """
            import kore
            kore.cron("* * * * *", "id -un > who.txt; pwd >> who.txt; echo $HOME >> who.txt",
                      name="who")
            """, clock="2026-05-04T09:59:59+02:00 x60",
            args=("--user", user, "--chdir", workdir))
        servers.append(srv)
        who = os.path.join(workdir, "who.txt")
        assert wait_for(lambda: os.path.exists(who) and len(open(who).read().split()) == 3,
                        timeout=15), srv.log()
        name, cwd, home = open(who).read().split()
        assert name == user and cwd == workdir
        assert home == pwd.getpwnam(user).pw_dir
        assert os.stat(who).st_uid == pwd.getpwnam(user).pw_uid
        assert srv.stop() == 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_plugins_contribute_jobs_through_kore_scheduler_jobs(tmp_path, servers):
    srv = start(tmp_path, """
        import kore
        from kore import runtime

        def from_plugin():
            with open("plugin-job.txt", "a") as f:
                f.write("%d\\n" % kore.worker())

        class Contributor:
            @kore.hookimpl
            def kore_scheduler_jobs(self, app):
                return [("plugin-job", "* * * * *", from_plugin, {"timeout": 5})]

        runtime.plugin_manager().register(Contributor(), name="test-contributor")
        """, workers=2, clock="2026-05-04T09:59:59+02:00 x60")
    servers.append(srv)
    assert wait_for(lambda: len(lines(tmp_path / "plugin-job.txt")) >= 2, timeout=15), srv.log()
    assert "cron job 'plugin-job': finished in worker 1" in srv.log()
    assert srv.stop() == 0

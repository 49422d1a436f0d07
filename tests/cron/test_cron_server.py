"""kore.cron in a real server: real korectl processes, real child processes,
and the plugin's test clock (KORE_CRON_CLOCK) to run many ticks quickly."""

import os
import re
import signal
import sys
import textwrap
import time

import pytest

from kore_testing import KoreServer, wait_for

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))), "metrics"))
import metrics_util  # noqa: E402


def lines(path):
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []


def start(tmp_path, app, workers=1, clock=None, env=None, args=(), name="app.py"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(app))
    e = {"TZ": "Europe/Berlin"}
    if clock:
        e["KORE_CRON_CLOCK"] = clock
    e.update(env or {})
    srv = KoreServer(tmp_path, str(path), workers=workers, env=e, args=args, bind=False)
    srv.wait_ready(workers)
    return srv


@pytest.fixture
def servers():
    started = []
    yield started
    for srv in started:
        srv.cleanup()


def test_four_workers_one_run_per_tick(tmp_path, servers):
    # 2 s per minute: every tick of each job must run exactly once.
    srv = start(tmp_path, """
        import kore
        kore.cron("* * * * *", "echo $KORE_CRON_SCHEDULED >> shell.txt")

        def pyjob():
            with open("py.txt", "a") as f:
                f.write("%d\\n" % kore.worker())

        async def corojob():
            await kore.suspend(1)
            with open("coro.txt", "a") as f:
                f.write("%d\\n" % kore.worker())

        kore.cron("*/1 * * * *", pyjob)
        kore.cron("* * * * *", corojob, name="coro")
        """, workers=4, clock="2026-05-04T09:59:50+02:00 x30")
    servers.append(srv)
    shell = tmp_path / "shell.txt"
    assert wait_for(lambda: len(lines(shell)) >= 5, timeout=30), srv.log()
    assert srv.stop() == 0
    got = lines(shell)
    assert len(got) == len(set(got)), got
    expected = ["2026-05-04T10:%02d:00+02:00" % m for m in range(len(got))]
    assert got == expected
    log = srv.log()
    handed = re.findall(r"cron job 'app.pyjob': handed to worker (\d) \(pid \d+\) for (\S+)", log)
    assert len(handed) == len({t for _, t in handed}) >= 5
    py = lines(tmp_path / "py.txt")
    assert len(py) == len(handed) and set(py) == {"1"}   # worker 1: the lowest ready
    coro = re.findall(r"cron job 'coro': finished in worker 1", log)
    assert len(coro) >= 4 and len(lines(tmp_path / "coro.txt")) == len(coro)


def test_output_status_timeout_and_python_failures(tmp_path, servers):
    srv = start(tmp_path, """
        import kore, gevent
        kore.cron("* * * * *", "echo out-1; echo err-1 >&2; printf 'out-2'; exit 3",
                  name="noisy")
        kore.cron("* * * * *", "trap '' TERM; echo started; sleep 30", name="stubborn",
                  timeout=0.5)

        def broken():
            raise ValueError("bad data")

        def slow():
            gevent.sleep(30)

        kore.cron("* * * * *", broken)
        kore.cron("* * * * *", slow, timeout=0.5, name="slow")
        kore.cron("* * * * *", "true", name="fine")
        """, clock="2026-05-04T09:59:58+02:00 x2",
        args=("--graceful-timeout", "3", "--metrics-bind", "127.0.0.1:0"),
        env={"KORE_CRON_KILL_TIMEOUT": "0.5"})
    servers.append(srv)
    assert srv.wait_log("pid", timeout=10)
    assert wait_for(lambda: "'stubborn': pid" in srv.log() and "SIGKILL" in srv.log()
                    and "'slow': failed" in srv.log(), timeout=20), srv.log()
    log = srv.log()
    assert "cron job 'noisy' stdout: out-1" in log
    assert "cron job 'noisy' stderr: err-1" in log
    assert "cron job 'noisy' stdout: out-2" in log
    assert re.search(r"cron job 'noisy': pid \d+ exited with status 3 after \d+\.\d+ s", log)
    assert "cron job 'stubborn' stdout: started" in log
    assert re.search(r"'stubborn': pid \d+ still running after its timeout of 0.5 s, "
                     r"sending TERM", log)
    assert re.search(r"'stubborn': pid \d+ did not end after TERM, sending KILL", log)
    assert re.search(r"'stubborn': pid \d+ killed by signal 9 \(SIGKILL\) after "
                     r"\d+\.\d+ s \(timed out after 0.5 s\)", log)
    assert "failed in worker 1 after" in log and "ValueError: bad data" in log
    assert "uncaught exception ValueError('bad data') in cron job 'app.broken'" in log
    assert "cron job 'slow': failed in worker 1 after" in log and "timed out after 0.5 s" in log
    # the master's scheduler counts each tick's outcome (kore-plugin-metrics)
    port = metrics_util.metrics_port(srv)
    want = {("noisy", "failed"), ("stubborn", "timeout"), ("app.broken", "failed"),
            ("slow", "timeout"), ("fine", "ok")}

    def counted():
        text = metrics_util.scrape(port)
        got = {(lab["job"], lab["outcome"]) for n, lab, v in metrics_util.parse(text)
               if n == "kore_cron_runs_total" and v >= 1}
        return text if want <= got else None
    assert wait_for(counted, timeout=20), metrics_util.scrape(port)
    text = counted()
    metrics_util.promtool_check(text)
    assert metrics_util.total(text, "kore_cron_runs_total", job="fine", outcome="failed") == 0
    assert srv.stop() == 0


def test_overlap_skip_allow_and_sigterm_kills_groups(tmp_path, servers):
    srv = start(tmp_path, """
        import kore
        kore.cron("* * * * *", "echo $$ >> skip.txt; exec sleep 60", name="skipper")
        kore.cron("* * * * *", "echo $$ >> allow.txt; exec sleep 60", name="allower",
                  overlap="allow")
        kore.cron("* * * * *", "trap '' TERM; echo $$ >> deaf.txt; sleep 60 & "
                  "echo $! >> deaf.txt; wait", name="deaf")
        kore.cron("* * * * *", "echo $$ $PPID $KORE_CRON_JOB ${KORE_CRON_CLOCK:-unset} "
                  ">> family.txt; sleep 60 & echo $! >> family.txt; wait", name="family")
        """, clock="2026-05-04T09:59:59+02:00 x60", args=("--graceful-timeout", "2"))
    servers.append(srv)
    assert wait_for(lambda: len(lines(tmp_path / "allow.txt")) >= 3
                    and len(lines(tmp_path / "family.txt")) == 5, timeout=20), srv.log()
    assert len(lines(tmp_path / "skip.txt")) == 1
    # a shell job is a child of the master, in a session and process group
    # of its own (so TERM and KILL reach its children, and a ^C on the
    # terminal does not)
    leader, parent, name, clock, child = lines(tmp_path / "family.txt")
    leader, parent, child = int(leader), int(parent), int(child)
    # the job's name is in its environment, the test clock is not
    assert (name, clock) == ("family", "unset")
    assert parent == int(re.search(r"master (\d+),", srv.log()).group(1))
    assert os.getsid(leader) == leader and os.getpgid(leader) == leader
    assert os.getpgid(child) == leader
    assert re.search(r"cron job 'skipper': still running \(pid \d+, started for "
                     r"2026-05-04T10:00:00\+02:00\), skipping the tick at "
                     r"2026-05-04T10:01:00\+02:00", srv.log())
    pids = [int(p) for f in ("skip.txt", "allow.txt", "deaf.txt")
            for p in lines(tmp_path / f)] + [leader, child]
    t0 = time.monotonic()
    code = srv.stop(signal.SIGTERM, timeout=20)
    took = time.monotonic() - t0
    assert code == 0, srv.log()
    assert took >= 1.5, took           # the deaf job held the stop until the deadline
    log = srv.log()
    assert "cron: stopping, TERM to the process group of" in log
    assert re.search(r"cron job 'deaf': pid \d+ still running at the end of the "
                     r"graceful timeout, sending KILL", log)
    assert re.search(r"cron job 'skipper': pid \d+ killed by signal 15", log)
    assert "cron job 'family': pid %d killed by signal 15" % leader in log
    assert "server stopped" in log
    for pid in pids:
        assert wait_for(lambda: not _alive(pid), timeout=5), pid
    # KILL went to the deaf job's group only: the family's child (not its
    # leader) ended by the TERM sent to the whole group
    assert "'family': pid %d did not end" % leader not in log
    assert not re.search(r"'family': pid \d+ still running at the end", log)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_dst_days_with_debian_rules(tmp_path, servers):
    # 15 minutes per second across the spring change in Europe/Berlin.
    srv = start(tmp_path, """
        import kore
        kore.cron("30 2 * * *", "echo $KORE_CRON_SCHEDULED >> fixed.txt")
        kore.cron("*/15 * * * *", "echo $KORE_CRON_SCHEDULED >> quarter.txt")
        """, clock="2026-03-29T01:20:00+01:00 x900")
    servers.append(srv)
    quarter = tmp_path / "quarter.txt"
    assert wait_for(lambda: "2026-03-29T03:45:00+02:00" in lines(quarter), timeout=30), srv.log()
    srv.stop()
    assert lines(tmp_path / "fixed.txt") == ["2026-03-29T03:00:00+02:00"]
    assert lines(quarter)[:5] == ["2026-03-29T01:30:00+01:00", "2026-03-29T01:45:00+01:00",
                                  "2026-03-29T03:00:00+02:00", "2026-03-29T03:15:00+02:00",
                                  "2026-03-29T03:30:00+02:00"]

    (tmp_path / "fixed.txt").unlink()
    quarter.unlink()
    srv = start(tmp_path, open(tmp_path / "app.py").read(),
                clock="2026-10-25T01:50:00+02:00 x900")
    servers.append(srv)
    assert wait_for(lambda: "2026-10-25T03:00:00+01:00" in lines(quarter), timeout=30), srv.log()
    srv.stop()
    assert lines(tmp_path / "fixed.txt") == ["2026-10-25T02:30:00+02:00"]
    got = lines(quarter)
    assert got[:9] == ["2026-10-25T02:00:00+02:00", "2026-10-25T02:15:00+02:00",
                       "2026-10-25T02:30:00+02:00", "2026-10-25T02:45:00+02:00",
                       "2026-10-25T02:00:00+01:00", "2026-10-25T02:15:00+01:00",
                       "2026-10-25T02:30:00+01:00", "2026-10-25T02:45:00+01:00",
                       "2026-10-25T03:00:00+01:00"]

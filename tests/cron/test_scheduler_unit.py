"""The scheduler's tick logic in-process, with a clock the test moves."""

import json
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from kore import runtime
from kore.config import ConfigError
from kore_cron import jobs, plugin
from kore_cron.scheduler import PythonRun, Scheduler

BERLIN = ZoneInfo("Europe/Berlin")


class ManualClock:
    speed = 1.0
    fake = True

    def __init__(self, when):
        self.t = when.timestamp()

    def now(self):
        return self.t

    def sleep(self, seconds):
        raise AssertionError("the test drives the scheduler step by step")


class FakeArbiter:
    stopping = False
    stop_deadline = None

    def __init__(self):
        self.slots, self.procs = {}, {}

    def spawn(self, fn, *args):
        raise AssertionError("no greenlets in this test")


@pytest.fixture(autouse=True)
def cron_options():
    reg = runtime.registry()
    if "cron_overlap" not in reg.options:
        plugin.kore_config_options(reg)
    yield


@pytest.fixture
def sched(monkeypatch):
    clock = ManualClock(datetime(2026, 5, 4, 9, 59, 30, tzinfo=BERLIN))
    s = Scheduler(FakeArbiter(), clock, BERLIN)
    fired = []
    monkeypatch.setattr(Scheduler, "fire",
                        lambda self, st, scheduled, reason: fired.append(
                            (st.job.name, scheduled.strftime("%H:%M"))))
    s.fired = fired
    return s


def job(schedule, name, **kw):
    return jobs.make_job(schedule, "true", name=name, **kw)


def step(s, seconds):
    s.clock.t += seconds
    now = s.clock.now()
    due = [st for st in s.states.values()
           if st.next_run is not None and st.next_run.timestamp() <= now]
    if due:
        s._tick(now)
    s.checked = now


def test_each_tick_once_and_late_ticks_coalesced(sched):
    sched.load([job("* * * * *", "a"), job("*/5 * * * *", "b")])
    step(sched, 30)                     # 10:00:00
    step(sched, 0.5)
    assert sched.fired == [("a", "10:00"), ("b", "10:00")]
    step(sched, 60)                     # 10:01:00.5
    assert sched.fired[-1] == ("a", "10:01")
    step(sched, 185)                    # the master stalled to 10:04:05
    assert sched.fired[-1] == ("a", "10:04") and len(sched.fired) == 4


def test_clock_jumping_back_runs_nothing_twice(sched):
    sched.load([job("* * * * *", "a")])
    step(sched, 31)                     # 10:00:01
    assert sched.fired == [("a", "10:00")]
    step(sched, -120)                   # NTP set the clock back two minutes
    step(sched, 60)
    step(sched, 59)                     # back at 10:00:00
    assert sched.fired == [("a", "10:00")]
    step(sched, 61)                     # 10:01:01
    assert sched.fired == [("a", "10:00"), ("a", "10:01")]


def test_reload_keeps_unchanged_jobs_and_does_not_drop_a_tick(sched):
    sched.load([job("* * * * *", "a"), job("* * * * *", "b")])
    step(sched, 29.8)                   # 09:59:59.8, nothing due yet
    # A reload holds the master across 10:00: "b" changed, "c" is new.
    sched.clock.t += 0.5
    sched.load([job("* * * * *", "a"), job("*/2 * * * *", "b"), job("* * * * *", "c")])
    step(sched, 0)
    assert sorted(sched.fired) == [("a", "10:00"), ("b", "10:00"), ("c", "10:00")]
    sched.load([job("* * * * *", "a"), job("*/2 * * * *", "b"), job("* * * * *", "c")])
    step(sched, 0.1)
    assert len(sched.fired) == 3        # a second reload right after: no double
    step(sched, 60)
    assert sorted(sched.fired[3:]) == [("a", "10:01"), ("c", "10:01")]


def test_job_declarations_are_checked():
    with pytest.raises(ConfigError, match="overlap must be 'skip' or 'allow'"):
        job("* * * * *", "x", overlap="never")
    with pytest.raises(ConfigError, match="timeout must be a number of seconds"):
        job("* * * * *", "x", timeout=-1)
    with pytest.raises(ConfigError, match="catch_up makes no sense for @reboot"):
        job("@reboot", "x", catch_up=True)
    with pytest.raises(ConfigError, match="the command is empty"):
        jobs.make_job("* * * * *", "  ")
    with pytest.raises(RuntimeError, match="while the application loads"):
        jobs.cron("* * * * *", "true")
    assert jobs.make_job("@daily", "echo  a   b").name == "echo a b"
    assert jobs.make_job("@daily", test_job_declarations_are_checked).name == \
        "test_scheduler_unit.test_job_declarations_are_checked"


class FakeChannel:
    def __init__(self):
        self.sent = []

    def send(self, msg):
        self.sent.append(json.loads(msg.payload)["name"])


class FakeSlot:
    """What the scheduler reads of the arbiter's kore.arbiter.WorkerSlot."""

    def __init__(self, wid, generation, pid, ready=True):
        self.id, self.generation, self.pid = wid, generation, pid
        self.ready, self.retiring = ready, False
        self.channel = FakeChannel()


def noop():
    pass


def pending_run(s, name):
    st = s.states[name]
    run = PythonRun(st.job, st.next_run, next(s._ids), st.since)
    s.python_runs[run.id] = run
    if not s._dispatch(run):
        s.pending.append(run)
    return run


def test_python_jobs_wait_for_the_new_generation_during_a_reload():
    arb = FakeArbiter()
    arb.generation, arb.reloading = 1, None
    old = FakeSlot(1, 1, 101)
    arb.slots, arb.procs = {1: old}, {101: old}
    s = Scheduler(arb, ManualClock(datetime(2026, 5, 4, 9, 59, 30, tzinfo=BERLIN)), BERLIN)
    s.load([jobs.make_job("* * * * *", noop, name="a")], generation=1)
    pending_run(s, "a")
    assert old.channel.sent == ["a"]
    # HUP: the master loads the new table ("b" is new), then forks generation
    # 2 into the slots; the old workers serve until it is ready, then retire.
    s.load([jobs.make_job("* * * * *", noop, name="a"),
            jobs.make_job("* * * * *", noop, name="b")], generation=2)
    assert (s.states["a"].since, s.states["b"].since) == (1, 2)
    arb.generation, arb.reloading = 2, object()
    new = FakeSlot(1, 2, 102, ready=False)
    arb.slots, arb.procs = {1: new}, {101: old, 102: new}
    pending_run(s, "a")
    pending_run(s, "b")
    assert old.channel.sent == ["a"] and new.channel.sent == []
    assert [r.job.name for r in s.pending] == ["a", "b"]
    for r in s.pending:
        r.started -= 60                     # a slow boot: the reload's deadline rules
    s._supervise()
    assert len(s.pending) == 2
    new.ready = True                        # before the reload is complete
    s._supervise()
    assert new.channel.sent == ["a", "b"] and not s.pending


def test_a_python_job_only_goes_to_workers_that_know_it():
    # A reload whose new workers never became ready leaves the old ones
    # serving with the master's new table: a job they do not have waits.
    arb = FakeArbiter()
    arb.generation, arb.reloading = 2, None
    old = FakeSlot(1, 1, 101)
    arb.slots, arb.procs = {1: old}, {101: old}
    s = Scheduler(arb, ManualClock(datetime(2026, 5, 4, 9, 59, 30, tzinfo=BERLIN)), BERLIN)
    s.load([jobs.make_job("* * * * *", noop, name="a")], generation=1)
    s.load([jobs.make_job("* * * * *", noop, name="a"),
            jobs.make_job("* * * * *", noop, name="b")], generation=2)
    pending_run(s, "a")
    pending_run(s, "b")
    assert old.channel.sent == ["a"] and [r.job.name for r in s.pending] == ["b"]
    respawned = FakeSlot(2, 2, 103)       # forked since, with the new table
    arb.slots[2], arb.procs[103] = respawned, respawned
    s._supervise()
    assert respawned.channel.sent == ["b"] and not s.pending
    # a reload that keeps "b" keeps its generation; a job changed from shell
    # to Python counts as new
    s.load([jobs.make_job("* * * * *", noop, name="b"),
            jobs.make_job("* * * * *", "true", name="c")], generation=3)
    s.load([jobs.make_job("* * * * *", noop, name="b"),
            jobs.make_job("* * * * *", noop, name="c")], generation=4)
    assert (s.states["b"].since, s.states["c"].since) == (2, 4)


def test_a_pending_python_job_is_dropped_when_no_worker_comes():
    arb = FakeArbiter()
    arb.generation, arb.reloading = 1, None
    s = Scheduler(arb, ManualClock(datetime(2026, 5, 4, 9, 59, 30, tzinfo=BERLIN)), BERLIN)
    s.load([jobs.make_job("* * * * *", noop, name="a")], generation=1)
    st = s.states["a"]
    run = PythonRun(st.job, st.next_run, next(s._ids), st.since)
    s.python_runs[run.id] = run
    assert not s._dispatch(run)
    s.pending.append(run)
    s._supervise()
    assert s.pending == [run]
    run.started -= 60
    s._supervise()
    assert not s.pending and run.done and run.id not in s.python_runs
    # a reload that removes (or turns into a shell job) a Python job whose
    # tick waits for a worker drops that tick: the new workers do not know it
    for table in ([], [jobs.make_job("* * * * *", "true", name="a")]):
        s.load([jobs.make_job("* * * * *", noop, name="a")], generation=1)
        run = PythonRun(s.states["a"].job, s.states["a"].next_run, next(s._ids), 1)
        s.python_runs[run.id] = run
        s.pending.append(run)
        s.load(table, generation=2)
        assert not s.pending and run.done and run.id not in s.python_runs
    # each dropped tick is counted (kore_cron_runs_total{outcome="not_run"})
    assert s.counts == {("a", "not_run"): 3}


def test_the_claim_is_at_most_once(monkeypatch):
    # A claim that raises or hangs means "not here", never "run here": a
    # failing shared store must not double a run across hosts.
    import gevent
    from kore_cron import claim
    j = jobs.make_job("* * * * *", "true", name="a")
    when = datetime(2026, 5, 4, 10, 0, tzinfo=BERLIN)
    for answer in (True, False, None):
        monkeypatch.setattr(claim, "_ask", lambda job, scheduled, a=answer: a)
        assert claim.ask(j, when, 5.0) is answer

    def broken(job, scheduled):
        raise ConnectionError("store down")
    monkeypatch.setattr(claim, "_ask", broken)
    assert claim.ask(j, when, 5.0) is False

    def hung(job, scheduled):
        gevent.sleep(30)
    monkeypatch.setattr(claim, "_ask", hung)
    t0 = time.monotonic()
    assert claim.ask(j, when, 0.2) is False
    assert time.monotonic() - t0 < 5


def test_skipped_ticks_and_the_master_metrics(monkeypatch):
    from kore_metrics.store import Samples
    s = Scheduler(FakeArbiter(), ManualClock(datetime(2026, 5, 4, 9, 59, 30,
                                                      tzinfo=BERLIN)), BERLIN)
    s.load([jobs.make_job("* * * * *", noop, name="a"),
            jobs.make_job("* * * * *", "true", name="b")])
    st = s.states["a"]
    run = PythonRun(st.job, st.next_run, next(s._ids), st.since)
    st.runs.append(run)                       # still running: the next tick skips
    s.fire(st, st.next_run, "tick")
    s.count("b", "ok")
    monkeypatch.setattr(plugin, "_scheduler", [s])
    samples = Samples()
    plugin.kore_metrics_collect_master(samples=samples)
    v = samples.values
    assert v[("kore_cron_runs_total", (("job", "a"), ("outcome", "skipped")))] == 1
    assert v[("kore_cron_runs_total", (("job", "a"), ("outcome", "ok")))] == 0
    assert v[("kore_cron_runs_total", (("job", "b"), ("outcome", "ok")))] == 1
    assert v[("kore_cron_running", (("job", "a"),))] == 1
    assert v[("kore_cron_running", (("job", "b"),))] == 0
    assert samples.families["kore_cron_runs_total"].kind == "counter"

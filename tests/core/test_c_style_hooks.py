"""Kore's C-style module functions (kore_parent_configure / _teardown,
kore_worker_configure / _teardown, kore_worker_signal), kore.fatal in a
worker, and worker_set_affinity, on real korectl processes (one server
with two workers shared by the module, a second for affinity off)."""

import os
import re
import signal

import pytest

from kore_testing import KoreServer, wait_for

NOPLUG = {"KORE_DISABLE_PLUGIN_AUTOLOAD": "1"}

APP = """
import os, signal, kore

def kore_parent_configure(args):
    kore.config.workers = 2
    kore.sigtrap(signal.SIGUSR2)
    kore.sigtrap(signal.SIGWINCH)
    kore.log(kore.LOG_INFO, "parent_configure %r" % (args,))

def kore_worker_configure():
    kore.log(kore.LOG_INFO, "worker_configure %d pid %d" % (kore.worker(), os.getpid()))

def kore_worker_signal(signo):
    kore.log(kore.LOG_INFO, "worker_signal %d in worker %d" % (signo, kore.worker()))
    if signo == signal.SIGWINCH:
        kore.fatal("worker %d going dead" % kore.worker())

def kore_worker_teardown():
    kore.log(kore.LOG_INFO, "worker_teardown %d" % kore.worker())

def kore_parent_teardown():
    kore.log(kore.LOG_INFO, "parent_teardown worker=%r" % (kore.worker(),))
"""

CONFIGURED = re.compile(r"worker_configure (\d+) pid (\d+)")


def _workers(srv):
    """{worker id: pid} of the latest kore_worker_configure of each id."""
    out = {}
    for wid, pid in CONFIGURED.findall(srv.log()):
        out[int(wid)] = int(pid)
    return out


def _cpus_allowed(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Cpus_allowed_list:"):
                cpus = set()
                for part in line.split(":", 1)[1].strip().split(","):
                    lo, _, hi = part.partition("-")
                    cpus.update(range(int(lo), int(hi or lo) + 1))
                return cpus
    raise AssertionError("no Cpus_allowed_list in /proc/%d/status" % pid)


def _expected_cpus(wid):
    # the workers inherit this process's CPU set (through the master)
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 1:
        return {cpus[(wid - 1) % len(cpus)]}
    return set(cpus)            # one CPU: nothing to pin


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = KoreServer(tmp_path_factory.mktemp("chooks"), APP, ("arg1",), workers=None,
                   bind=False, env=NOPLUG)
    assert wait_for(lambda: len(_workers(s)) == 2, 30), s.log()
    yield s
    s.cleanup()


def test_parent_and_worker_configure(srv):
    log = srv.log()
    assert "parent_configure ['kore', 'arg1']" in log
    assert set(_workers(srv)) == {1, 2}
    assert sorted(_workers(srv).values()) == sorted(srv.children())


def test_worker_set_affinity_pins_each_worker_to_its_cpu(srv):
    for wid, pid in _workers(srv).items():
        assert _cpus_allowed(pid) == _expected_cpus(wid), (wid, pid)
    # the master is not pinned
    assert _cpus_allowed(srv.pid) == set(os.sched_getaffinity(0))


def test_kore_worker_signal_gets_trapped_signals(srv):
    pid = _workers(srv)[1]
    os.kill(pid, signal.SIGUSR2)
    assert srv.wait_log("[wrk 1] info: worker_signal %d in worker 1" % signal.SIGUSR2), srv.log()
    assert _workers(srv)[1] == pid          # still the same worker


def test_kore_fatal_ends_the_worker_which_is_restarted(srv):
    before = _workers(srv)
    os.kill(before[2], signal.SIGWINCH)
    assert srv.wait_log("fatal: worker 2 going dead", 15), srv.log()
    # the master sees it exit with status 1 and starts another worker 2
    assert wait_for(lambda: _workers(srv).get(2) not in (None, before[2]), 30), srv.log()
    assert "exited with status 1" in srv.log(), srv.log()
    new = _workers(srv)
    assert new[1] == before[1]              # the other worker kept running
    assert sorted(new.values()) == sorted(srv.children())
    # the new worker 2 is pinned as the old one was
    assert _cpus_allowed(new[2]) == _expected_cpus(2)


def test_teardown_hooks_run_on_stop_workers_first(srv):
    assert wait_for(lambda: len(srv.children()) == 2, 15)
    assert srv.stop() == 0
    log = srv.log()
    assert "[wrk 1] info: worker_teardown 1" in log and "[wrk 2] info: worker_teardown 2" in log
    assert "parent_teardown worker=None" in log
    last_worker = max(log.rindex("worker_teardown 1"), log.rindex("worker_teardown 2"))
    assert log.index("parent_teardown") > last_worker, log
    assert not srv.group_alive()


def test_worker_set_affinity_off_leaves_every_cpu(tmp_path):
    s = KoreServer(tmp_path, APP, workers=None, bind=False,
                   env=dict(NOPLUG, KORE_WORKER_SET_AFFINITY="0"))
    try:
        assert wait_for(lambda: len(_workers(s)) == 2, 30), s.log()
        for pid in _workers(s).values():
            assert _cpus_allowed(pid) == set(os.sched_getaffinity(0))
        assert s.stop() == 0
    finally:
        s.cleanup()

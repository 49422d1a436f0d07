"""The worker watchdog (``worker_timeout``, gunicorn's ``--timeout``): a
worker blocked in a call gevent cannot see is logged with its stack, killed
and replaced while the other worker keeps serving."""

import os
import re
import time

import httpx
import pytest

from kore_testing import wait_for

APP = """
import os, kore

class App:
    def configure(self, args):
        kore.server("default", ip="127.0.0.1", port="8888", tls=False)
        d = kore.domain("*", attach="default")
        d.route("/pid", self.pid, methods=["get"])
        d.route("/block", self.block, methods=["get"])

    def pid(self, req):
        req.response(200, str(os.getpid()).encode())

    def block(self, req):
        kore.log(kore.LOG_INFO, "blocking in %d" % os.getpid())
        os.system("sleep 12")
        req.response(200, b"unblocked")

koreapp = App()
"""


# the watchdog's 2 s budget and "the other worker serves meanwhile" need
# the CPU: these run in the serial part of the suite
pytestmark = pytest.mark.serial

def _get(url, path, timeout=5.0):
    return httpx.get(url + path, timeout=timeout, headers={"connection": "close"})


def test_blocked_worker_is_dumped_killed_and_replaced(kore_server):
    srv = kore_server(APP, workers=2, args=["--timeout", "2"])
    srv.wait_ready(2)
    before = set(srv.children())
    assert len(before) == 2
    try:
        _get(srv.url, "/block", timeout=1.5)
    except httpx.TimeoutException:
        pass
    assert srv.wait_log("blocking in", timeout=10), srv.log()
    blocked = int(re.search(r"blocking in (\d+)", srv.log()).group(1))
    other = (before - {blocked}).pop()
    # while the blocked one waits for the watchdog, the other one serves
    served = set()
    deadline = time.monotonic() + 20
    while "timed out" not in srv.log() and time.monotonic() < deadline:
        r = _get(srv.url, "/pid")
        assert r.status_code == 200
        served.add(int(r.text))
    # never the blocked worker (its replacement may already answer the last
    # requests, once the watchdog struck between two checks of the log)
    assert other in served and blocked not in served, served
    assert srv.wait_log("timed out: its event loop has not turned", timeout=20), srv.log()
    assert wait_for(lambda: blocked not in srv.children() and len(srv.children()) == 2,
                    timeout=20), srv.log()
    log = srv.log()
    assert "(pid %d) timed out" % blocked in log
    # faulthandler's dump names the handler's line
    assert "in block" in log and "most recent call first" in log, log
    assert re.search(r"\(pid %d\) killed by signal (6|9), restarting it" % blocked, log)
    assert other in srv.children()
    pids = set()
    for _ in range(20):
        r = _get(srv.url, "/pid")
        assert r.status_code == 200
        pids.add(int(r.text))
    assert blocked not in pids
    assert srv.stop() == 0
    # what is left of the group is the orphaned "sleep 12" of the killed
    # worker (the fixture's cleanup kills the group)
    left = [int(l.split()[0]) for l in srv.group_alive()]
    names = {open("/proc/%d/comm" % p).read().strip() for p in left
             if os.path.exists("/proc/%d/comm" % p)}
    assert names <= {"sh", "sleep"}, names


def test_timeout_zero_disables_the_watchdog(kore_server):
    srv = kore_server(APP.replace("sleep 12", "sleep 3"), workers=1,
                      args=["--timeout", "0"])
    srv.wait_ready(1)
    pid = srv.children()[0]
    r = _get(srv.url, "/block", timeout=15)
    assert r.status_code == 200 and r.text == "unblocked"
    assert srv.children() == [pid]
    assert "timed out" not in srv.log()
    assert srv.stop() == 0


SLOW_BOOT = """
import os, time, kore

class App:
    def configure(self, args):
        kore.server("default", ip="127.0.0.1", port="8888", tls=False)
        d = kore.domain("*", attach="default")
        d.route("/pid", self.pid, methods=["get"])

    def workerstart(self):
        time.sleep(3)         # blocking (not gevent's sleep): a slow boot

    def pid(self, req):
        req.response(200, str(os.getpid()).encode())

koreapp = App()
"""


def test_slow_synchronous_boot_is_not_a_timeout(kore_server):
    srv = kore_server(SLOW_BOOT.replace("time.sleep(3)",
                                        "__import__('gevent').monkey.get_original("
                                        "'time', 'sleep')(3)"),
                      workers=1, args=["--timeout", "1"])
    srv.wait_ready(1)
    pid = srv.children()[0]
    for _ in range(10):
        assert _get(srv.url, "/pid").text == str(pid)
    assert wait_for(lambda: "timed out" in srv.log(), timeout=2.5) is False
    assert srv.children() == [pid]
    assert srv.stop() == 0

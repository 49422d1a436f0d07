"""Kernel lifecycle with real korectl processes (no http plugin needed):
app styles and hooks, inter-process messages, boot failures, signals."""

import os
import signal
import subprocess
import sys
import time

import pytest

from kore_testing import wait_for

NOPLUG = {"KORE_DISABLE_PLUGIN_AUTOLOAD": "1"}


APP_OBJECT = """
import kore, os

kore.log(kore.LOG_INFO, "module-level in worker=%r" % (kore.worker(),))

class App:
    def configure(self, args):
        kore.log(kore.LOG_INFO, "configure args=%r" % (args,))
        kore.config.workers = 2

    def workerstart(self):
        kore.log(kore.LOG_INFO, "workerstart %d" % kore.worker())
        if kore.worker() == 1:
            kore.sendobj({"from": 1})
            kore.sendobj("only-two", worker=2)

    def onmsg(self, obj):
        kore.log(kore.LOG_INFO, "onmsg %d %r" % (kore.worker(), obj))

    def workerstop(self):
        kore.log(kore.LOG_INFO, "workerstop %d" % kore.worker())

    def cleanup(self):
        kore.log(kore.LOG_INFO, "cleanup in worker=%r" % (kore.worker(),))

koreapp = App()
"""


def test_koreapp_object_hooks_and_sendobj(kore_server):
    srv = kore_server(APP_OBJECT, "x1", "x2", workers=None, bind=False, env=NOPLUG)
    assert srv.wait_log("onmsg 2 'only-two'"), srv.log()
    assert srv.wait_log("onmsg 1 {'from': 1}"), srv.log()
    assert srv.wait_log("onmsg 2 {'from': 1}"), srv.log()
    log = srv.log()
    assert "configure args=['kore', 'x1', 'x2']" in log
    assert log.count("module-level in worker=None") == 1   # once, in the master
    assert "[wrk 1] info: workerstart 1" in log and "[wrk 2] info: workerstart 2" in log
    assert "onmsg 1 'only-two'" not in log
    assert srv.stop() == 0
    log = srv.log()
    assert "workerstop 1" in log and "workerstop 2" in log
    assert "cleanup in worker=None" in log
    assert not srv.group_alive()


APP_FUNCS = """
import kore

def kore_parent_configure(args):
    kore.log(kore.LOG_INFO, "parent_configure %r" % (args,))
    kore.config.workers = 1

def kore_worker_configure():
    kore.log(kore.LOG_INFO, "worker_configure %d" % kore.worker())
"""


def test_function_hooks(kore_server):
    srv = kore_server(APP_FUNCS, "z", workers=None, bind=False, env=NOPLUG)
    assert srv.wait_log("worker_configure 1"), srv.log()
    assert "parent_configure ['kore', 'z']" in srv.log()
    assert srv.stop() == 0


def test_proctitles(kore_server):
    srv = kore_server(APP_FUNCS, workers=None, bind=False, env=NOPLUG)
    assert srv.wait_log("worker_configure 1"), srv.log()
    with open("/proc/%d/cmdline" % srv.pid, "rb") as f:
        assert f.read().split(b"\0")[0].startswith(b"kore [parent]")
    kids = srv.children()
    assert len(kids) == 1
    with open("/proc/%d/cmdline" % kids[0], "rb") as f:
        assert f.read().split(b"\0")[0].startswith(b"kore [wrk 1]")
    assert srv.stop() == 0


def test_package_dir_and_module_attr(kore_server, tmp_path):
    pkg = tmp_path / "mypkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "import kore\nfrom . import helpers\n"
        "class A:\n"
        "    def configure(self, args):\n"
        "        kore.config.workers = 1\n"
        "    def workerstart(self):\n"
        "        kore.log(kore.LOG_INFO, 'pkg started ' + helpers.WORD)\n"
        "koreapp = A()\n"
        "other = A\n")
    (pkg / "helpers.py").write_text("WORD = 'helped'\n")
    srv = kore_server(str(pkg) + "/", workers=None, bind=False, env=NOPLUG)
    assert srv.wait_log("pkg started helped"), srv.log()
    assert srv.stop() == 0
    env = dict(NOPLUG, PYTHONPATH=str(tmp_path))
    srv = kore_server("mypkg:other", workers=None, bind=False, env=env)
    assert srv.wait_log("pkg started helped"), srv.log()
    assert srv.stop() == 0


def test_classic_conf_python_import_and_path(kore_server, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "shared_words.py").write_text("WORD = 'from-python-path'\n")
    (tmp_path / "hello.py").write_text(
        "import kore, shared_words\n"
        "def kore_worker_configure():\n"
        "    kore.log(kore.LOG_INFO, 'conf app ' + shared_words.WORD)\n")
    conf = tmp_path / "kore.conf"
    conf.write_text("# classic configuration\nworkers 1\npython_path lib\n"
                    "python_import hello.py\n")
    srv = kore_server(str(conf), workers=None, bind=False, env=NOPLUG)
    assert srv.wait_log("conf app from-python-path"), srv.log()
    assert srv.stop() == 0


def test_import_time_task_runs_in_every_worker(kore_server):
    app = """
import kore

async def ticker():
    kore.log(kore.LOG_INFO, "task running in worker %d" % kore.worker())

kore.task_create(ticker())

def fired():
    kore.log(kore.LOG_INFO, "timer fired in worker %d" % kore.worker())

kore.timer(fired, 10, kore.TIMER_ONESHOT)

def kore_parent_configure(args):
    kore.config.workers = 2
"""
    srv = kore_server(app, workers=None, bind=False, env=NOPLUG)
    for text in ("task running in worker 1", "task running in worker 2",
                 "timer fired in worker 1", "timer fired in worker 2"):
        assert srv.wait_log(text), srv.log()
    assert "[parent]" not in "".join(l for l in srv.log().splitlines()
                                     if "task running" in l)
    assert srv.stop() == 0


def test_respawn_after_sigkill(kore_server):
    srv = kore_server(APP_FUNCS, workers=None, bind=False, env=NOPLUG,
                      args=["--workers", "2"])
    # killed once running (a worker killed while it boots is a boot failure)
    srv.wait_ready(2)
    kids = srv.children()
    assert len(kids) == 2
    os.kill(kids[0], signal.SIGKILL)
    assert wait_for(lambda: len(srv.children()) == 2 and kids[0] not in srv.children())
    assert srv.wait_log("killed by signal 9, restarting it")
    assert wait_for(lambda: srv.log().count("worker_configure") >= 3), srv.log()
    assert srv.stop() == 0
    assert not srv.group_alive()


def test_death_policy_terminate(kore_server):
    srv = kore_server(APP_FUNCS, workers=None, bind=False, env=NOPLUG,
                      args=["--workers", "2"])
    assert wait_for(lambda: srv.log().count("worker_configure") >= 2), srv.log()
    srv.stop()
    env = dict(NOPLUG, KORE_WORKER_DEATH_POLICY="terminate")
    srv = kore_server(APP_FUNCS, workers=None, bind=False, env=env, args=["--workers", "2"])
    # killed once running (a worker killed while it boots is a boot failure)
    srv.wait_ready(2)
    os.kill(srv.children()[0], signal.SIGKILL)
    srv.proc.wait(15)
    assert srv.proc.returncode == 1
    assert "worker_death_policy is terminate" in srv.log()
    assert not srv.group_alive()


def test_boot_failure_exits_with_reason(kore_server):
    app = """
import kore
def kore_worker_configure():
    raise ValueError("database unreachable")
"""
    srv = kore_server(app, workers=2, bind=False, env=NOPLUG)
    srv.proc.wait(15)
    assert srv.proc.returncode == 4
    log = srv.log()
    assert "failed to boot" in log and "database unreachable" in log
    # no respawn loop: each worker booted once at most
    boots = [l for l in log.splitlines() if "[wrk" in l and "failed to boot" in l]
    assert 1 <= len(boots) <= 2, log
    assert not srv.group_alive()


def test_app_import_error_exits_4(kore_server):
    srv = kore_server("import kore\nraise RuntimeError('broken app')\n",
                      bind=False, env=NOPLUG)
    srv.proc.wait(15)
    assert srv.proc.returncode == 4
    assert "broken app" in srv.log()


def test_fatalx_and_shutdown(kore_server):
    app = """
import kore
def kore_worker_configure():
    if kore.worker() == 2:
        kore.fatalx("cannot go on")
def kore_parent_configure(args):
    kore.config.workers = 2
"""
    srv = kore_server(app, workers=None, bind=False, env=NOPLUG)
    srv.proc.wait(20)
    assert srv.proc.returncode in (1, 3)
    assert "fatal: cannot go on" in srv.log()
    assert not srv.group_alive()

    app2 = """
import kore
async def later():
    await kore.suspend(200)
    kore.shutdown()
def kore_worker_configure():
    kore.task_create(later())
"""
    srv = kore_server(app2, workers=1, bind=False, env=NOPLUG)
    srv.proc.wait(20)
    assert srv.proc.returncode == 0, srv.log()
    assert "shutdown requested by worker 1" in srv.log()


def test_ttin_ttou(kore_server):
    srv = kore_server(APP_FUNCS, workers=None, bind=False, env=NOPLUG,
                      args=["--workers", "1"])
    assert srv.wait_log("worker_configure 1")
    srv.send_signal(signal.SIGTTIN)
    assert wait_for(lambda: len(srv.children()) == 2), srv.log()
    assert srv.wait_log("worker_configure 2")
    srv.send_signal(signal.SIGTTOU)
    assert wait_for(lambda: len(srv.children()) == 1), srv.log()
    assert srv.stop() == 0


def test_pidfile_and_usr1_reopen(kore_server, tmp_path):
    pidfile = tmp_path / "kore.pid"
    logfile = tmp_path / "kore.log"
    srv = kore_server(APP_FUNCS, workers=1, bind=False, env=NOPLUG,
                      args=["--pid", str(pidfile), "--log-file", str(logfile)])
    assert wait_for(lambda: pidfile.exists() and logfile.exists()
                    and "worker_configure 1" in logfile.read_text())
    assert int(pidfile.read_text()) == srv.pid
    os.rename(logfile, tmp_path / "kore.log.1")
    srv.send_signal(signal.SIGUSR1)
    assert wait_for(lambda: logfile.exists())
    assert srv.stop() == 0
    assert "server stopped" in logfile.read_text()
    assert not pidfile.exists()


def test_quit_is_fast(kore_server):
    app = """
import kore
def kore_worker_configure():
    kore.log(kore.LOG_INFO, "up")
"""
    srv = kore_server(app, workers=2, bind=False, env=NOPLUG)
    assert wait_for(lambda: srv.log().count("up") >= 2)
    t = time.monotonic()
    assert srv.stop(signal.SIGQUIT) == 0
    assert time.monotonic() - t < 5
    assert not srv.group_alive()


def test_sigtrap_reaches_koreapp_signal(kore_server):
    app = """
import signal, kore

class App:
    def configure(self, args):
        kore.sigtrap(signal.SIGUSR2)
        try:
            kore.sigtrap(signal.SIGTERM)
        except RuntimeError as exc:
            kore.log(kore.LOG_INFO, "refused: %s" % exc)

    def workerstart(self):
        kore.log(kore.LOG_INFO, "ready")

    def signal(self, signo):
        kore.log(kore.LOG_INFO, "koreapp.signal(%d) in worker %d" % (signo, kore.worker()))

koreapp = App()
"""
    srv = kore_server(app, workers=1, bind=False, env=NOPLUG)
    assert srv.wait_log("ready"), srv.log()
    assert "refused: kore.sigtrap: signal 15 is used by the server" in srv.log()
    os.kill(srv.children()[0], signal.SIGUSR2)
    assert srv.wait_log("koreapp.signal(%d) in worker 1" % signal.SIGUSR2), srv.log()
    assert srv.stop() == 0

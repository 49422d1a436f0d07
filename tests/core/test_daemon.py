"""Daemon control: korectl start / status / reload / restart / stop -p PIDFILE,
the pidfile checked before anything binds, the root policy."""

import os
import signal
import socket

import httpx
import pytest

from kore_testing import logged_port, wait_for

APP = """
import os, kore

class App:
    def configure(self, args):
        kore.server("default", ip="127.0.0.1", port="1", tls=False)
        d = kore.domain("*", attach="default")
        d.route("/", self.index, methods=["get"])

    def workerstart(self):
        if os.environ.get("FAIL_WORKERSTART"):
            raise RuntimeError("workerstart refuses")

    def index(self, req):
        req.response(200, str(os.getppid()).encode())

koreapp = App()
"""

ENV = {"KORE_PLUGINS": "http"}


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _listening(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def daemon_paths(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    pidfile = tmp_path / "kore.pid"
    yield tmp_path / "app.py", pidfile, tmp_path / "kore.log"
    pid = None
    try:
        pid = int(pidfile.read_text())
    except (OSError, ValueError):
        pass
    if pid:
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)   # the daemon's group
        except (ProcessLookupError, PermissionError):
            pass


def test_start_status_reload_restart_stop(korectl, daemon_paths):
    app, pidfile, logfile = daemon_paths
    r = korectl("start", "-p", str(pidfile), "--log-file", str(logfile), "-b",
                "127.0.0.1:0", "-w", "2", str(app), env=ENV, timeout=60)
    assert r.returncode == 0, r.stderr
    pid = int(pidfile.read_text())
    port = logged_port(logfile)         # the kernel chose it (port 0)
    url = "http://127.0.0.1:%d/" % port
    assert "serving, master pid %d" % pid in r.stdout
    # start returned once it serves: no waiting for the port
    assert httpx.get(url, timeout=5).text == str(pid)
    assert os.getsid(pid) != os.getsid(0)
    r = korectl("status", "-p", str(pidfile))
    assert r.returncode == 0 and "running (master pid %d)" % pid in r.stdout
    # a second start stops before binding, non-zero, and leaves it running
    lines = len(logfile.read_text().splitlines())
    r = korectl("start", "-p", str(pidfile), "--log-file", str(logfile), "-b",
                "127.0.0.1:0", str(app), env=ENV, timeout=60)
    assert r.returncode == 1 and "names running process %d" % pid in r.stderr
    assert logged_port("\n".join(logfile.read_text().splitlines()[lines:])) is None
    assert "cannot open listener" not in r.stderr
    r = korectl("reload", "-p", str(pidfile))
    assert r.returncode == 0
    assert wait_for(lambda: "reload complete" in logfile.read_text(), 30)
    r = korectl("restart", "-p", str(pidfile), timeout=90)
    assert r.returncode == 0, r.stderr
    assert not _alive(pid)
    new = int(pidfile.read_text())
    assert new != pid and _alive(new)
    port = logged_port(logfile)         # the new master's port
    url = "http://127.0.0.1:%d/" % port
    assert httpx.get(url, timeout=5).text == str(new)
    r = korectl("stop", "-p", str(pidfile), timeout=90)
    assert r.returncode == 0 and "stopped" in r.stdout
    # stop returned once it stopped
    assert not _alive(new) and not _listening(port) and not pidfile.exists()
    r = korectl("status", "-p", str(pidfile))
    assert r.returncode == 3 and "not running" in r.stdout
    r = korectl("stop", "-p", str(pidfile))
    assert r.returncode == 0 and "not running" in r.stdout


def test_stale_pidfile_status(korectl, tmp_path):
    pidfile = tmp_path / "kore.pid"
    pidfile.write_text("%d\n" % (2 ** 22 + 12345))      # above pid_max: no such process
    r = korectl("status", "-p", str(pidfile))
    assert r.returncode == 1 and "stale" in r.stdout


def test_pidfile_of_running_process_stops_before_binding(korectl, daemon_paths):
    app, pidfile, logfile = daemon_paths
    pidfile.write_text("%d\n" % os.getpid())        # this test process runs
    for cmd in (["run"], ["start"], ["run", "--deployment", "production", "--keep-root"]):
        r = korectl(*cmd, "-p", str(pidfile), "--log-file", str(logfile), "-b",
                    "127.0.0.1:0", str(app), env=ENV, timeout=60)
        assert r.returncode == 1, (cmd, r.stderr)
        assert "names running process %d" % os.getpid() in r.stderr
        # nothing was bound (a bound server logs its port)
        assert logged_port(logfile) is None and logged_port(r.stdout + r.stderr) is None
    assert pidfile.read_text().strip() == str(os.getpid())
    pidfile.unlink()


def test_start_reports_a_boot_failure_with_its_exit_code(korectl, daemon_paths):
    app, pidfile, logfile = daemon_paths
    r = korectl("start", "-p", str(pidfile), "--log-file", str(logfile), "-b",
                "127.0.0.1:0", str(app),
                env=dict(ENV, FAIL_WORKERSTART="1"), timeout=60)
    assert r.returncode == 4, (r.stdout, r.stderr)
    assert "stopped during start-up (exit code 4)" in r.stderr
    assert "workerstart refuses" in logfile.read_text()
    assert wait_for(lambda: not pidfile.exists())


@pytest.mark.skipif(os.geteuid() != 0, reason="the root policy needs root")
def test_root_policy(korectl, daemon_paths):
    app, pidfile, logfile = daemon_paths
    r = korectl("run", "--deployment", "production", "-b", "127.0.0.1:0",
                str(app), env=ENV, timeout=60)
    assert r.returncode == 2
    assert "no 'runas'" in r.stderr and "--keep-root" in r.stderr and "-u USER" in r.stderr
    assert logged_port(r.stdout + r.stderr) is None     # refused before binding
    # development: one warning, then it serves
    r = korectl("start", "-p", str(pidfile), "--log-file", str(logfile), "-b",
                "127.0.0.1:0", "-w", "2", str(app), env=ENV, timeout=60)
    assert r.returncode == 0, r.stderr
    assert logged_port(logfile) is not None
    assert logfile.read_text().count("running as root without 'runas'") == 1
    r = korectl("stop", "-p", str(pidfile), timeout=90)
    assert r.returncode == 0

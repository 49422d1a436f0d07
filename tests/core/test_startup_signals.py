"""HUP and TERM sent while ``korectl run`` is still starting are held, not
fatal, and handled once the master runs: at the earliest moment a Python
process can catch a signal (korectl's first instructions, before gevent and
the plugins are imported), while a plugin is being imported and while the
application is being imported.

Every moment is reached by a condition, never by a sleep: the first by
watching the process's caught-signal mask in /proc while a plugin's import
is held back (so it must be caught before plugins load), the others by a
plugin and an app that announce their import in a file and wait for the
test's go-ahead."""

import os
import signal
import subprocess

import httpx
import pytest

from kore_testing import wait_for

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/status"),
                                reason="needs /proc to see when signals are caught")

GATED_APP = """
import os, time, kore

here = os.path.dirname(os.path.abspath(__file__))
open(os.path.join(here, "importing"), "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(os.path.join(here, "go")) and time.monotonic() < deadline:
    time.sleep(0.01)          # the app's own slow import, released by the test

@kore.route("/")
def index(req):
    req.response(200, b"up")
"""

GATED_PLUGIN = """
import os, time
gates = os.environ["KORE_TEST_GATES"]
open(os.path.join(gates, "plugin-importing"), "w").close()
deadline = time.monotonic() + 60
while not os.path.exists(os.path.join(gates, "plugin-go")) and time.monotonic() < deadline:
    time.sleep(0.01)
"""

HELD = (signal.SIGHUP, signal.SIGTERM)


@pytest.fixture(scope="module")
def gated_site(tmp_path_factory):
    """A distribution declaring the ``gated`` plugin (entry point group
    kore.plugins) whose import waits for a gate file."""
    site = tmp_path_factory.mktemp("gated-site")
    info = site / "kore_plugin_gated-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kore-plugin-gated\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text("[kore.plugins]\ngated = kore_gated_plugin\n")
    (site / "kore_gated_plugin.py").write_text(GATED_PLUGIN)
    return site


def _caught(pid):
    """Signals process ``pid`` has a handler for (SigCgt in /proc), or None
    once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    mask = int(line.split()[1], 16)
                    return {s for s in range(1, 65) if mask & (1 << (s - 1))}
    except (FileNotFoundError, ProcessLookupError):
        return None
    return set()


def _wait_holding(srv):
    """Wait until korectl's holding handler is installed (or it died)."""
    assert wait_for(lambda: (_caught(srv.pid) is None
                             or set(HELD) <= _caught(srv.pid)), timeout=30, step=0.001)
    assert srv.proc.poll() is None, "korectl died before it held signals:\n" + srv.log()


def _ok(url):
    try:
        return httpx.get(url, timeout=2, headers={"connection": "close"}).text == "up"
    except httpx.HTTPError:
        return False


def _start(kore_server, tmp_path, gated_site):
    env = {"PYTHONPATH": os.pathsep.join(
        [str(gated_site)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]),
        "KORE_TEST_GATES": str(tmp_path)}
    return kore_server(GATED_APP, workers=1, wait=False, env=env)


def _open_gates(tmp_path):
    (tmp_path / "plugin-go").touch()
    (tmp_path / "go").touch()


def _wait_file(srv, path):
    assert wait_for(lambda: path.exists() or srv.proc.poll() is not None,
                    timeout=30), srv.log()
    assert srv.proc.poll() is None, srv.log()


def _moment_earliest(srv, tmp_path):
    _wait_holding(srv)      # the gated plugin has not been let through yet


def _moment_plugin_import(srv, tmp_path):
    _wait_file(srv, tmp_path / "plugin-importing")


def _moment_app_import(srv, tmp_path):
    (tmp_path / "plugin-go").touch()
    _wait_file(srv, tmp_path / "importing")


MOMENTS = {"earliest": _moment_earliest, "plugin-import": _moment_plugin_import,
           "app-import": _moment_app_import}


@pytest.mark.parametrize("moment", sorted(MOMENTS))
def test_term_during_startup_stops_cleanly_once_up(kore_server, tmp_path, gated_site,
                                                   moment):
    srv = _start(kore_server, tmp_path, gated_site)
    MOMENTS[moment](srv, tmp_path)
    srv.send_signal(signal.SIGTERM)
    _open_gates(tmp_path)
    try:
        code = srv.proc.wait(60)
    except subprocess.TimeoutExpired:
        raise AssertionError("TERM held but never handled:\n" + srv.log())
    log = srv.log()
    assert code == 0, log
    assert "TERM received: graceful stop" in log
    assert "server stopped" in log


@pytest.mark.parametrize("moment", sorted(MOMENTS))
def test_hup_during_startup_reloads_once_up(kore_server, tmp_path, gated_site, moment):
    srv = _start(kore_server, tmp_path, gated_site)
    MOMENTS[moment](srv, tmp_path)
    srv.send_signal(signal.SIGHUP)
    _open_gates(tmp_path)
    assert srv.wait_log("HUP received", timeout=60), srv.log()
    assert srv.wait_log("reload complete", timeout=60), srv.log()
    assert srv.proc.poll() is None
    assert wait_for(lambda: _ok(srv.url), timeout=30), srv.log()
    assert srv.log().count("HUP received") == 1
    assert srv.stop() == 0


def test_a_command_that_does_not_serve_still_dies_of_term(tmp_path):
    """Holding is for the master: ``korectl config show`` blocked in the app's
    import is ended by TERM as before (the held signal is re-delivered)."""
    from kore_testing import KORECTL
    app = tmp_path / "app.py"
    app.write_text(GATED_APP)
    proc = subprocess.Popen([KORECTL, "config", "show", str(app)], cwd=str(tmp_path),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    try:
        assert wait_for(lambda: (tmp_path / "importing").exists(), timeout=30)
        proc.send_signal(signal.SIGTERM)
        (tmp_path / "go").touch()
        assert proc.wait(60) == -signal.SIGTERM
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)

"""The gunicorn bridge: gunicorn -k kore_http.gunicorn.KoreWorker serves a kore app."""

import os
import signal
import subprocess
import sys
import time

import httpx

from kore_testing import wait_for, wait_port

APP = """
import kore

class App:
    def configure(self, args):
        kore.server("default", ip="127.0.0.1", port="1", tls=False)
        d = kore.domain("*", attach="default")
        d.route("/", self.index, methods=["get"])
        d.route("^/echo/([a-z]+)$", self.echo, methods=["get"])

    def workerstart(self):
        kore.log(kore.LOG_INFO, "kore workerstart under gunicorn")

    async def index(self, req):
        await kore.suspend(5)
        req.response(200, b"worker %d" % kore.worker())

    def echo(self, req, word):
        req.send({"word": word})

koreapp = App()
"""


def _gunicorn_port(logpath, proc, timeout=30):
    """The port gunicorn bound for ``-b 127.0.0.1:0`` (its "Listening at:" line)."""
    import re
    found = []

    def listening():
        m = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)",
                      logpath.read_text(errors="replace"))
        if m:
            found.append(int(m.group(1)))
        return bool(found) or proc.poll() is not None
    assert wait_for(listening, timeout) and found, logpath.read_text(errors="replace")
    return found[0]


def test_gunicorn_worker_class_serves_kore_app(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    env = dict(os.environ, HOME=str(tmp_path), KORE_PLUGINS="http")
    log = open(tmp_path / "gunicorn.log", "wb")
    proc = subprocess.Popen([gunicorn, "-k", "kore_http.gunicorn.KoreWorker", "-w", "2",
                             "-b", "127.0.0.1:0", "--graceful-timeout", "5",
                             "app.py"], cwd=str(tmp_path), env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        port = _gunicorn_port(tmp_path / "gunicorn.log", proc)
        assert wait_port("127.0.0.1", port, 20, proc)
        url = "http://127.0.0.1:%d" % port
        seen = set()
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            r = httpx.get(url + "/", headers={"connection": "close"}, timeout=5)
            assert r.status_code == 200
            seen.add(r.text)
        assert seen <= {"worker 1", "worker 2", "worker 3"} and len(seen) >= 1
        r = httpx.get(url + "/echo/abc", timeout=5)
        assert r.json() == {"word": "abc"}
        assert httpx.get(url + "/missing", timeout=5).status_code == 404
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        text = (tmp_path / "gunicorn.log").read_text()
        assert text.count("kore workerstart under gunicorn") >= 2
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()


def test_gunicorn_worker_boot_failure_stops_gunicorn_with_the_reason(tmp_path):
    """The bridge runs kore's worker lifecycle: koreapp.workerstart() raising
    is reported and ends the worker with APP_LOAD_ERROR, on which gunicorn's
    arbiter halts (exit 4) instead of respawning it forever."""
    (tmp_path / "app.py").write_text(APP.replace(
        '        kore.log(kore.LOG_INFO, "kore workerstart under gunicorn")',
        '        raise RuntimeError("no database today")'))
    gunicorn = os.path.join(os.path.dirname(sys.executable), "gunicorn")
    env = dict(os.environ, HOME=str(tmp_path), KORE_PLUGINS="http")
    log = open(tmp_path / "gunicorn.log", "wb")
    proc = subprocess.Popen([gunicorn, "-k", "kore_http.gunicorn.KoreWorker", "-w", "1",
                             "-b", "127.0.0.1:0", "app.py"], cwd=str(tmp_path),
                            env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        assert proc.wait(60) == 4
        text = (tmp_path / "gunicorn.log").read_text()
        assert ("worker 1 failed to boot: koreapp.workerstart() raised RuntimeError: "
                "no database today") in text, text
        assert "App failed to load" in text, text
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)
        log.close()

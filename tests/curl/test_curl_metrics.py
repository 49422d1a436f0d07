"""kore-plugin-curl's metrics (the kore_metrics_collect hook), in process
against a loopback upstream: transfers in flight and ended by outcome."""

import shutil
import subprocess

import gevent
import pytest

from kore_curl import httpclient, plugin
from kore_testing import free_port, gevent_wait_for

pytestmark = pytest.mark.timeout(60)


def _collect():
    from kore_metrics.store import Samples
    s = Samples()
    plugin.kore_metrics_collect(samples=s)
    return s


def _done(s, outcome):
    return s.values[("kore_curl_requests_total", (("outcome", outcome),))]


def test_in_flight_and_outcomes(run, upstream, setting):
    before = {o: _done(_collect(), o) for o in ("ok", "error", "timeout")}

    async def get(path):
        return await httpclient(upstream.url + path).get()
    gs = [gevent.spawn(run, get("/slow?ms=1500"), 20) for _ in range(2)]
    try:
        assert gevent_wait_for(
            lambda: _collect().values[("kore_curl_requests_in_flight", ())] == 2, 10)
    finally:
        gevent.joinall(gs, raise_error=True, timeout=20)
    assert _collect().values[("kore_curl_requests_in_flight", ())] == 0

    async def failing(url):
        with pytest.raises(RuntimeError):
            await httpclient(url).get()
    run(failing("http://127.0.0.1:%d/" % free_port()))     # connection refused
    setting("curl_timeout", 1)
    run(failing(upstream.url + "/slow?ms=5000"))
    s = _collect()
    assert _done(s, "ok") - before["ok"] == 2
    assert _done(s, "error") - before["error"] == 1
    assert _done(s, "timeout") - before["timeout"] == 1

    from kore_metrics.exposition import render
    exe = shutil.which("promtool")
    assert exe, "promtool missing (Debian package prometheus)"
    p = subprocess.run([exe, "check", "metrics"], input=render(s.families, s.values),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr

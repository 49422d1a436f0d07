"""The status page from the master's --metrics-bind listener: JSON and
HTML with stub_status totals and one row per worker, no environment dump,
the allow-list (403 outside it), and the page rendered in headless
Chromium with a screenshot."""

import json
import os

import httpx
import pytest

from kore.config import ConfigError
from kore_metrics import status
from kore_testing import KoreServer, free_port
from metrics_util import get_close

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, "apps", "app.py")
SECRET = "s3cr3t-status-env-value"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("status")
    mport = free_port()
    s = KoreServer(tmp, APP, workers=2, env={"STATUS_TEST_SECRET": SECRET},
                   args=["--metrics-bind", "127.0.0.1:%d" % mport])
    s.wait_ready(2)
    s.mport = mport
    s.status = "http://127.0.0.1:%d/status" % mport
    yield s
    s.cleanup()


def test_json_totals_and_a_row_per_worker(srv):
    for i in range(40):
        assert get_close(srv.port, "/hello")[0] == 200
    r = httpx.get(srv.status + "?format=json", timeout=10)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    doc = r.json()
    assert doc["workers"] == 2 and doc["workers_ready"] == 2
    assert doc["requests"] >= 40 and doc["accepts"] >= 40
    pids = sorted(srv.children())
    rows = doc["worker"]
    assert sorted(w["pid"] for w in rows) == pids
    assert sorted(w["id"] for w in rows) == [1, 2]
    # nothing retired yet: the rows add up to the totals
    assert sum(w["requests"] for w in rows) == doc["requests"]
    for w in rows:
        assert w["state"] == "ready" and w["rss_bytes"] > 10 * 1048576
        assert w["cpu_percent"] is not None and w["cpu_percent"] >= 0
        assert w["connections"] >= 0
    assert doc["active_connections"] == sum(w["connections"] for w in rows)
    assert doc["master_pid"] == srv.pid and doc["respawns"] == {}
    assert SECRET not in r.text and "STATUS_TEST_SECRET" not in r.text
    # Accept: application/json works too
    r = httpx.get(srv.status, headers={"Accept": "application/json"}, timeout=10)
    assert r.json()["workers"] == 2


def test_html_has_no_environment(srv):
    r = httpx.get(srv.status, timeout=10)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.text.count("<tr><td>") == 2 and "Active connections:" in r.text
    assert SECRET not in r.text and "STATUS_TEST_SECRET" not in r.text
    assert httpx.post(srv.status, timeout=10).status_code == 405


def test_allow_list():
    nets = status.networks(["127.0.0.0/8", "::1", "10.1.0.0/16"])
    assert status.allowed("127.0.0.1", nets) and status.allowed("::1", nets)
    assert status.allowed("::ffff:10.1.2.3", nets) and status.allowed("10.1.9.9", nets)
    assert not status.allowed("10.2.0.1", nets) and not status.allowed("203.0.113.9", nets)
    assert not status.allowed("", nets) and not status.allowed("unix:/x", nets)
    got = {}

    def start_response(st, headers):
        got["status"] = st
    body = status.answer(None, {"REMOTE_ADDR": "203.0.113.9", "REQUEST_METHOD": "GET"},
                         start_response, nets)
    assert got["status"].startswith("403") and b"status_allow" in body[0]
    with pytest.raises(ConfigError) as ei:
        status.networks(["10.0.0.0/33"])
    assert "status_allow" in str(ei.value)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_status_page_in_chromium(srv, tmp_path):
    from cdp import CHROMIUM, Browser
    if CHROMIUM is None:
        pytest.fail("chromium is not installed (plugins/metrics/system-packages.txt; "
                    "scripts/setup.sh --tests)")
    shot = tmp_path / "status.png"

    async def look(cdp):
        s = await cdp.open(srv.status)
        await cdp.wait(s, "document.querySelectorAll('#workers tbody tr').length == 2")
        cells = await cdp.eval(s, "[...document.querySelectorAll('#workers tbody tr')]"
                                  ".map(r => [...r.cells].map(c => c.textContent))")
        totals = await cdp.eval(s, "document.getElementById('totals').textContent")
        await cdp.screenshot(s, shot)
        return cells, totals

    profile = tmp_path / "profile"
    profile.mkdir()
    with Browser(profile) as b:
        cells, totals = b.run(look)
    assert sorted(int(c[1]) for c in cells) == sorted(srv.children())
    assert all(c[2] == "ready" and c[5].endswith("MiB") for c in cells)
    assert "Active connections:" in totals and "workers 2 (ready 2)" in totals
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000

"""/metrics from the master over real sockets: one ``korectl run`` with two
workers shared by the module.  Exact totals across workers, a SIGKILLed
worker's counters kept, respawns by reason, promtool, the health paths and
their absence from the JSON access log."""

import json
import os
import signal

import httpx
import pytest

from kore_testing import KoreServer, every_worker, wait_for
from metrics_util import get_close, metrics_port, promtool_check, scrape, total

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, "apps", "app.py")
REQ = "kore_http_server_requests_total"
ITEM = "^/item/[0-9]+$"


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("metrics")
    flag = tmp / "not-ready"
    s = KoreServer(tmp, APP, workers=2, env={"METRICS_READY_FLAG": str(flag)},
                   args=["--metrics-bind", "127.0.0.1:0",
                         "--access-log", str(tmp / "access.json"),
                         "--access-log-format", "json"])
    s.wait_ready(2)
    s.mport = metrics_port(s)
    s.flag = flag
    s.access = tmp / "access.json"
    yield s
    s.cleanup()


def test_exact_totals_across_workers_and_a_sigkill(srv):
    before = total(scrape(srv.mport), REQ, http_route=ITEM)
    # separate connections so the kernel spreads them over both workers
    for i in range(1000):
        assert get_close(srv.port, "/item/%d" % i)[0] == 200
    text = scrape(srv.mport)
    assert total(text, REQ, http_route=ITEM) - before == 1000
    assert total(text, "kore_http_server_request_duration_seconds_count",
                 http_route=ITEM) - before == 1000
    assert total(text, "kore_http_server_request_duration_seconds_bucket",
                 http_route=ITEM, le="+Inf") - before == 1000
    crashes = total(text, "kore_worker_respawns_total", reason="crash")
    pids = set(every_worker(lambda: (int(get_close(srv.port, "/pid")[1]), None)))
    assert len(pids) == 2, "both workers answered"
    victim = sorted(pids)[0]
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: victim not in srv.children()
                    and len(srv.children()) == 2, 20)
    assert wait_for(lambda: total(scrape(srv.mport), "kore_workers", state="ready") == 2, 20)
    text = scrape(srv.mport)
    # the dead worker's requests are still counted
    assert total(text, REQ, http_route=ITEM) - before == 1000
    assert total(text, "kore_worker_respawns_total", reason="crash") == crashes + 1
    for i in range(500):
        assert get_close(srv.port, "/item/%d" % i)[0] == 200
    text = scrape(srv.mport)
    assert total(text, REQ, http_route=ITEM) - before == 1500
    assert total(text, "kore_worker_starts_total") >= 3
    promtool_check(text)


def test_promtool_and_labels(srv):
    httpx.get(srv.url + "/hello", timeout=10)
    httpx.get(srv.url + "/nope", timeout=10)
    httpx.request("BREW", srv.url + "/hello", timeout=10)
    text = scrape(srv.mport)
    promtool_check(text)
    assert total(text, REQ, http_route="/hello", http_request_method="GET",
                 http_response_status_code="200") >= 1
    # no route: a bounded label, never the raw path
    assert "/nope" not in text
    assert total(text, REQ, http_route="_OTHER", http_response_status_code="404") >= 1
    assert 'le="0.005"' in text and 'le="10.0"' in text
    assert "kore_http_server_active_connections" in text


def test_metrics_listener_only_serves_metrics(srv):
    r = httpx.get("http://127.0.0.1:%d/" % srv.mport, timeout=10)
    assert r.status_code == 404
    r = httpx.post("http://127.0.0.1:%d/metrics" % srv.mport, timeout=10)
    assert r.status_code == 405


def test_health_and_readiness(srv):
    r = httpx.get(srv.url + "/healthz", timeout=10)
    assert r.status_code == 200 and r.json() == {"status": "pass"}
    assert r.headers["content-type"] == "application/health+json"
    assert httpx.get(srv.url + "/readyz", timeout=10).status_code == 200
    srv.flag.write_text("x")
    try:
        for _ in range(10):     # every worker says so
            status, body = get_close(srv.port, "/readyz")
            assert status == 503
            assert json.loads(body)["output"] == "database unreachable"
            assert get_close(srv.port, "/healthz")[0] == 200
    finally:
        srv.flag.unlink()
    assert httpx.get(srv.url + "/readyz", timeout=10).status_code == 200


def test_health_paths_not_in_access_log(srv):
    httpx.get(srv.url + "/healthz", timeout=10)
    httpx.get(srv.url + "/readyz", timeout=10)
    httpx.get(srv.url + "/hello?mark=1", timeout=10)

    def logged():
        lines = srv.access.read_text().splitlines() if srv.access.exists() else []
        return [json.loads(l) for l in lines]
    assert wait_for(lambda: any("mark=1" in json.dumps(r) for r in logged()), 10)
    text = srv.access.read_text()
    assert "/healthz" not in text and "/readyz" not in text


def test_websocket_connections(srv):
    import asyncio
    import websockets

    def ws_values():
        text = scrape(srv.mport)
        return (total(text, "kore_websocket_connections"),
                total(text, "kore_websocket_connections_total"), text)

    open_before, accepted_before, _ = ws_values()

    async def go():
        url = "ws://127.0.0.1:%d/ws" % srv.port
        conns = [await websockets.connect(url) for _ in range(3)]
        for c in conns:
            await c.send("ping")
            assert await asyncio.wait_for(c.recv(), 10) == "ping"
        # the master asks the workers for fresh snapshots before a scrape
        loop = asyncio.get_running_loop()
        opened = await loop.run_in_executor(None, ws_values)
        for c in conns:
            await c.close()
        return opened
    o, a, text = asyncio.run(asyncio.wait_for(go(), 30))
    assert o - open_before == 3
    assert a - accepted_before == 3
    promtool_check(text)
    assert wait_for(lambda: ws_values()[0] == open_before, 20)
    # a closed connection stays counted as accepted
    assert ws_values()[1] - accepted_before == 3


def test_requests_counted_only_when_something_reads_the_counts(srv, tmp_path):
    # with --metrics-bind (srv), every worker counts through the plugin's hook
    for _ in range(4):
        assert get_close(srv.port, "/counting") == (200, b"True kore-plugin-metrics.counting")
    # without a listener or --max-requests nothing can read the counts: the
    # plugin implements no kore_request_done (no cost per request)
    plain = KoreServer(_dir(tmp_path, "plain"), APP, workers=1)
    try:
        plain.wait_ready(1)
        assert get_close(plain.port, "/counting") == (200, b"False -")
    finally:
        plain.cleanup()
    # --max-requests alone counts (a worker needs its own count to recycle)
    mr = KoreServer(_dir(tmp_path, "mr"), APP, workers=1, args=["--max-requests", "1000"])
    try:
        mr.wait_ready(1)
        assert get_close(mr.port, "/counting") == (200, b"True kore-plugin-metrics.counting")
    finally:
        mr.cleanup()


def _dir(tmp, name):
    d = tmp / name
    d.mkdir()
    return d

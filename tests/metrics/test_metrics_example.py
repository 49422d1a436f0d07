"""examples/metrics runs under korectl as shipped."""

import json
import os

import httpx

from kore_testing import wait_for
from metrics_util import metrics_port, promtool_check, scrape, total

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EX = os.path.join(ROOT, "examples", "metrics")


def test_example(kore_server, tmp_path):
    access = tmp_path / "access.log"
    srv = kore_server(os.path.join(EX, "app.py"), workers=2, bind=False,
                      env={"PORT": "0", "MAINTENANCE_FILE": str(tmp_path / "mnt")},
                      args=["--metrics-bind", "127.0.0.1:0",
                            "--access-log", str(access), "--access-log-format", "json"])
    port, mport = srv.listen_port("default"), metrics_port(srv)
    base = "http://127.0.0.1:%d" % port
    for i in range(10):
        assert httpx.get("%s/item/%d" % (base, i), timeout=10).status_code == 200
    assert httpx.get(base + "/static/site.css", timeout=10).status_code == 200
    text = scrape(mport)
    promtool_check(text)
    assert total(text, "kore_http_server_requests_total", http_route="^/item/[0-9]+$") == 10
    assert wait_for(lambda: httpx.get(base + "/readyz", timeout=10).status_code == 200, 10)
    (tmp_path / "mnt").write_text("")
    assert httpx.get(base + "/readyz", timeout=10).status_code == 503
    assert httpx.get(base + "/healthz", timeout=10).status_code == 200
    assert wait_for(lambda: access.exists() and access.read_text().count('"url.path":"/item/') == 10, 10)
    log = access.read_text()
    assert "site.css" not in log and "/readyz" not in log
    rec = json.loads(log.splitlines()[0])
    assert rec["url.path"].startswith("/item/") and rec["http.response.status_code"] == 200
    st = httpx.get("http://127.0.0.1:%d/status?format=json" % mport, timeout=10).json()
    assert st["workers"] == 2 and st["requests"] >= 10 and len(st["worker"]) == 2

"""Reloads lose nothing: 20 keep-alive clients loop GET and POST through 10
HUP reloads and every request gets its answer (an idle keep-alive
connection of a retiring worker answers a request already on its way with
Connection: close instead of closing under it)."""

import signal
import threading
import time

import httpx
import pytest

APP = """
import kore

kore.server("default", ip="127.0.0.1", port="1", tls=False)
d = kore.domain("*")

def index(req):
    req.response(200, b"ok")

def post(req):
    req.response(200, req.body)

d.route("/", index, methods=["get"])
d.route("/post", post, methods=["post"])
"""


@pytest.mark.slow
def test_keepalive_clients_lose_nothing_across_reloads(kore_server):
    srv = kore_server(APP, workers=2)
    srv.wait_ready(2)
    stop = threading.Event()
    stats = {"ok": 0, "fail": []}
    lock = threading.Lock()

    def client(n):
        body = b"x" * (100 + n)
        with httpx.Client(timeout=10) as c:
            while not stop.is_set():
                try:
                    r = c.get(srv.url + "/")
                    ok = r.status_code == 200 and r.text == "ok"
                    r2 = c.post(srv.url + "/post", content=body)
                    ok = ok and r2.status_code == 200 and r2.content == body
                    with lock:
                        if ok:
                            stats["ok"] += 2
                        else:
                            stats["fail"].append((r.status_code, r2.status_code))
                except Exception as exc:
                    with lock:
                        stats["fail"].append(repr(exc))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    try:
        for i in range(10):
            # every reload happens under traffic: requests were answered
            # since the previous one (a condition, not a throughput figure)
            seen = stats["ok"]
            deadline = time.monotonic() + 30
            while stats["ok"] < seen + 20:
                assert time.monotonic() < deadline, (stats, srv.log()[-3000:])
                time.sleep(0.02)
            done = srv.log().count("reload complete")
            srv.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 30
            while srv.log().count("reload complete") <= done:
                assert time.monotonic() < deadline, srv.log()[-3000:]
                time.sleep(0.05)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    assert stats["fail"] == [], stats["fail"][:5]
    assert stats["ok"] >= 200
    assert srv.stop() == 0


SLOW_APP = """
import kore

kore.server("default", ip="127.0.0.1", port="1", tls=False)
d = kore.domain("*")

async def slow(req):
    open(kore.config.http_body_disk_path + "/started", "w").close()
    await kore.suspend(4000)
    req.response(200, b"slow done")

d.route("/slow", slow, methods=["get"])
"""


def test_term_drain_refuses_new_connections_and_finishes_inflight(kore_server, tmp_path):
    import socket
    srv = kore_server(SLOW_APP, workers=2, env={"KORE_HTTP_BODY_DISK_PATH": str(tmp_path)})
    srv.wait_ready(2)
    result = {}

    def slow():
        try:
            result["r"] = httpx.get(srv.url + "/slow", timeout=15)
        except Exception as exc:      # recorded and asserted below
            result["e"] = exc

    t = threading.Thread(target=slow)
    t.start()
    from kore_testing import wait_for
    assert wait_for((tmp_path / "started").exists, timeout=10)
    srv.send_signal(signal.SIGTERM)
    assert srv.wait_log("TERM received")

    def refused():
        try:
            socket.create_connection(("127.0.0.1", srv.port), timeout=2).close()
            return False
        except ConnectionRefusedError:
            return True
    # refused while the in-flight request is still running (it sleeps 4 s)
    assert wait_for(refused, timeout=3)
    assert t.is_alive() and srv.proc.poll() is None
    t.join(15)
    assert "e" not in result, result.get("e")
    assert result["r"].status_code == 200 and result["r"].text == "slow done"
    assert srv.proc.wait(15) == 0

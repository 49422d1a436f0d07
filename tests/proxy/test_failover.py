"""Fail-over under load (an upstream SIGKILLed mid-run) and active health
checks taking a node out and back in, with a log line each time."""

import http.client
import os
import threading
import time

import pytest

from kore_testing import wait_for
from px_util import get, start_proxy, start_upstream

APP = '''
import os
import kore

A, B, C, D = os.environ["UPS"].split(",")
kore.alias("@lb", kore.PROTO_HTTP, [A, B], fail_timeout=30)
kore.alias("@hc", kore.PROTO_HTTP, [C, D], health="/healthz", health_interval=0.3,
           fall=2, rise=2)
kore.mount("/lb", "@lb")
kore.mount("/hc", "@hc")
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    health = tmp_path_factory.mktemp("health") / "c-ok"
    health.write_text("ok")
    ups = {"a": start_upstream(tmp_path_factory, "a"),
           "b": start_upstream(tmp_path_factory, "b"),
           "c": start_upstream(tmp_path_factory, "c", env={"HEALTH_FILE": str(health)}),
           "d": start_upstream(tmp_path_factory, "d")}
    spec = ",".join("127.0.0.1:%d" % ups[k].port for k in "abcd")
    p = start_proxy(tmp_path_factory, APP, env={"UPS": spec})
    ups["proxy"] = p
    ups["health"] = health
    yield ups
    p.cleanup()
    for k in "abcd":
        ups[k].cleanup()


def test_killing_one_of_two_upstreams_under_load_loses_no_get(env):
    port = env["proxy"].port
    stop = threading.Event()
    results = {"ok": 0, "bad": [], "nodes": set()}
    lock = threading.Lock()

    def client():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        deadline = time.monotonic() + 60
        try:
            while not stop.is_set() and time.monotonic() < deadline:
                c.request("GET", "/lb/load")
                r = c.getresponse()
                body = r.read()
                with lock:
                    if r.status == 200:
                        results["ok"] += 1
                        results["nodes"].add(dict(r.getheaders()).get("X-Node"))
                    else:
                        results["bad"].append((r.status, body[:80]))
        except Exception as exc:
            with lock:
                results["bad"].append(repr(exc))
        finally:
            c.close()
    ts = [threading.Thread(target=client) for _ in range(8)]
    for t in ts:
        t.start()
    assert wait_for(lambda: results["ok"] >= 300 and results["nodes"] == {"a", "b"},
                    timeout=30)
    env["b"].kill()                       # SIGKILL, mid-run
    n = results["ok"]
    assert wait_for(lambda: results["ok"] >= n + 1000, timeout=60)
    stop.set()
    for t in ts:
        t.join(30)
    assert results["bad"] == []
    assert env["proxy"].wait_log("proxy @lb: 127.0.0.1:%d is down" % env["b"].port)


def test_active_health_check_takes_a_node_out_and_back(env):
    port = env["proxy"].port
    c_port = env["c"].port
    env["health"].unlink()
    assert env["proxy"].wait_log("proxy @hc: 127.0.0.1:%d is down (health check failed"
                                 % c_port, timeout=15)
    for _ in range(20):
        status, headers, _ = get(port, "/hc/x")
        assert status == 200 and dict(headers)["X-Node"] == "d"
    env["health"].write_text("ok")
    assert env["proxy"].wait_log("proxy @hc: 127.0.0.1:%d is up (health check passed"
                                 % c_port, timeout=15)
    nodes = {dict(get(port, "/hc/x")[1])["X-Node"] for _ in range(10)}
    assert nodes == {"c", "d"}

"""Upstream connections: keep-alive pool bounds, idle closes, what is
retried after a request was sent, and smuggling shapes never forwarded.
The upstreams are in-process HTTP/1.1 servers that count connections."""

import http.client
import os
import sys
import threading

import pytest

from kore_testing import wait_for
from px_util import CountingUpstream, get, start_proxy

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "http"))
from test_corpus import CORPUS  # noqa: E402

APP = '''
import os
import kore

POOL, IDLE, DROP, OK, SMUG = os.environ["UPS"].split(",")
kore.alias("@pool", kore.PROTO_HTTP, [POOL], keepalive=4)
kore.alias("@idle", kore.PROTO_HTTP, [IDLE], idle_timeout=60)
kore.alias("@post", kore.PROTO_HTTP, [DROP, OK], fail_timeout=60)
kore.alias("@get", kore.PROTO_HTTP, [DROP, OK], max_fails=0)
kore.alias("@smug", kore.PROTO_HTTP, [SMUG])
kore.mount("/pool", "@pool")
kore.mount("/idle", "@idle")
kore.mount("/post", "@post")
kore.mount("/get", "@get")
kore.mount("/", "@smug")
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    ups = {"pool": CountingUpstream("pool"), "idle": CountingUpstream("idle", idle=0.3),
           "drop": CountingUpstream("drop", mode="drop"), "ok": CountingUpstream("ok"),
           "smug": CountingUpstream("smug")}
    spec = ",".join("127.0.0.1:%d" % ups[k].port
                    for k in ("pool", "idle", "drop", "ok", "smug"))
    p = start_proxy(tmp_path_factory, APP, env={"UPS": spec})
    ups["proxy"] = p
    yield ups
    p.cleanup()
    for k in ("pool", "idle", "drop", "ok", "smug"):
        ups[k].close()


def test_10000_gets_use_at_most_the_pool_size(env):
    port = env["proxy"].port
    errors = []

    def client():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for _ in range(2500):
                c.request("GET", "/pool/x")
                r = c.getresponse()
                r.read()
                if r.status != 200:
                    errors.append(r.status)
        except Exception as exc:
            errors.append(repr(exc))
        finally:
            c.close()
    ts = [threading.Thread(target=client) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors
    assert len(env["pool"].requests) == 10000
    assert env["pool"].connections <= 4, env["pool"].connections


def test_idle_upstream_close_is_no_client_error(env):
    port = env["proxy"].port
    up = env["idle"]
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for i in range(5):
        c.request("GET", "/idle/%d" % i)
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"idle GET /%d" % i
        # the upstream drops the pooled connection while it is idle
        assert wait_for(lambda: up.closed >= i + 1, timeout=10)
    c.close()
    assert up.connections == 5


def test_sent_post_is_not_retried_but_get_and_put_are(env):
    port = env["proxy"].port
    drop, ok = env["drop"], env["ok"]
    status, _, body = get(port, "/post/once", method="POST", body=b"payload")
    assert status == 502, body
    assert [r[1] for r in drop.requests] == ["/once"]
    assert not ok.requests                      # never sent twice
    status, _, body = get(port, "/get/g")
    assert status == 200 and body == b"ok GET /g"
    assert ("GET", "/g") in [(r[0], r[1]) for r in drop.requests]
    status, _, body = get(port, "/get/p", method="PUT", body=b"abc")
    if ("PUT", "/p") in [(r[0], r[1]) for r in drop.requests]:
        assert status == 200 and ok.requests[-1][3] == b"abc"   # replayed body
    else:
        assert status == 200 and body == b"ok PUT /p"


@pytest.mark.parametrize("name,raw,status", [(c[0], c[1], c[2]) for c in CORPUS
                                              if c[2] >= 400 and c[3]])
def test_rejected_shapes_are_never_forwarded(env, name, raw, status):
    import socket
    before = len(env["smug"].requests)
    s = socket.create_connection(("127.0.0.1", env["proxy"].port), timeout=10)
    try:
        s.sendall(raw)
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    assert buf.startswith(b"HTTP/1.1 %d" % status), (name, buf[:80])
    assert len(env["smug"].requests) == before, env["smug"].requests[before:]

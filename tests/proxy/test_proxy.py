"""kore.alias / kore.mount through real processes: two kore upstreams, one
kore proxy (shared by the module), real sockets."""

import hashlib
import http.client
import json
import os
import re
import socket
import time

import pytest

from kore_testing import wait_for
from px_util import get, start_proxy, start_upstream

PROXY_APP = '''
import json
import os
import kore

A, B, DEAD1, DEAD2 = os.environ["UPS"].split(",")
kore.alias("@api", kore.PROTO_HTTP, [A + " 2", B + " 1"])
kore.alias("@rw", kore.PROTO_HTTP, [A], host_header="upstream")
kore.alias("@slow", kore.PROTO_HTTP, [A], read_timeout=0.5)
kore.alias("@dead", kore.PROTO_HTTP, [DEAD1, DEAD2], connect_timeout=1)
kore.alias("@half", kore.PROTO_HTTP, [DEAD1, A], connect_timeout=1, fail_timeout=30)
kore.mount("/api", "@api")
kore.mount("/v", "@api/v1")
kore.mount("/api/deep", "@api/deeper")
kore.mount("/rw", "@rw")
kore.mount("/t", "@slow")
kore.mount("/dead", "@dead")
kore.alias("@lc", kore.PROTO_HTTP, [A, B], policy="least_conn")
kore.mount("/half", "@half")
kore.mount("/lc", "@lc")

def wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"wsgi " + environ["PATH_INFO"].encode()]

kore.mount("/wsgi", wsgi)

@kore.route("/local", methods=["get"])
def local(req):
    req.response(200, b"local")


@kore.route("/lb", methods=["get"])
async def lb(req):
    nodes = []
    for i in range(6):
        status, body = await kore.httpclient("@api/lb?i=%d" % i).get()
        nodes.append(json.loads(body)["node"])
    status, body = await kore.httpclient("@half/p").post(b"abc")
    nodes.append(json.loads(body)["node"])
    req.response(200, json.dumps(nodes).encode())


@kore.route("/map", methods=["get"])
async def map_(req):
    out = []
    for name in ("@api", "@half"):
        res = await kore.httpclient(name + "/m").map("get")
        out.append([json.loads(r[1])["node"] if isinstance(r, tuple) else
                    "error: %s" % r for r in res])
    req.response(200, json.dumps(out).encode())
'''


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    a = start_upstream(tmp_path_factory, "a")
    b = start_upstream(tmp_path_factory, "b")
    # dead upstreams: ports held by bound sockets that never listen, so a
    # connection is refused for as long as the module runs (a port merely
    # free when picked could be taken by another process)
    holders = [socket.socket() for _ in range(2)]
    for h in holders:
        h.bind(("127.0.0.1", 0))
    dead1, dead2 = (h.getsockname()[1] for h in holders)
    ups = ",".join(["127.0.0.1:%d" % a.port, "127.0.0.1:%d" % b.port,
                    "127.0.0.1:%d" % dead1, "127.0.0.1:%d" % dead2])
    p = start_proxy(tmp_path_factory, PROXY_APP,
                    env={"UPS": ups, "KORE_HTTP_BODY_MAX": str(300 * 1024 * 1024),
                         "KORE_HTTP_BODY_TIMEOUT": "120"})
    yield {"a": a, "b": b, "proxy": p}
    for s in (p, a, b):
        s.cleanup()
    for h in holders:
        h.close()


def echo(port, path, **kw):
    status, headers, body = get(port, path, **kw)
    assert status == 200, (status, body)
    return json.loads(body), dict((k.lower(), v) for k, v in headers)


def test_prefix_stripped_and_base_prepended(env):
    port = env["proxy"].port
    assert echo(port, "/api/x?q=1")[0]["target"] == "/x?q=1"
    assert echo(port, "/api")[0]["target"] == "/"
    assert echo(port, "/v/x")[0]["target"] == "/v1/x"
    assert echo(port, "/api/deep/y")[0]["target"] == "/deeper/y"   # longest prefix wins
    assert echo(port, "/api/deeper")[0]["target"] == "/deeper"      # not a path prefix
    # beside Kore routes and WSGI mounts on the same domain
    assert get(port, "/local")[2] == b"local"
    assert get(port, "/wsgi/z")[2] == b"wsgi /z"
    assert get(port, "/nothing")[0] == 404


def test_weighted_shares_within_ten_percent(env):
    port = env["proxy"].port
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    counts = {"a": 0, "b": 0}
    for _ in range(300):
        c.request("GET", "/api/share")
        r = c.getresponse()
        counts[json.loads(r.read())["node"]] += 1
    c.close()
    assert abs(counts["a"] - 200) <= 20 and abs(counts["b"] - 100) <= 10, counts


def test_forwarded_headers_and_hop_by_hop(env):
    port = env["proxy"].port
    body, rh = echo(port, "/api/h", headers={
        "Connection": "keep-alive, X-Private", "X-Private": "1", "TE": "trailers",
        "Keep-Alive": "300", "Proxy-Authorization": "Basic x",
        "X-Forwarded-For": "203.0.113.7", "X-Other": "kept"})
    hs = dict(body["headers"])
    for gone in ("x-private", "te", "keep-alive", "proxy-authorization", "connection"):
        assert gone not in hs, gone
    assert hs["x-other"] == "kept"
    # the test client is on loopback, which --forwarded-allow-ips trusts by default
    assert hs["x-forwarded-for"] == "203.0.113.7, 127.0.0.1"
    assert hs["x-forwarded-proto"] == "http"
    assert hs["x-forwarded-host"] == "127.0.0.1:%d" % port
    assert hs["host"] == "127.0.0.1:%d" % port                  # preserved
    # the upstream's hop-by-hop response headers are gone, Vary and Age pass
    assert "x-secret" not in rh and "keep-alive" not in rh
    assert rh["vary"] == "Accept-Encoding" and rh["age"] == "7"
    _, hl, _ = get(port, "/api/date")
    dates = [v for k, v in hl if k.lower() == "date"]
    assert dates == ["Mon, 01 Jan 2024 00:00:00 GMT"]           # the upstream's, alone
    assert rh["x-node"] in ("a", "b")


def test_upstream_connection_close_is_followed(env):
    c = http.client.HTTPConnection("127.0.0.1", env["proxy"].port, timeout=30)
    for _ in range(3):
        c.request("GET", "/rw/close")
        r = c.getresponse()
        assert r.status == 200 and r.read() == b"a"
        assert r.getheader("Connection") is None       # the client's stays open
    c.close()


def test_host_rewrite_option(env):
    body, _ = echo(env["proxy"].port, "/rw/x", headers={"Host": "public.example"})
    hs = dict(body["headers"])
    assert hs["host"] == "127.0.0.1:%d" % env["a"].port
    assert hs["x-forwarded-host"] == "public.example"


def test_post_body_and_chunked_request_are_reframed(env):
    port = env["proxy"].port
    data = os.urandom(200000)                       # above retry_body_max: streamed
    body, _ = echo(port, "/api/post", method="POST", body=data,
                   headers={"Content-Type": "application/octet-stream"})
    assert body["size"] == len(data)
    assert body["sha256"] == hashlib.sha256(data).hexdigest()
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(b"POST /api/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    buf = b""
    while b"}" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
    s.close()
    res = json.loads(buf.split(b"\r\n\r\n", 1)[1])
    hs = dict(res["headers"])
    assert res["size"] == 11 and hs["transfer-encoding"] == "chunked"
    assert "content-length" not in hs


def test_all_nodes_down_is_502_and_timeout_is_504(env):
    port = env["proxy"].port
    status, _, body = get(port, "/dead/x")
    assert status == 502 and body.startswith(b"502")
    t0 = time.monotonic()
    status, _, body = get(port, "/t/slow?s=3")
    assert status == 504, body
    assert time.monotonic() - t0 < 2.5
    assert env["proxy"].wait_log("-> 504")


def test_connect_failure_goes_to_the_next_node_even_for_post(env):
    port = env["proxy"].port
    for i in range(6):
        body, _ = echo(port, "/half/p", method="POST", body=b"abc")
        assert body["node"] == "a" and body["size"] == 3
    assert env["proxy"].wait_log("is down (1 failure")


def test_large_download_and_upload_stream_with_bounded_memory(env):
    port = env["proxy"].port
    worker = env["proxy"].children()[0]
    n = 100 * 1024 * 1024
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("GET", "/api/big?n=%d" % n)
    r = c.getresponse()
    assert r.status == 200
    got = 0
    while True:
        chunk = r.read(1 << 20)
        if not chunk:
            break
        got += len(chunk)
    assert got == n

    def gen():
        block = b"u" * (1 << 20)
        for _ in range(100):
            yield block
    c.request("POST", "/api/upload", body=gen(), headers={"Transfer-Encoding": "chunked"},
              encode_chunked=True)
    r = c.getresponse()
    res = json.loads(r.read())
    assert res["size"] == n
    assert res["sha256"] == hashlib.sha256(b"u" * n).hexdigest()
    c.close()
    with open("/proc/%d/status" % worker) as f:
        hwm = int(re.search(r"VmHWM:\s+(\d+) kB", f.read()).group(1))
    assert hwm < 90 * 1024, "proxy worker peak RSS %d kB" % hwm


def test_websocket_through_the_proxy(env):
    from websockets.sync.client import connect
    with connect("ws://127.0.0.1:%d/api/ws" % env["proxy"].port, open_timeout=10) as ws:
        for i in range(20):
            ws.send("hello %d" % i)
            assert ws.recv(timeout=10) == "hello %d" % i
        big = os.urandom(300000)
        ws.send(big)
        assert ws.recv(timeout=10) == big


def test_httpclient_through_an_alias_balances_and_fails_over(env):
    status, _, body = get(env["proxy"].port, "/lb")
    assert status == 200, body
    nodes = json.loads(body)
    assert sorted(nodes[:6]) == ["a", "a", "a", "a", "b", "b"]     # weights 2:1
    assert nodes[6] == "a"          # @half's first node refuses: the next one


def test_httpclient_map_asks_every_node_in_order(env):
    status, _, body = get(env["proxy"].port, "/map")
    assert status == 200, body
    api, half = json.loads(body)
    assert api == ["a", "b"]
    assert half[0].startswith("error: connect") and half[1] == "a"


def test_client_leaving_mid_request_frees_the_upstream_slot(env):
    port = env["proxy"].port
    socks = []
    for _ in range(3):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /lc/slow?s=1 HTTP/1.1\r\nHost: x\r\n\r\n")
        socks.append(s)
    # the three reach the nodes (least_conn puts two on one) or are abandoned
    # on the way: either way the in-flight counts must come back to zero
    for s in socks:
        s.close()

    def balanced():
        nodes = [echo(port, "/lc/x")[0]["node"] for _ in range(4)]
        return sorted(nodes) == ["a", "a", "b", "b"]
    # with a leaked in-flight count, least_conn would send everything to one node
    assert wait_for(balanced, timeout=10)

"""kore.httpclient in-process: a gevent hub, local upstreams, no korectl."""

import json
import time

import gevent
import pycurl
import pytest

from kore import runtime
from kore.aio import drive
from kore_curl import CONSTANTS as C
from kore_curl import httpclient, multi, plugin

pytestmark = pytest.mark.timeout(30)


def test_plugin_options_declared():
    opts = runtime.registry().options
    assert opts["curl_timeout"].default == 60
    assert opts["curl_recv_max"].default == 2 * 1024 * 1024
    assert opts["curl_timeout"].owner == "kore-plugin-curl"
    assert opts["curl_recv_max"].owner == "kore-plugin-curl"


def test_namespace_names():
    ns = plugin.kore_namespace()
    assert ns["httpclient"] is httpclient
    assert ns["CURLOPT_URL"] == 2
    assert ns["CURLOPT_TIMEOUT"] == 13
    assert ns["CURLOPT_HTTPHEADER"] == 23
    assert ns["CURLOPT_UNIX_SOCKET_PATH"] == 231
    assert ns["CURLOPT_WRITEFUNCTION"] == 11
    assert ns["CURLOPT_ENCODING"] == ns["CURLOPT_ACCEPT_ENCODING"] == 102
    assert sum(1 for k in ns if k.startswith("CURLOPT_")) >= 279


def test_get_status_body(run, upstream):
    async def main():
        return await httpclient(upstream.url + "/").get()
    assert run(main()) == (200, b"ok")


def test_return_headers(run, upstream):
    async def main():
        return await httpclient(upstream.url + "/echo").get(return_headers=True)
    status, headers, body = run(main())
    assert status == 200
    assert headers["content-type"] == "application/json"
    assert headers["x-upstream"] == "yes"
    assert headers["content-length"] == str(len(body))
    assert all(k == k.lower() for k in headers)


def test_status_is_not_an_error(run, upstream):
    async def main():
        return await httpclient(upstream.url + "/status/404").get()
    assert run(main()) == (404, b"status")


def test_methods_and_bodies(run, upstream):
    async def main():
        c = httpclient(upstream.url + "/echo")
        out = {}
        for name in ("get", "head", "options"):
            out[name] = await getattr(c, name)()
        for name in ("put", "post", "patch", "delete"):
            out[name] = await getattr(c, name)(body=b"data-" + name.encode())
        out["delete-nobody"] = await c.delete()
        return out
    out = run(main())
    for name in ("get", "options", "put", "post", "patch", "delete"):
        status, body = out[name]
        doc = json.loads(body)
        assert status == 200
        assert doc["method"] == name.upper()
        if name in ("put", "post", "patch", "delete"):
            assert doc["body"] == "data-" + name
            assert doc["headers"]["content-length"] == str(len("data-" + name))
    assert out["head"] == (200, b"")
    assert upstream.requests[1].method == "HEAD"
    doc = json.loads(out["delete-nobody"][1])
    assert doc["method"] == "DELETE" and doc["body"] == ""


def test_request_headers_agent_and_no_expect(run, upstream):
    async def main():
        c = httpclient(upstream.url + "/echo")
        return await c.post(body=b"x" * 5000, headers={"x-my-header": "async-http",
                                                       "X-Empty": ""})
    status, body = run(main())
    h = json.loads(body)["headers"]
    assert h["x-my-header"] == "async-http"
    assert h["x-empty"] == ""
    assert h["user-agent"].startswith("kore/")
    assert "expect" not in h


def test_argument_errors(run):
    c = httpclient("http://127.0.0.1:9/")
    for method in ("post", "put", "patch"):
        with pytest.raises(RuntimeError, match="body"):
            getattr(c, method)()
    with pytest.raises(TypeError):
        c.post(body="text")
    with pytest.raises(RuntimeError, match="headers keyword must be a dict"):
        c.get(headers=[("a", "b")])
    with pytest.raises(ValueError):
        c.get(headers={"a": "b\r\nInjected: 1"})
    with pytest.raises(RuntimeError, match="curlopt must be a dictionary"):
        c.get(curlopt=[1])
    with pytest.raises(RuntimeError, match="invalid key in curlopt keyword"):
        httpclient("http://x/", curlopt={"timeout": 1})
    with pytest.raises(RuntimeError, match="invalid TLS client configuration"):
        httpclient("https://x/", tlscert="/c.pem")
    with pytest.raises(RuntimeError, match="invalid TLS client configuration"):
        httpclient("https://x/", tlskey="/k.pem")
    with pytest.raises(RuntimeError, match="invalid option '99999'"):
        c.get(curlopt={99999: 1})
    with pytest.raises(RuntimeError, match="requires a long"):
        c.get(curlopt={C["CURLOPT_TIMEOUT"]: "10"})
    with pytest.raises(RuntimeError, match="not implemented"):
        c.get(curlopt={C["CURLOPT_WRITEFUNCTION"]: print})
    # nothing was left behind by the refused requests
    assert multi.get_multi().pending() == 0


def test_connection_refused_message(run):
    from curl_helpers import closed_port
    port = closed_port()
    url = "http://127.0.0.1:%d/x" % port

    async def main():
        with pytest.raises(RuntimeError) as info:
            await httpclient(url).get()
        return str(info.value)
    msg = run(main())
    assert msg.startswith("request to '%s' failed: " % url)
    assert "connect" in msg.lower()


def test_one_connection_for_100_sequential_requests(run, upstream):
    async def main():
        for i in range(100):
            # a new client object every time: connections are per worker
            status, body = await httpclient(upstream.url + "/?i=%d" % i).get()
            assert (status, body) == (200, b"ok")
    run(main(), timeout=20)
    assert len(upstream.requests) == 100
    assert upstream.connections == 1


def test_concurrent_slow_requests_do_not_block_the_hub(run, upstream):
    ticks = []

    def ticker():
        while True:
            gevent.sleep(0.05)
            ticks.append(time.monotonic())

    async def one():
        return await httpclient(upstream.url + "/slow?ms=1000").get()

    t = gevent.spawn(ticker)
    start = time.monotonic()
    gs = [gevent.spawn(run, one()) for _ in range(50)]
    gevent.joinall(gs, timeout=10)
    elapsed = time.monotonic() - start
    t.kill()
    assert [g.value for g in gs] == [(200, b"slow")] * 50
    assert elapsed < 8, elapsed     # together: one after another takes 50 s
    # the hub kept running other greenlets while the transfers were in flight
    assert len(ticks) >= int(elapsed / 0.05) // 2
    assert multi.get_multi().pending() == 0


def test_cancelled_transfer_is_removed(run, upstream):
    m = multi.get_multi()

    async def hang():
        return await httpclient(upstream.url + "/hang").get()

    g = gevent.spawn(drive, hang())
    deadline = time.monotonic() + 5
    while not upstream.requests and time.monotonic() < deadline:
        gevent.sleep(0.02)
    assert m.pending() == 1
    g.kill()
    assert m.pending() == 0
    deadline = time.monotonic() + 5
    while not upstream.aborted and time.monotonic() < deadline:
        gevent.sleep(0.02)
    assert upstream.aborted == ["/hang"]
    assert upstream.open == 0

    async def again():
        return await httpclient(upstream.url + "/").get()
    assert run(again()) == (200, b"ok")


def test_curl_timeout_option(run, upstream, setting):
    setting("curl_timeout", 1)

    async def main():
        start = time.monotonic()
        with pytest.raises(RuntimeError) as info:
            await httpclient(upstream.url + "/slow?ms=5000").get()
        return time.monotonic() - start, str(info.value)
    elapsed, msg = run(main())
    assert 0.9 < elapsed < 4.5      # curl_timeout's 1 s, not the 5 s answer
    assert msg.startswith("request to '%s/slow?ms=5000' failed: " % upstream.url)
    assert "timed out" in msg.lower()


def test_curl_recv_max_option(run, upstream, setting):
    setting("curl_recv_max", 100000)

    async def main():
        ok = await httpclient(upstream.url + "/big?n=100000").get()
        with pytest.raises(RuntimeError) as info:
            await httpclient(upstream.url + "/big?n=300000").get()
        return ok, str(info.value)
    ok, msg = run(main())
    assert ok == (200, b"x" * 100000)
    assert "received too large transfer" in msg
    assert "> 100000" in msg


def test_client_and_request_curlopt(run, upstream):
    async def main():
        c = httpclient(upstream.url + "/echo",
                       curlopt={C["CURLOPT_USERAGENT"]: "custom-agent/1"})
        status, body = await c.get()
        agent = json.loads(body)["headers"]["user-agent"]
        slow = httpclient(upstream.url + "/slow?ms=3000")
        with pytest.raises(RuntimeError, match="timed out"):
            await slow.get(curlopt={C["CURLOPT_TIMEOUT_MS"]: 200})
        return agent
    assert run(main()) == "custom-agent/1"


def test_awaited_twice(run, upstream):
    async def main():
        op = httpclient(upstream.url).get()
        await op
        with pytest.raises(RuntimeError, match="already awaited"):
            await op
    run(main())


def test_shutdown_aborts_in_flight(run, upstream):
    async def hang():
        with pytest.raises(RuntimeError, match="shut down"):
            await httpclient(upstream.url + "/hang").get()
        return "aborted"
    g = gevent.spawn(run, hang(), 20)
    deadline = time.monotonic() + 5
    while not upstream.requests and time.monotonic() < deadline:
        gevent.sleep(0.02)
    multi.shutdown()
    g.join(5)
    assert g.value == "aborted"


def test_fresh_multi_after_fork_reset(run, upstream):
    async def main():
        return await httpclient(upstream.url).get()
    run(main())
    old = multi.get_multi()
    multi.reset_after_fork()
    assert old.closed
    assert old.watchers == {} and old.timer is None
    new = multi.get_multi()
    assert new is not old
    assert run(main()) == (200, b"ok")
    assert upstream.connections == 2


def test_loop_watchers_released(run, upstream):
    async def main():
        for _ in range(3):
            await httpclient(upstream.url).get()
    run(main())
    m = multi.get_multi()
    assert m.pending() == 0
    m.close()
    assert m.watchers == {} and m.timer is None


def test_http_version_info():
    # libcurl that pycurl loads here: the HTTP/2 tests rely on it
    assert pycurl.version_info()[4] & pycurl.VERSION_HTTP2


def test_many_transfers_with_random_cancellations(run, upstream):
    import random
    rnd = random.Random(7)
    m = multi.get_multi()

    async def one(ms):
        return await httpclient(upstream.url + "/slow?ms=%d" % ms).get()

    gs = [gevent.spawn(drive, one(rnd.randint(10, 300))) for _ in range(200)]
    gevent.sleep(0)     # every greenlet started and added its transfer
    assert m.pending() == 200
    victims = rnd.sample(gs, 100)
    for g in victims:
        gevent.sleep(rnd.random() * 0.003)
        g.kill(block=False)
    gevent.joinall(gs, timeout=10)
    assert all(g.ready() for g in gs)
    survivors = [g for g in gs if g not in victims]
    assert [g.value for g in survivors] == [(200, b"slow")] * len(survivors)
    assert m.pending() == 0
    # only idle cached connections may still be watched
    assert len(m.watchers) <= upstream.open
    assert run(one(1)) == (200, b"slow")


def test_name_resolution_does_not_block(run, upstream):
    # libcurl's threaded resolver reports back through a socket the multi
    # handle watches: names resolve while the hub keeps running
    assert pycurl.version_info()[4] & pycurl.VERSION_ASYNCHDNS
    url = "http://localhost:%d/" % upstream.port

    async def one():
        return await httpclient(url, curlopt={C["CURLOPT_IPRESOLVE"]: 1}).get()
    gs = [gevent.spawn(run, one()) for _ in range(20)]
    gevent.joinall(gs, timeout=10)
    assert [g.value for g in gs] == [(200, b"ok")] * 20

"""kore.httpclient inside real ``korectl`` workers, against an upstream
process the test starts (loopback only)."""

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

pytestmark = pytest.mark.timeout(60)

HERE = os.path.dirname(os.path.abspath(__file__))

APP = '''
import os
import kore

UP = os.environ["UPSTREAM"]


@kore.route("/fetch", methods=["get"])
async def fetch(req):
    status, body = await kore.httpclient(UP + "/slow?ms=1000").get()
    req.response(status, body)


@kore.route("/ping", methods=["get"])
def ping(req):
    req.response(200, b"pong")


@kore.route("/hang", methods=["get"])
async def hang(req):
    status, body = await kore.httpclient(UP + "/hang").get()
    req.response(status, body)


@kore.route("/sequential", methods=["get"])
async def sequential(req):
    for i in range(100):
        status, body = await kore.httpclient(UP + "/?i=%d" % i).get()
        assert status == 200
    status, body = await kore.httpclient(UP + "/stats").get()
    req.response(200, body)


@kore.route("/handle", methods=["get"])
async def handle(req):
    h = kore.curl(UP + "/echo")
    h.setopt(kore.CURLOPT_HTTPHEADER, ["x-from: kore.curl"])
    h.setopt(kore.CURLOPT_TIMEOUT, 5)
    req.response(200, await h.run())


@kore.route("/error", methods=["get"])
async def error(req):
    try:
        await kore.httpclient("http://127.0.0.1:%s/" % os.environ["CLOSED_PORT"]).get()
    except RuntimeError as exc:
        req.response(502, str(exc).encode())


@kore.route("/big", methods=["get"], get={"n": "^[0-9]+$"})
async def big(req):
    req.populate_get()
    try:
        status, body = await kore.httpclient(UP + "/big?n=" + req.argument("n")).get()
        req.response(200, b"%d bytes" % len(body))
    except RuntimeError as exc:
        req.response(502, str(exc).encode())


@kore.route("/config", methods=["get"])
def config(req):
    req.response(200, ("%d %d" % (kore.config.curl_timeout,
                                  kore.config.curl_recv_max)).encode())
'''


@pytest.fixture
def upstream_proc():
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "curl_upstream.py")],
                            stdout=subprocess.PIPE, start_new_session=True)
    try:
        line = proc.stdout.readline()
        doc = json.loads(line)
        yield doc["http"]
    finally:
        proc.kill()
        proc.wait(5)


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(kore_server, upstream_proc):
    env = {"UPSTREAM": upstream_proc, "CLOSED_PORT": str(closed_port())}
    return kore_server(APP, workers=1, env=env), upstream_proc


def test_names_and_config(server):
    srv, _ = server
    assert get(srv.url + "/config") == (200, b"60 2097152")


def test_50_concurrent_slow_requests_from_one_worker(server):
    srv, _ = server
    assert get(srv.url + "/ping") == (200, b"pong")
    results, pings = [], []

    def one():
        results.append(get(srv.url + "/fetch"))

    def pinger(stop):
        while not stop.is_set():
            t = time.monotonic()
            status, _ = get(srv.url + "/ping")
            pings.append((status, time.monotonic() - t))
            time.sleep(0.05)

    stop = threading.Event()
    p = threading.Thread(target=pinger, args=(stop,))
    threads = [threading.Thread(target=one) for _ in range(50)]
    start = time.monotonic()
    p.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    elapsed = time.monotonic() - start
    stop.set()
    p.join(5)
    print("50 concurrent 1 s upstream requests: %.2f s; %d pings, slowest %.3f s"
          % (elapsed, len(pings), max(d for _, d in pings)))
    assert results == [(200, b"slow")] * 50
    assert elapsed < 8, elapsed     # together: one after another takes 50 s
    # the other route kept answering while 50 transfers were in flight
    # (a worker waiting for one would keep a ping a second or more)
    assert len(pings) >= 5
    assert all(s == 200 for s, _ in pings)
    assert max(d for _, d in pings) < 0.9


def test_100_sequential_requests_one_connection(server):
    srv, _ = server
    status, body = get(srv.url + "/sequential", timeout=30)
    assert status == 200
    assert json.loads(body)["connections"] == 1


def test_curl_handle_and_constants(server):
    srv, _ = server
    status, body = get(srv.url + "/handle")
    doc = json.loads(body)
    assert doc["headers"]["x-from"] == "kore.curl"
    assert doc["headers"]["user-agent"].startswith("kore/")


def test_error_message(server):
    srv, _ = server
    try:
        get(srv.url + "/error")
    except urllib.error.HTTPError as exc:
        assert exc.code == 502
        msg = exc.read().decode()
    assert msg.startswith("request to 'http://127.0.0.1:")
    assert "failed: " in msg


def test_client_gone_cancels_transfer(server):
    srv, up = server
    s = socket.create_connection((srv.host, srv.port))
    s.sendall(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if "/hang" in json.loads(get(up + "/stats")[1])["paths"]:
            break
        time.sleep(0.05)
    s.close()
    aborted = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        aborted = json.loads(get(up + "/stats")[1])["aborted"]
        if aborted:
            break
        time.sleep(0.1)
    assert aborted == ["/hang"]
    assert get(srv.url + "/ping") == (200, b"pong")


def test_workers_have_their_own_multi(kore_server, upstream_proc):
    env = {"UPSTREAM": upstream_proc, "CLOSED_PORT": str(closed_port())}
    srv = kore_server(APP, workers=2, env=env)
    for _ in range(10):
        assert get(srv.url + "/handle")[0] == 200
    assert srv.stop() == 0


def test_config_from_environment(kore_server, upstream_proc):
    env = {"UPSTREAM": upstream_proc, "CLOSED_PORT": str(closed_port()),
           "KORE_CURL_TIMEOUT": "7", "KORE_CURL_RECV_MAX": "1000"}
    srv = kore_server(APP, workers=1, env=env)
    assert get(srv.url + "/config") == (200, b"7 1000")
    assert get(srv.url + "/big?n=1000") == (200, b"1000 bytes")
    with pytest.raises(urllib.error.HTTPError) as info:
        get(srv.url + "/big?n=1001")
    assert info.value.code == 502
    assert b"received too large transfer (1001 > 1000)" in info.value.read()

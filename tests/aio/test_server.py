"""kore.aio in real korectl servers: async handlers, tasks created at import
time, cancellation on client disconnect, and the python-async example."""

import json
import os
import socket
import threading
import time

import httpx
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE = os.path.join(ROOT, "examples", "python-async", "app.py")

pytestmark = pytest.mark.timeout(90)


def get(srv, path, timeout=10):
    return httpx.get(srv.url + path, timeout=timeout)


def _wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    return False


def _start_and_abandon(srv, path, running):
    """Send a request, wait until ``running()`` says its handler is
    suspended, disconnect."""
    s = socket.create_connection((srv.host, srv.port), timeout=5)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    assert _wait_for(running), srv.log()
    s.close()


def _children_cmdlines(pid):
    out = []
    try:
        kids = open("/proc/%d/task/%d/children" % (pid, pid)).read().split()
    except OSError:
        return out
    for k in kids:
        try:
            with open("/proc/%s/cmdline" % k, "rb") as f:
                out.append((int(k), f.read().replace(b"\0", b" ").decode().strip()))
        except OSError:
            pass
    return out


def _worker_pids(srv):
    # listening comes before the worker is forked: wait until it is ready
    srv.wait_ready(1)
    return srv.children()


# -- the python-async example ----------------------------------------------------

def test_python_async_example(kore_server):
    srv = kore_server(EXAMPLE, workers=2)
    r = get(srv, "/queue?msg=hello")
    assert r.status_code == 200 and r.text.endswith(": hello")
    r = get(srv, "/lock?ms=10")
    assert r.status_code == 200 and "held it 10 ms" in r.text
    r = get(srv, "/proc")
    body = r.json()
    assert body["retcode"] == 0 and "async_process.py" in body["stdout"].split()
    r = get(srv, "/proc/timeout")
    assert r.status_code == 504 and "timeout before process exited" in r.text
    r = httpx.post(srv.url + "/proc/wc", content=b"x" * 1000, timeout=10)
    assert r.text == "1000 bytes\n"
    r = get(srv, "/socket?msg=abc")
    assert r.text == "echo: abc\n"
    body = get(srv, "/gather").json()
    assert body["results"] == ["a slept 300 ms", "b slept 100 ms", "ValueError('c failed')"]
    # together: below the 600 ms the three take one after another
    assert 290 <= body["elapsed_ms"] < 590
    body = get(srv, "/gather?concurrency=1").json()
    assert body["elapsed_ms"] >= 590
    assert get(srv, "/suspend?ms=50").text.startswith("suspended")
    assert get(srv, "/timer").text.startswith("oneshot fired; heartbeat ticks")
    r = get(srv, "/tasks")
    assert "killed=True, last=killed" in r.text
    assert "Traceback" not in srv.log()


# -- tasks created at import time run in every worker ---------------------------

def test_import_time_task_runs_in_every_worker(kore_server, tmp_path):
    app = """
import os
import kore

OUT = %r

async def announce():
    await kore.suspend(1)
    with open(os.path.join(OUT, "task-%%d-%%d" %% (kore.worker(), kore.task_id())), "w"):
        pass

def tick(n):
    open(os.path.join(OUT, "timer-%%d" %% kore.worker()), "w").close()

TID = kore.task_create(announce())
kore.timer(tick, 10, kore.TIMER_ONESHOT, data=1)

@kore.route("/tid", methods=["get"])
def tid(req):
    req.response(200, str(TID).encode())
""" % str(tmp_path)
    srv = kore_server(app, workers=2)
    tid = get(srv, "/tid").text
    want = {"task-1-" + tid, "task-2-" + tid, "timer-1", "timer-2"}
    assert _wait_for(lambda: want <= set(os.listdir(tmp_path))), os.listdir(tmp_path)


# -- handlers --------------------------------------------------------------------

HANDLERS = """
import asyncio
import kore

lock = kore.lock()

@kore.route("/foreign", methods=["get"])
async def foreign(req):
    await asyncio.sleep(0)
    req.response(200, b"unreachable")

@kore.route("/ok", methods=["get"])
async def ok(req):
    await kore.suspend(1)
    req.response(200, b"ok %d" % kore.task_id())

@kore.route("/hold", methods=["get"])
async def hold(req):
    async with lock:
        await kore.suspend(30000)
    req.response(200, b"held")

@kore.route("/try", methods=["get"])
def try_(req):
    if lock.trylock():
        lock.release()
        req.response(200, b"free")
    else:
        req.response(409, b"locked")

@kore.route("/serial", methods=["get"])
async def serial(req):
    async with lock:
        start = kore.time()
        await kore.suspend(200)
        end = kore.time()
    req.response(200, b"%d %d" % (start, end))

@kore.route("/sleep", methods=["get"])
async def sleep(req):
    p = kore.proc("sleep 30")
    await p.reap()
    req.response(200, b"done")

@kore.route("/peer", methods=["get"], get={"port": "^[0-9]{1,5}$"})
async def peer(req):
    import socket
    req.populate_get()
    s = kore.socket_wrap(socket.socket())
    await s.connect("127.0.0.1", int(req.argument("port")))
    await s.send(b"!")          # the test knows the handler reached recv
    await s.recv(100)
    req.response(200, b"got")
"""


def test_foreign_awaitable_gives_500_and_worker_keeps_serving(kore_server):
    srv = kore_server(HANDLERS)
    r = get(srv, "/foreign")
    assert r.status_code == 500
    assert srv.wait_log("not a kore awaitable")
    pids = _worker_pids(srv)
    r = get(srv, "/ok")
    assert r.status_code == 200 and r.text.startswith("ok ")
    assert _worker_pids(srv) == pids


def test_lock_serialises_handlers(kore_server):
    srv = kore_server(HANDLERS)
    results = []

    def call():
        results.append(tuple(map(int, get(srv, "/serial").text.split())))
    threads = [threading.Thread(target=call) for _ in range(3)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    elapsed = time.monotonic() - t0
    results.sort()
    assert len(results) == 3
    # the holders never overlap
    for (s1, e1), (s2, e2) in zip(results, results[1:]):
        assert e1 - s1 >= 195 and s2 >= e1
    assert elapsed >= 0.59


def test_disconnect_releases_lock(kore_server):
    srv = kore_server(HANDLERS.replace("/peer", "/peer-unused"))
    # the handler holds the lock, then its client goes away
    _start_and_abandon(srv, "/hold", lambda: get(srv, "/try").status_code == 409)
    assert _wait_for(lambda: get(srv, "/try").status_code == 200, timeout=5)


def test_disconnect_kills_and_reaps_process(kore_server):
    srv = kore_server(HANDLERS)
    worker = _worker_pids(srv)[0]
    s = socket.create_connection((srv.host, srv.port), timeout=5)
    s.sendall(b"GET /sleep HTTP/1.1\r\nHost: x\r\n\r\n")
    assert _wait_for(lambda: any("sleep 30" in c for _, c in _children_cmdlines(worker)))
    s.close()
    # killed and reaped: no child left, not even a zombie
    assert _wait_for(lambda: _children_cmdlines(worker) == [], timeout=5), \
        _children_cmdlines(worker)


def test_disconnect_closes_wrapped_socket(kore_server):
    srv = kore_server(HANDLERS)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    lsock.settimeout(10)
    port = lsock.getsockname()[1]
    s = socket.create_connection((srv.host, srv.port), timeout=5)
    s.sendall(b"GET /peer?port=%d HTTP/1.1\r\nHost: x\r\n\r\n" % port)
    conn, _ = lsock.accept()
    conn.settimeout(5)
    assert conn.recv(1) == b"!"   # the handler waits in recv now
    s.close()
    assert conn.recv(10) == b""   # the handler's socket was closed
    conn.close()
    lsock.close()


def test_task_exception_goes_to_tracer(kore_server, tmp_path):
    out = tmp_path / "traced"
    app = """
import kore

def tracer(etype, value, tb):
    with open(%r, "a") as f:
        f.write("%%s: %%s\\n" %% (etype.__name__, value))

kore.tracer(tracer)

async def failing():
    await kore.suspend(5)
    raise ValueError("task failed")

def timer_cb():
    raise KeyError("timer failed")

kore.task_create(failing())
kore.timer(timer_cb, 5, kore.TIMER_ONESHOT)

@kore.route("/", methods=["get"])
def index(req):
    req.response(200, b"alive")
""" % str(out)
    srv = kore_server(app)
    assert _wait_for(lambda: out.exists() and out.read_text().count("\n") >= 2)
    text = out.read_text()
    assert "ValueError: task failed" in text and "KeyError: 'timer failed'" in text
    assert get(srv, "/").text == "alive"

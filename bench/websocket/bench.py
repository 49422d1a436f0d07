"""Echo round trips per second and broadcast fan-out: kore (korectl, 2
workers) against the ``websockets`` package's server and, when installed,
uvicorn's websockets; same run, ratios printed.  Never part of the tests.

    python bench/websocket/bench.py [--clients 1000] [--seconds 5]
"""

import argparse
import asyncio
import os
import resource
import socket
import subprocess
import sys
import tempfile
import textwrap
import time

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)

KORE_APP = """
import kore

def onconnect(c):
    c.subscribe("all")

def onmsg(c, op, data):
    if data == "fanout":
        kore.publish("all", "x")
    else:
        c.websocket_send(op, data)

@kore.route("/", methods=["get"])
def ws(req):
    req.websocket_handshake(onconnect, onmsg, None)
"""

WEBSOCKETS_APP = """
import asyncio, sys, websockets
CLIENTS = set()
async def handler(ws):
    CLIENTS.add(ws)
    try:
        async for m in ws:
            if m == "fanout":
                websockets.broadcast(CLIENTS, "x")
            else:
                await ws.send(m)
    finally:
        CLIENTS.discard(ws)
async def main():
    async with websockets.serve(handler, "127.0.0.1", int(sys.argv[1]), compression=None,
                                ping_interval=None):
        await asyncio.Future()
asyncio.run(main())
"""

UVICORN_APP = """
CLIENTS = set()
async def app(scope, receive, send):
    if scope["type"] != "websocket":
        return
    await receive()
    await send({"type": "websocket.accept"})
    CLIENTS.add(send)
    try:
        while True:
            ev = await receive()
            if ev["type"] == "websocket.disconnect":
                return
            text = ev.get("text")
            if text == "fanout":
                for s in list(CLIENTS):
                    await s({"type": "websocket.send", "text": "x"})
            elif text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": ev.get("bytes")})
    finally:
        CLIENTS.discard(send)
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


async def echo(port, conns, seconds):
    clients = [await websockets.connect("ws://127.0.0.1:%d/" % port, compression=None,
                                        ping_interval=None) for _ in range(conns)]
    count = 0
    stop = time.monotonic() + seconds

    async def loop(ws):
        nonlocal count
        while time.monotonic() < stop:
            await ws.send("hello world")
            await ws.recv()
            count += 1
    t0 = time.monotonic()
    await asyncio.gather(*(loop(ws) for ws in clients))
    elapsed = time.monotonic() - t0
    for ws in clients:
        await ws.close()
    return count / elapsed


async def fanout(port, n, rounds=3):
    clients = []
    for i in range(0, n, 100):
        clients += await asyncio.gather(*[websockets.connect(
            "ws://127.0.0.1:%d/" % port, compression=None, ping_interval=None,
            open_timeout=30) for _ in range(min(100, n - i))])
    await asyncio.sleep(0.5)       # topic counts settle
    best = None
    for _ in range(rounds):
        t0 = time.monotonic()
        await clients[0].send("fanout")
        await asyncio.gather(*(ws.recv() for ws in clients))
        dt = time.monotonic() - t0
        best = dt if best is None else min(best, dt)
    for ws in clients:
        await ws.close()
    return best


def start(name, port, tmp):
    if name == "kore":
        path = os.path.join(tmp, "kore_app.py")
        with open(path, "w") as f:
            f.write(textwrap.dedent(KORE_APP))
        cmd = [os.path.join(BIN, "korectl"), "run", "--bind", "127.0.0.1:%d" % port,
               "--workers", "2", path]
    elif name == "websockets":
        cmd = [sys.executable, "-c", WEBSOCKETS_APP, str(port)]
    else:
        path = os.path.join(tmp, "uv_app.py")
        with open(path, "w") as f:
            f.write(UVICORN_APP)
        cmd = [sys.executable, "-m", "uvicorn", "--app-dir", tmp, "--port", str(port),
               "--log-level", "warning", "--ws", "websockets", "--workers", "1",
               "--ws-ping-interval", "0", "uv_app:app"]
    env = dict(os.environ, KORE_WEBSOCKET_TIMEOUT="600")
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                         start_new_session=True)
    if not wait_port(port):
        p.kill()
        raise SystemExit("%s did not start" % name)
    return p


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=1000)
    ap.add_argument("--conns", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=5)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    servers = ["kore", "websockets"]
    try:
        import uvicorn  # noqa: F401
        servers.append("uvicorn")
    except ImportError:
        print("uvicorn not installed: skipped")
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in servers:
            port = free_port()
            p = start(name, port, tmp)
            try:
                rps = asyncio.run(echo(port, a.conns, a.seconds))
                fo = asyncio.run(fanout(port, a.clients))
            finally:
                os.killpg(p.pid, 15)
                p.wait(10)
            res[name] = (rps, fo)
            print("%-10s echo %8.0f round trips/s (%d connections)   fan-out to %d: %6.1f ms"
                  % (name, rps, a.conns, a.clients, fo * 1e3))
    k = res["kore"]
    for name in servers[1:]:
        r = res[name]
        print("kore / %-10s echo %.2fx   fan-out %.2fx faster" % (name, k[0] / r[0], r[1] / k[1]))


if __name__ == "__main__":
    main()

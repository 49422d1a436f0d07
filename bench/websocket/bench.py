"""Echo round trips per second and broadcast fan-out: kore (korectl, one
worker by default) against the ``websockets`` package's server and, when
installed, uvicorn's websockets; every server runs as one process, all start
once and each round measures them in turn (alternating order); medians and
ratios printed.  Never part of the tests.

    python bench/websocket/bench.py [--rounds 3] [--seconds 3] [--only kore,websockets]
                                    [--tests echo,fanout] [--kore-workers 1]
                                    [--fanout publish|local|global]

The echo client is a lean asyncio protocol that writes pre-masked frames and
counts the echoes; the fan-out client is one thread on non-blocking sockets
and epoll, and prints its own CPU per fan-out (``--client websockets`` uses
the websockets package's client for both instead, which costs more CPU per
message than the servers under test and so mostly measures itself).
"""

import argparse
import asyncio
import base64
import os
import resource
import select
import socket
import statistics
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
    elif data == "fanout-local":
        kore.websocket_broadcast(None, kore.WEBSOCKET_OP_TEXT, "x",
                                 kore.WEBSOCKET_BROADCAST_LOCAL)
    elif data == "fanout-global":
        kore.websocket_broadcast(None, kore.WEBSOCKET_OP_TEXT, "x",
                                 kore.WEBSOCKET_BROADCAST_GLOBAL)
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
            if isinstance(m, str) and m.startswith("fanout"):
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
            if text is not None and text.startswith("fanout"):
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


class EchoClient(asyncio.Protocol):
    """One connection doing strict ping-pong: a masked text frame out, wait
    for the server's echo, the next frame out.  The frame is built once (the
    same mask every time, which servers do not check), so the client spends
    little CPU per round trip and the server is what is measured."""

    def __init__(self, msg, state):
        mask = os.urandom(4)
        body = bytes(b ^ mask[i & 3] for i, b in enumerate(msg))
        self.frame = bytes((0x81, 0x80 | len(msg))) + mask + body
        self.state = state            # [round trips, stopping]
        self.buf = b""
        self.opened = False
        loop = asyncio.get_running_loop()
        self.open_fut = loop.create_future()
        self.idle_fut = loop.create_future()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        key = base64.b64encode(os.urandom(16))
        transport.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
                        b"\r\nSec-WebSocket-Version: 13\r\n\r\n")

    def data_received(self, data):
        buf = self.buf + data if self.buf else data
        if not self.opened:
            i = buf.find(b"\r\n\r\n")
            if i < 0:
                self.buf = buf
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                self.open_fut.set_exception(RuntimeError("handshake: %r" % buf[:60]))
                return
            self.opened = True
            self.open_fut.set_result(None)
            buf = buf[i + 4:]
        pos = 0
        end = len(buf)
        while end - pos >= 2:
            n = buf[pos + 1] & 0x7F
            hdr = 2
            if n == 126:
                if end - pos < 4:
                    break
                n = int.from_bytes(buf[pos + 2:pos + 4], "big")
                hdr = 4
            elif n == 127:
                if end - pos < 10:
                    break
                n = int.from_bytes(buf[pos + 2:pos + 10], "big")
                hdr = 10
            if end - pos < hdr + n:
                break
            op = buf[pos] & 0x0F
            pos += hdr + n
            if op != 1:
                continue          # ping, pong, close...: not an echo
            st = self.state
            if st[1]:
                if not self.idle_fut.done():
                    self.idle_fut.set_result(None)
            else:
                st[0] += 1
                self.transport.write(self.frame)
        self.buf = buf[pos:] if pos < end else b""

    def connection_lost(self, exc):
        if not self.open_fut.done():
            self.open_fut.set_exception(ConnectionError("closed during the handshake"))
        if not self.idle_fut.done():
            self.idle_fut.set_result(None)


async def echo(port, conns, seconds, msg=b"hello world"):
    loop = asyncio.get_running_loop()
    state = [0, False]
    clients = []
    for _ in range(conns):
        _, c = await loop.create_connection(lambda: EchoClient(msg, state),
                                            "127.0.0.1", port)
        await asyncio.wait_for(c.open_fut, 10)
        clients.append(c)
    t0 = time.monotonic()
    for c in clients:
        c.transport.write(c.frame)
    await asyncio.sleep(seconds)
    state[1] = True
    count = state[0]
    elapsed = time.monotonic() - t0
    await asyncio.wait_for(asyncio.gather(*(c.idle_fut for c in clients)), 10)
    for c in clients:       # close 1000, masked with a zero key
        c.transport.write(b"\x88\x82\x00\x00\x00\x00\x03\xe8")
    await asyncio.sleep(0.05)
    for c in clients:
        c.transport.close()
    return count / elapsed


async def echo_websockets(port, conns, seconds):
    """The same ping-pong with the websockets package's client."""
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


def _handshake(port):
    s = socket.create_connection(("127.0.0.1", port), 30)
    key = base64.b64encode(os.urandom(16))
    s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
              b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key +
              b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(4096)
        if not d:
            raise ConnectionError("closed during the handshake")
        buf += d
    if not buf.startswith(b"HTTP/1.1 101"):
        raise RuntimeError("handshake: %r" % buf[:60])
    s.setblocking(False)
    return s, buf[buf.index(b"\r\n\r\n") + 4:]


def _text_frames(buf):
    """(text frames in ``buf``, the unparsed rest)."""
    pos, end, n_text = 0, len(buf), 0
    while end - pos >= 2:
        n = buf[pos + 1] & 0x7F
        hdr = 2
        if n == 126:
            if end - pos < 4:
                break
            n, hdr = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
        elif n == 127:
            if end - pos < 10:
                break
            n, hdr = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
        if end - pos < hdr + n:
            break
        if buf[pos] & 0x0F == 1:
            n_text += 1
        pos += hdr + n
    return n_text, buf[pos:]


def fanout(port, n, msg="fanout", reps=3):
    """``n`` connections; the first sends ``msg`` (the server publishes a
    1-byte text message to every client, the sender included); the time
    until every client has its message, best of ``reps``.  The client is
    one thread on plain non-blocking sockets and epoll (the handshakes
    first, then nothing but recv per ready socket), so the server's
    fan-out is what is measured, not the client's event loop: it returns
    (best seconds, client CPU seconds of that repetition)."""
    socks = []
    bufs = {}
    for _ in range(n):
        s, rest = _handshake(port)
        socks.append(s)
        bufs[s.fileno()] = rest
    time.sleep(0.5)               # topic counts settle
    ep = select.epoll(n + 1)
    by_fd = {s.fileno(): s for s in socks}
    for fd in by_fd:
        ep.register(fd, select.EPOLLIN)
    mask = os.urandom(4)
    m = msg.encode()
    frame = bytes((0x81, 0x80 | len(m))) + mask + bytes(
        b ^ mask[i & 3] for i, b in enumerate(m))
    best = cpu = None
    try:
        for _ in range(reps):
            waiting = set(by_fd)
            c0 = time.process_time()
            t0 = time.monotonic()
            socks[0].send(frame)
            while waiting:
                for fd, _ev in ep.poll(10):
                    try:
                        d = by_fd[fd].recv(65536)
                    except BlockingIOError:
                        continue
                    if not d:
                        raise ConnectionError("server closed a fan-out client")
                    b = bufs[fd]
                    if not b and d == b"\x81\x01x":
                        waiting.discard(fd)
                        continue
                    k, bufs[fd] = _text_frames(b + d)
                    if k:
                        waiting.discard(fd)
                else:
                    if time.monotonic() - t0 > 30:
                        raise TimeoutError("%d clients without the message" % len(waiting))
            dt = time.monotonic() - t0
            if best is None or dt < best:
                best, cpu = dt, time.process_time() - c0
            time.sleep(0.05)
    finally:
        ep.close()
        for s in socks:
            try:
                s.send(b"\x88\x82\x00\x00\x00\x00\x03\xe8")    # close 1000
            except OSError:
                pass
        time.sleep(0.1)
        for s in socks:
            s.close()
    return best, cpu


async def fanout_websockets(port, n, msg="fanout", rounds=3):
    """The fan-out with the websockets package's client (1,000 connections
    in one asyncio process, a gather of recv() per fan-out): its CPU per
    received message is several times the servers' per sent one, so the
    figure is mostly the client's."""
    clients = []
    for i in range(0, n, 100):
        clients += await asyncio.gather(*[websockets.connect(
            "ws://127.0.0.1:%d/" % port, compression=None, ping_interval=None,
            open_timeout=30) for _ in range(min(100, n - i))])
    await asyncio.sleep(0.5)       # topic counts settle
    best = cpu = None
    for _ in range(rounds):
        c0 = time.process_time()
        t0 = time.monotonic()
        await clients[0].send(msg)
        await asyncio.gather(*(ws.recv() for ws in clients))
        dt = time.monotonic() - t0
        if best is None or dt < best:
            best, cpu = dt, time.process_time() - c0
    for ws in clients:
        await ws.close()
    return best, cpu


def start(name, port, tmp, kore_workers=1):
    if name == "kore":
        path = os.path.join(tmp, "kore_app.py")
        with open(path, "w") as f:
            f.write(textwrap.dedent(KORE_APP))
        cmd = [os.path.join(BIN, "korectl"), "run", "--bind", "127.0.0.1:%d" % port,
               "--workers", str(kore_workers), path]
    elif name == "websockets":
        cmd = [sys.executable, "-c", WEBSOCKETS_APP, str(port)]
    else:
        path = os.path.join(tmp, "uv_app.py")
        with open(path, "w") as f:
            f.write(UVICORN_APP)
        cmd = [sys.executable, "-m", "uvicorn", "--app-dir", tmp, "--port", str(port),
               "--log-level", "warning", "--ws", "websockets", "--workers", "1",
               "--ws-ping-interval", "0", "uv_app:app"]
    # kore's per-worker cap (512 by default) would hold back fan-out clients
    # on one worker; the peers have none
    env = dict(os.environ, KORE_WEBSOCKET_TIMEOUT="600", KORE_WORKER_MAX_CONNECTIONS="20000",
               KORE_WORKER_RLIMIT_NOFILES="20100")
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                         start_new_session=True)
    if not wait_port(port):
        p.kill()
        raise SystemExit("%s did not start" % name)
    return p


def group_cpu(pgid):
    """CPU seconds (user + system) of every process in group ``pgid``."""
    ticks = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % pid) as f:
                st = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(st[2]) == pgid:
            ticks += int(st[11]) + int(st[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds over every server (medians)")
    ap.add_argument("--seconds", type=float, default=3, help="echo seconds per server and round")
    ap.add_argument("--conns", type=int, default=20, help="echo connections")
    ap.add_argument("--clients", type=int, default=1000, help="fan-out clients")
    ap.add_argument("--tests", default="echo,fanout", help="echo,fanout or one of them")
    ap.add_argument("--only", default="", help="comma list of servers (kore,websockets,uvicorn)")
    ap.add_argument("--kore-workers", type=int, default=1,
                    help="korectl --workers (1: one process, like the peers)")
    ap.add_argument("--fanout", choices=("publish", "local", "global"), default="publish",
                    help="what kore's fan-out calls: kore.publish to a topic every "
                    "client subscribed (default) or kore.websocket_broadcast with "
                    "scope LOCAL or GLOBAL (the peers broadcast to every client)")
    ap.add_argument("--client", choices=("raw", "websockets"), default="raw",
                    help="echo and fan-out client: the lean one (default) or the "
                    "websockets package's")
    a = ap.parse_args()
    tests = set(a.tests.split(","))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    servers = ["kore", "websockets"]
    try:
        import uvicorn  # noqa: F401
        servers.append("uvicorn")
    except ImportError:
        print("uvicorn not installed: skipped")
    if a.only:
        servers = [s for s in servers if s in a.only.split(",")]
    client = echo if a.client == "raw" else echo_websockets
    fmsg = "fanout" if a.fanout == "publish" else "fanout-" + a.fanout
    rps = {s: [] for s in servers}
    usrt = {s: [] for s in servers}
    fos = {s: [] for s in servers}
    procs = {}
    ports = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for name in servers:
                ports[name] = free_port()
                procs[name] = start(name, ports[name], tmp, a.kore_workers)
            time.sleep(1)
            for r in range(a.rounds):
                order = servers if r % 2 == 0 else servers[::-1]
                for name in order:
                    line = "round %d %-10s" % (r + 1, name)
                    if "echo" in tests:
                        c0 = group_cpu(procs[name].pid)
                        x = asyncio.run(client(ports[name], a.conns, a.seconds))
                        c1 = group_cpu(procs[name].pid)
                        rps[name].append(x)
                        usrt[name].append((c1 - c0) / (x * a.seconds) * 1e6)
                        line += "  echo %7.0f round trips/s, server %5.1f us CPU each" % (
                            x, usrt[name][-1])
                    if "fanout" in tests:
                        if a.client == "raw":
                            dt, cpu = fanout(ports[name], a.clients, fmsg)
                        else:
                            dt, cpu = asyncio.run(fanout_websockets(ports[name], a.clients,
                                                                    fmsg))
                        fos[name].append(dt)
                        line += "  fan-out %6.1f ms (client CPU %4.1f ms)" % (dt * 1e3, cpu * 1e3)
                    print(line, flush=True)
        finally:
            for p in procs.values():
                os.killpg(p.pid, 15)
                p.wait(10)
    med = statistics.median
    print("medians of %d rounds (kore: %d worker%s; echo: %d connections, %s client, "
          "%.0f s; fan-out to %d clients, kore %s):" % (
              a.rounds, a.kore_workers, "s" if a.kore_workers > 1 else "", a.conns,
              a.client, a.seconds, a.clients,
              "kore.publish" if a.fanout == "publish" else "websocket_broadcast " +
              a.fanout.upper()))
    for name in servers:
        line = "%-10s" % name
        if "echo" in tests:
            line += " echo %8.0f round trips/s  %5.1f us server CPU per round trip" % (
                med(rps[name]), med(usrt[name]))
        if "fanout" in tests:
            line += "   fan-out %6.1f ms" % (med(fos[name]) * 1e3)
        print(line)
    if "kore" in servers:
        for name in servers:
            if name == "kore":
                continue
            line = "kore / %-10s" % name
            if "echo" in tests:
                line += " echo %.2fx (CPU per round trip %.2fx less)" % (
                    med(rps["kore"]) / med(rps[name]), med(usrt[name]) / med(usrt["kore"]))
            if "fanout" in tests:
                line += "   fan-out %.2fx faster" % (med(fos[name]) / med(fos["kore"]))
            print(line)


if __name__ == "__main__":
    main()

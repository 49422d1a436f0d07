"""Backplane benchmark: kore (two instances x 2 workers, the redis or
redis-streams backplane) against python-socketio's RedisManager (gevent;
four processes), all on one redis-server started here.

1. latency: ``--clients`` (500) websocket clients subscribed to one topic,
   split evenly over the servers; a publisher on the first server sends
   ``--rate`` messages/s for ``--seconds``; every delivery's
   publish-to-receive time (one client process, one monotonic clock) gives
   p50 / p99.
2. rate: ``--rate-clients`` subscribers; rates doubling from 250 msgs/s,
   ``--seconds`` each; the highest rate at which every subscriber got every
   message (within 3 s after the last).

    .venv/bin/python bench/backplane/run.py                # both, 500 clients
    .venv/bin/python bench/backplane/run.py --only kore --driver redis-streams

The python-socketio peer runs in its own venv (.venv/bench-socketio,
created on first use: python-socketio 5.18, gevent, simple-websocket,
redis).  Needs redis-server (apt-get install redis-server).
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))

import benchlib  # noqa: E402
import websockets  # noqa: E402

PEER_VENV = os.path.join(ROOT, ".venv", "bench-socketio")
PEER_PKGS = ["python-socketio==5.18.1", "gevent", "simple-websocket", "redis"]


def start_redis(tmp):
    port = benchlib.free_port()
    p = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                          "--save", "", "--appendonly", "no", "--dir", tmp],
                         stdout=subprocess.DEVNULL)
    assert benchlib.wait_port(port), "redis-server did not start"
    return p, "redis://127.0.0.1:%d/0" % port


def start_kore(url, driver, tmp):
    spec = url if driver == "redis" else "%s+%s" % (driver, url)
    procs, ports = [], []
    korectl = os.path.join(os.path.dirname(sys.executable), "korectl")
    for _ in range(2):
        port = benchlib.free_port()
        env = dict(os.environ, KORE_BACKPLANE=spec)
        procs.append(subprocess.Popen([korectl, "run", "--bind", "127.0.0.1:%d" % port,
                                       "--workers", "2", os.path.join(HERE, "kore_app.py")],
                                      env=env, cwd=tmp, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ports.append(port)
    for port in ports:
        assert benchlib.wait_port(port), "korectl did not start"
    time.sleep(1.0)             # every worker accepting (bench only)
    return procs, ["ws://127.0.0.1:%d/ws" % p for p in ports]


def peer_python():
    py = os.path.join(PEER_VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.check_call([sys.executable, "-m", "venv", PEER_VENV])
        subprocess.check_call([py, "-m", "pip", "install", "-q"] + PEER_PKGS)
    return py


def start_sio(url, tmp):
    py = peer_python()
    procs, ports = [], []
    for _ in range(4):
        port = benchlib.free_port()
        procs.append(subprocess.Popen([py, os.path.join(HERE, "sio_server.py"), str(port),
                                       url], cwd=tmp, start_new_session=True,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        ports.append(port)
    for port in ports:
        assert benchlib.wait_port(port), "socketio server did not start"
    return procs, ["ws://127.0.0.1:%d/socket.io/?EIO=4&transport=websocket" % p
                   for p in ports]


class KoreProto:
    async def open(self, url):
        return await websockets.connect(url, max_size=None, ping_interval=None,
                                      close_timeout=1)

    async def subscribe(self, ws, topic):
        await ws.send("sub:" + topic)
        assert await ws.recv() == "ok"

    def pub(self, topic, payload):
        return "pub:%s:%s" % (topic, payload)

    def parse(self, ws, m):
        return m


class SioProto:
    async def open(self, url):
        ws = await websockets.connect(url, max_size=None, ping_interval=None,
                                      close_timeout=1)
        assert (await ws.recv()).startswith("0")
        await ws.send("40")
        assert (await ws.recv()).startswith("40")
        return ws

    async def subscribe(self, ws, topic):
        await ws.send('420["sub",%s]' % json.dumps(topic))
        while not (await ws.recv()).startswith("430"):
            pass

    def pub(self, topic, payload):
        return '42["pub",%s]' % json.dumps("%s:%s" % (topic, payload))

    def parse(self, ws, m):
        if m == "2":
            asyncio.ensure_future(ws.send("3"))
            return None
        if m.startswith('42["m",'):
            return json.loads(m[2:])[1]
        return None


async def session(proto, urls, nclients, runs, meter=lambda: (0.0, 0.0)):
    """Connect ``nclients`` subscribers round-robin over ``urls``; for each
    (rate, seconds) in ``runs``: (sent, deliveries, latencies in ms)."""
    subs = []
    for i in range(nclients):
        ws = await proto.open(urls[i % len(urls)])
        await proto.subscribe(ws, "bench")
        subs.append(ws)
    pub = await proto.open(urls[0])
    state = {"lat": [], "n": 0}

    async def reader(ws):
        try:
            async for m in ws:
                p = proto.parse(ws, m)
                if p is None:
                    continue
                t = int(p.split("/")[1])
                state["lat"].append((time.monotonic_ns() - t) / 1e6)
                state["n"] += 1
        except websockets.ConnectionClosed:
            pass
    async def answer_pings(ws):       # the publisher reads only engine.io pings
        try:
            async for m in ws:
                proto.parse(ws, m)
        except websockets.ConnectionClosed:
            pass
    readers = [asyncio.ensure_future(reader(ws)) for ws in subs]
    readers.append(asyncio.ensure_future(answer_pings(pub)))
    results = []
    for rate, seconds in runs:
        state["lat"] = []
        state["n"] = 0
        total = int(rate * seconds)
        m0 = meter()
        t0 = time.monotonic()
        for i in range(total):
            await pub.send(proto.pub("bench", "%d/%d" % (i, time.monotonic_ns())))
            ahead = t0 + (i + 1) / rate - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)
        want = total * nclients
        deadline = time.monotonic() + 3.0
        while state["n"] < want and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        m1 = meter()
        results.append((total, want, state["n"], sorted(state["lat"]),
                        m1[0] - m0[0], m1[1] - m0[1]))
        await asyncio.sleep(0.5)
    for r in readers:
        r.cancel()
    await asyncio.gather(*(ws.close() for ws in subs + [pub]), return_exceptions=True)
    return results


def pct(xs, q):
    return xs[min(len(xs) - 1, int(q * len(xs)))] if xs else float("nan")


def cpu(procs):
    return sum(benchlib.group_cpu(p.pid) for p in procs)


def bench(name, proto, urls, args, procs, redis_proc):
    def meter():        # CPU seconds of the servers and of redis-server
        return cpu(procs), benchlib.cpu_seconds(redis_proc.pid)
    (total, want, got, lat, c, r), = asyncio.run(
        session(proto, urls, args.clients, [(args.rate, args.seconds)], meter))
    print("%-22s latency  clients %d rate %d/s: p50 %.2f ms  p99 %.2f ms  "
          "delivered %d/%d  server CPU %.1f ms per 1000 deliveries (redis-server %.1f)"
          % (name, args.clients, args.rate, pct(lat, .5), pct(lat, .99), got, want,
             1e6 * c / max(1, got), 1e6 * r / max(1, got)), flush=True)
    rates = [250 * 2 ** i for i in range(args.steps)]
    best = fast = 0
    res = asyncio.run(session(proto, urls, args.rate_clients,
                              [(r, args.seconds) for r in rates]))
    for r, (total, want, got, lat, _c, _r) in zip(rates, res):
        ok = got >= want
        print("%-22s rate     clients %d rate %5d/s: delivered %d/%d%s  p99 %.1f ms"
              % (name, args.rate_clients, r, got, want, "" if ok else "  LOSS/LATE",
                 pct(lat, .99)), flush=True)
        if ok:
            best = r
            if pct(lat, .99) < 100:
                fast = r
    print("%-22s highest rate without loss: %d msgs/s to %d subscribers "
          "(with p99 under 100 ms: %d msgs/s)" % (name, best, args.rate_clients, fast),
          flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=500)
    ap.add_argument("--rate", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--rate-clients", type=int, default=20)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--driver", default="redis", choices=["redis", "redis-streams"])
    ap.add_argument("--only", default="kore,socketio")
    args = ap.parse_args()
    import tempfile
    tmp = tempfile.mkdtemp(prefix="bench-backplane-")
    rp, url = start_redis(tmp)
    try:
        if "kore" in args.only:
            procs, urls = start_kore(url, args.driver, tmp)
            try:
                bench("kore " + args.driver, KoreProto(), urls, args, procs, rp)
            finally:
                for p in procs:
                    benchlib.stop_group(p)
        if "socketio" in args.only:
            procs, urls = start_sio(url, tmp)
            try:
                bench("python-socketio", SioProto(), urls, args, procs, rp)
            finally:
                for p in procs:
                    p.terminate()
                    p.wait(10)
    finally:
        rp.terminate()
        rp.wait(10)


if __name__ == "__main__":
    main()

"""Async handlers against sync handlers, and many suspended handlers.

    .venv/bin/python bench/async/bench.py [--seconds 5] [--rounds 3]
                                          [--connections 50] [--held 10000]

Starts one ``korectl run`` worker serving:

* ``/sync``: a plain handler answering at once;
* ``/async``: the same answer after ``await kore.suspend(0)`` (the coroutine
  is driven and really suspends: the greenlet yields to the hub once);
* ``/async-plain``: an ``async def`` handler that awaits nothing (what an
  async handler costs when nothing blocks);
* ``/hold``: awaits a queue nobody pushes to, so the handler stays suspended.

Part 1 alternates ``wrk`` rounds on /sync, /async-plain and /async
(keep-alive, same connection count) and compares the median of each, and
the worker's CPU time per request (from /proc; steadier than req/s on a
shared machine).  Part 2 opens ``--idle`` keep-alive connections that each
made one request and then stay open doing nothing, and reads the worker's
RSS.  Part 3 opens ``--held`` connections each suspended in /hold, reads the
worker's RSS, then closes them all and times how long the worker takes to
cancel every handler (the client disconnect cancels it).  Needs ``wrk`` on
the PATH for part 1.
"""

import argparse
import http.client
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from benchlib import cpu_seconds, free_port, rss_mb, stop_group, wait_port, worker_pid  # noqa: E402,E501
ROOT = os.path.dirname(os.path.dirname(HERE))
KORECTL = os.path.join(os.path.dirname(sys.executable), "korectl")

APP = r'''
import os
import kore

# Kore's default is 1000 requests in flight per worker (503 beyond).
kore.config.http_request_limit = int(os.environ["BENCH_REQUEST_LIMIT"])
# idle keep-alive connections must stay open while they are counted
kore.config.http_keepalive_time = 300

never = kore.queue()
state = {"held": 0, "cancelled": 0}

@kore.route("/sync", methods=["get"])
def sync(req):
    req.response(200, b"hello")

@kore.route("/async", methods=["get"])
async def async_(req):
    await kore.suspend(0)
    req.response(200, b"hello")

@kore.route("/async-plain", methods=["get"])
async def async_plain(req):
    req.response(200, b"hello")

@kore.route("/hold", methods=["get"])
async def hold(req):
    state["held"] += 1
    try:
        await never.pop()
    finally:
        state["held"] -= 1
        state["cancelled"] += 1

@kore.route("/count", methods=["get"])
def count(req):
    req.response(200, b"%d %d" % (state["held"], state["cancelled"]))
'''












def wrk(port, path, seconds, connections):
    """-> (requests per second, requests served)"""
    out = subprocess.run(["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds,
                          "http://127.0.0.1:%d%s" % (port, path)],
                         capture_output=True, text=True, timeout=seconds + 30).stdout
    m = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if not m or not n or errors:
        raise RuntimeError("wrk failed:\n" + out)
    return float(m.group(1)), int(n.group(1))


def count(port):
    for _ in range(50):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            c.request("GET", "/count")
            r = c.getresponse()
            body = r.read()
            if r.status == 200:
                held, cancelled = map(int, body.split())
                return held, cancelled
            last = "%d %r" % (r.status, body)
        except OSError as exc:
            last = repr(exc)
        finally:
            c.close()
        time.sleep(0.1)
    raise RuntimeError("/count failed: %s" % last)


def hold(port, n, batch=250):
    socks = []
    req = b"GET /hold HTTP/1.1\r\nHost: bench\r\n\r\n"
    while len(socks) < n:
        for _ in range(min(batch, n - len(socks))):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(req)
            socks.append(s)
        deadline = time.monotonic() + 60
        while count(port)[0] < len(socks):
            if time.monotonic() > deadline:
                raise RuntimeError("handlers did not start: %s of %d"
                                   % (count(port)[0], len(socks)))
            time.sleep(0.02)
    return socks


def idle(port, n, batch=250):
    """n connections that each made one request (answered) and stay open."""
    socks = []
    req = b"GET /sync HTTP/1.1\r\nHost: bench\r\n\r\n"
    while len(socks) < n:
        new = []
        for _ in range(min(batch, n - len(socks))):
            s = socket.create_connection(("127.0.0.1", port), timeout=30)
            s.sendall(req)
            new.append(s)
        for s in new:
            data = b""
            while not data.endswith(b"hello"):
                chunk = s.recv(4096)
                if not chunk:
                    raise RuntimeError("the server closed an idle connection")
                data += chunk
        socks.extend(new)
    return socks


def opened_rss(wpid, what, each, opener):
    """Open what ``opener`` opens, print the worker's RSS before and after;
    returns the sockets."""
    base = rss_mb(wpid)
    t0 = time.monotonic()
    socks = opener()
    t_open = time.monotonic() - t0
    full = settled_rss(wpid)
    print((what + ": worker RSS %.1f MB (before %.1f MB, +%.1f KB per %s); opened in %.1f s")
          % (len(socks), full, base, (full - base) * 1024 / len(socks), each, t_open))
    return socks


def settled_rss(pid, timeout=10.0):
    """The RSS once it stopped growing (two reads 0.2 s apart within 0.1 MB)."""
    last = rss_mb(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = rss_mb(pid)
        if abs(now - last) < 0.1:
            return now
        last = now
    return last


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--held", type=int, default=10000)
    ap.add_argument("--idle", type=int, default=10000)
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    most = max(args.held, args.idle)
    want = min(hard, most * 2 + 1000) if hard != resource.RLIM_INFINITY else most * 2 + 1000
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < most + 500:
        sys.exit("open file limit %d is too low for --held/--idle %d" % (want, most))

    tmp = tempfile.mkdtemp(prefix="kore-bench-async-")
    app = os.path.join(tmp, "app.py")
    with open(app, "w") as f:
        f.write(APP)
    port = free_port()
    log = open(os.path.join(tmp, "korectl.log"), "wb")
    srv = subprocess.Popen([KORECTL, "run", "--bind", "127.0.0.1:%d" % port,
                            "--workers", "1", "--log-level", "warning",
                            "--worker-connections", str(most + 1000), app],
                           stdout=log, stderr=subprocess.STDOUT, cwd=tmp,
                           env=dict(os.environ, BENCH_REQUEST_LIMIT=str(args.held + 100)),
                           start_new_session=True)
    try:
        if not wait_port(port):
            sys.exit("korectl did not start (log in %s)" % tmp)
        wpid = worker_pid(srv.pid)
        print("kore.aio bench: 1 worker (pid %d), python %s"
              % (wpid, sys.version.split()[0]))

        if shutil.which("wrk"):
            paths = ("/sync", "/async-plain", "/async")
            for path in paths:
                wrk(port, path, 1, args.connections)    # warm-up
            res = {p: [] for p in paths}
            cpu = {p: [] for p in paths}
            for r in range(args.rounds):
                for path in paths:
                    c0 = cpu_seconds(wpid)
                    rps, n = wrk(port, path, args.seconds, args.connections)
                    us = (cpu_seconds(wpid) - c0) / n * 1e6
                    res[path].append(rps)
                    cpu[path].append(us)
                    print("  round %d %-7s %9.0f req/s %7.1f us worker CPU per request"
                          % (r + 1, path, rps, us))
            med = {p: statistics.median(res[p]) for p in paths}
            mcpu = {p: statistics.median(cpu[p]) for p in paths}
            for p in paths:
                print("%-12s median %9.0f req/s (%.0f-%.0f)  %6.1f us worker CPU per request"
                      "  req/s vs sync %.3f  CPU vs sync %.3f"
                      % (p, med[p], min(res[p]), max(res[p]), mcpu[p], med[p] / med["/sync"],
                         mcpu[p] / mcpu["/sync"]))
        else:
            print("wrk not found: part 1 skipped")

        if args.idle:
            socks = opened_rss(wpid, "%d idle keep-alive connections", "connection",
                               lambda: idle(port, args.idle))
            for s in socks:
                s.close()

        if args.held:
            socks = opened_rss(wpid, "%d suspended handlers", "handler",
                               lambda: hold(port, args.held))
            t0 = time.monotonic()
            for s in socks:
                s.close()
            deadline = time.monotonic() + 120
            while count(port)[0] > 0 and time.monotonic() < deadline:
                time.sleep(0.05)
            held, cancelled = count(port)
            print("clients closed: %d handlers cancelled in %.2f s (%d still held)"
                  % (cancelled, time.monotonic() - t0, held))
    finally:
        stop_group(srv)
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

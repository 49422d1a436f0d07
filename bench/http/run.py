"""HTTP/1.1 benchmark: kore against uvicorn, granian (RSGI and ASGI),
socketify.py and gunicorn+gevent, one server alive at a time, wrk as the
client.

    bash bench/http/setup-peers.sh      # peers in bench/.peers/http1/<name>/
    python bench/http/run.py [--rounds 3] [--duration 10] [--connections 64]
                             [--only kore,uvicorn] [--paths /plaintext,/json]
                             [--workers 1,2] [--modes keepalive,pipeline]
                             [--depth 16] [--json results.json]

A server run is one server with one worker count and one mode: it is started,
warmed up, measured once per path (in a shuffled order) and stopped before
the next one starts.  Each round has every server run once, in a shuffled
order.  Modes: ``keepalive`` (``wrk -t1 -cN``, one request in flight per
connection) and ``pipeline`` (the same with ``pipeline.lua``: DEPTH
requests written at once per connection).  Printed per (workers, mode,
path) and server: median req/s with min-max over the rounds, median p99
latency, the CPU seconds the server's process tree used per 100k requests
(from /proc), and kore's median req/s divided by the peer's.
"""

import argparse
import json
import os
import platform
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
BIN = os.path.dirname(sys.executable)
PEERS = os.path.join(BENCH, ".peers", "http1")
sys.path.insert(0, BENCH)

from benchlib import free_port, stop_group, tree_cpu, venv_versions  # noqa: E402

SERVERS = ("kore", "uvicorn", "granian-rsgi", "granian-asgi", "socketify", "gunicorn-gevent")
# The venv each server runs from and the distributions whose versions are printed.
VENVS = {
    "kore": (os.path.dirname(BIN), ("kore-core", "kore-plugin-http", "gevent", "greenlet")),
    "uvicorn": (os.path.join(PEERS, "uvicorn"), ("uvicorn", "httptools", "uvloop")),
    "granian-rsgi": (os.path.join(PEERS, "granian"), ("granian", "uvloop")),
    "granian-asgi": (os.path.join(PEERS, "granian"), ("granian", "uvloop")),
    "socketify": (os.path.join(PEERS, "socketify"), ("socketify", "cffi")),
    "gunicorn-gevent": (os.path.join(PEERS, "gunicorn"), ("gunicorn", "gevent", "greenlet")),
}


def command(name, port, workers, mode):
    """argv of one server, each in its fastest documented configuration."""
    b, w = "127.0.0.1:%d" % port, str(workers)
    venv_bin = os.path.join(VENVS[name][0], "bin")
    if name == "kore":
        return [os.path.join(venv_bin, "korectl"), "run", "--bind", b, "--workers", w,
                "--log-level", "warning", os.path.join(HERE, "kore_app.py")]
    if name == "uvicorn":
        return [os.path.join(venv_bin, "uvicorn"), "--host", "127.0.0.1", "--port", str(port),
                "--loop", "uvloop", "--http", "httptools", "--workers", w,
                "--log-level", "warning", "--no-access-log", "--app-dir", HERE,
                "asgi_app:app"]
    if name.startswith("granian-"):
        iface = name.split("-")[1]
        cmd = [os.path.join(venv_bin, "granian"), "--interface", iface, "--host", "127.0.0.1",
               "--port", str(port), "--workers", w, "--http", "1", "--no-ws",
               "--loop", "uvloop", "--log-level", "warning", "--working-dir", HERE]
        if mode == "pipeline":
            cmd.append("--http1-pipeline-flush")
        return cmd + ["%s_app:app" % iface]
    if name == "socketify":
        return [os.path.join(venv_bin, "python"), "-m", "socketify", "socketify_app:run",
                "--interface", "socketify", "--host", "127.0.0.1", "--port", str(port),
                "--workers", w, "--disable-listen-log", "true",
                "--req-res-factory-maxitems", "200000"]
    if name == "gunicorn-gevent":
        return [os.path.join(venv_bin, "gunicorn"), "-k", "gevent", "-w", w, "-b", b,
                "--worker-connections", "1000", "--chdir", HERE, "--log-level", "warning",
                "wsgi_app:app"]
    raise ValueError(name)


def versions(names):
    """One line per server: the versions of what it runs on."""
    return venv_versions(VENVS, names)


def wait_http(port, path, timeout=60.0):
    """True once a GET of ``path`` is answered with 200."""
    req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n" % path).encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(req)
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def parse_latency(text):
    m = re.search(r"batch p99 (\d+) us", text)       # pipeline.lua's own figure
    if m:
        return int(m.group(1)) / 1000.0
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", text)
    if not m:
        return float("nan")
    return float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]


class Stalled(Exception):
    """wrk did not end: the server stopped answering some connection."""


def wrk(url, duration, conns, depth):
    cmd = ["wrk", "-t1", "-c%d" % conns, "-d%ds" % duration, "--latency"]
    if depth > 1:
        cmd += ["-s", os.path.join(HERE, "pipeline.lua"), url, "--", str(depth)]
    else:
        cmd.append(url)
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60).stdout
    except subprocess.TimeoutExpired:
        # wrk's Lua pipelining waits for every response of a batch: a server
        # that drops one of them stalls the connection past -d
        raise Stalled("wrk did not finish within %d s (%s)" % (duration + 60, url)) from None
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    errors = (int(bad.group(1)) if bad else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return (float(m.group(1)) if m else 0.0, int(n.group(1)) if n else 0,
            parse_latency(out), errors)


def server_run(name, workers, mode, paths, args):
    """Start one server, measure every path, stop it.  {path: result} or a
    string saying why it was skipped."""
    port = free_port()
    cmd = command(name, port, workers, mode)
    if not os.path.exists(cmd[0]):
        return "not installed: %s (bash bench/http/setup-peers.sh)" % cmd[0]
    depth = args.depth if mode == "pipeline" else 1
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, cwd=HERE)
    try:
        if not wait_http(port, paths[0]):
            return "did not answer %s within 60 s" % paths[0]
        url = "http://127.0.0.1:%d" % port
        for path in paths:                                   # warm up every path
            wrk(url + path, args.warmup, args.connections, depth)
        out = {}
        for path in random.sample(paths, len(paths)):
            cpu0 = tree_cpu(p.pid)
            rps, n, p99, errors = wrk(url + path, args.duration, args.connections, depth)
            cpu = tree_cpu(p.pid) - cpu0
            out[path] = (rps, p99, cpu / n * 100000 if n else float("nan"), errors)
        return out
    except Stalled as exc:
        return str(exc)
    finally:
        stop_group(p, 10)


def summary(results, names, args):
    head = "%-16s %9s %17s %9s %11s %9s" % ("server", "req/s", "min-max", "p99 ms",
                                          "cpu s/100k", "kore/peer")
    for workers in args.workers:
        for mode in args.modes:
            for path in args.paths:
                print("\n%d worker%s, %s%s, %s" % (
                    workers, "s" if workers > 1 else "", mode,
                    " depth %d (p99: of a whole batch)" % args.depth if mode == "pipeline"
                    else "", path))
                print(head)
                kore = results.get(("kore", workers, mode, path))
                kore_rps = statistics.median(r[0] for r in kore) if kore else None
                for name in names:
                    rs = results.get((name, workers, mode, path))
                    if not rs:
                        continue
                    rps = statistics.median(r[0] for r in rs)
                    ratio = "%.2fx" % (kore_rps / rps) if kore_rps and rps and name != "kore" \
                        else "-"
                    errs = sum(r[3] for r in rs)
                    print("%-16s %9.0f %17s %9.2f %11.2f %9s%s" % (
                        name, rps, "%.0f-%.0f" % (min(r[0] for r in rs), max(r[0] for r in rs)),
                        statistics.median(r[1] for r in rs), statistics.median(r[2] for r in rs),
                        ratio, "  (%d errors)" % errs if errs else ""))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of wrk per path first")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--only", default="", help="comma-separated: " + ",".join(SERVERS))
    ap.add_argument("--paths", default="/plaintext,/json")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--modes", default="keepalive,pipeline")
    ap.add_argument("--depth", type=int, default=16, help="requests in flight, pipeline mode")
    ap.add_argument("--json", default="", help="also write every run's figures here")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    only = [x for x in args.only.split(",") if x]
    unknown = sorted(set(only) - set(SERVERS))
    if unknown:
        sys.exit("--only: unknown server %s (choose from %s)" % (", ".join(unknown),
                                                                 ",".join(SERVERS)))
    names = [x for x in SERVERS if not only or x in only]
    args.paths = args.paths.split(",")
    args.workers = [int(x) for x in args.workers.split(",")]
    args.modes = args.modes.split(",")
    if set(args.modes) - {"keepalive", "pipeline"}:
        sys.exit("--modes: choose from keepalive,pipeline")

    load = os.getloadavg()[0]
    print("%s, %d CPUs, kernel %s, %s" % (platform.machine(), os.cpu_count(),
                                          platform.release(),
                                          subprocess.run(["wrk", "-v"], capture_output=True,
                                                         text=True).stdout.split(" [")[0]))
    git = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"],
                         capture_output=True, text=True).stdout.strip()
    print("kore at commit %s" % (git or "?"))
    print("\n".join(versions(names)))
    print("load average before the first run: %.2f%s" % (
        load, "  -- the machine is busy: these are loaded-machine figures" if load > 0.5 else ""))
    print("wrk -t1 -c%d -d%ds --latency%s\n" % (
        args.connections, args.duration,
        ", pipeline: -s pipeline.lua -- %d" % args.depth if "pipeline" in args.modes else ""))

    results, raw = {}, []
    for rnd in range(args.rounds):
        order = [(n, w, m) for n in names for w in args.workers for m in args.modes]
        random.shuffle(order)
        for name, workers, mode in order:
            r = server_run(name, workers, mode, args.paths, args)
            if isinstance(r, str):
                print("round %d %-16s w%d %-9s skipped: %s" % (rnd + 1, name, workers, mode, r),
                      flush=True)
                continue
            for path, fig in r.items():
                results.setdefault((name, workers, mode, path), []).append(fig)
                raw.append({"round": rnd + 1, "server": name, "workers": workers, "mode": mode,
                            "path": path, "rps": fig[0], "p99_ms": fig[1],
                            "cpu_s_per_100k": fig[2], "errors": fig[3]})
                print("round %d %-16s w%d %-9s %-10s %9.0f req/s  p99 %7.2f ms  "
                      "cpu %6.2f s/100k%s" % ((rnd + 1, name, workers, mode, path) + fig[:3] +
                                              ("  (%d errors)" % fig[3] if fig[3] else "",)),
                      flush=True)
    summary(results, names, args)
    end_load = os.getloadavg()[0]
    print("\nload average after the last run: %.2f (the bench itself loads both cores)"
          % end_load)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"versions": versions(names), "load_before": load, "args": vars(args),
                       "runs": raw}, f, indent=1)


if __name__ == "__main__":
    main()

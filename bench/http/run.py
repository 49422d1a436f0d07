"""Interleaved wrk rounds: kore vs uvicorn, gunicorn+gevent, granian (1 worker each).

    python bench/http/run.py [--rounds 3] [--duration 10] [--connections 64]
                             [--only kore,uvicorn] [--paths /plaintext,/json]

Each server runs for the whole benchmark; each round runs wrk once per server
and path, in a shuffled order.  Printed per server and path: median req/s,
median p99 latency, CPU seconds the server used per 100k requests, and the
ratio of kore's req/s to the peer's.
"""

import argparse
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)
sys.path.insert(0, os.path.dirname(HERE))

from benchlib import free_port, group_cpu, stop_group, wait_port  # noqa: E402




def commands(port):
    b = "127.0.0.1:%d" % port
    return {
        "kore": [os.path.join(BIN, "korectl"), "run", "--bind", b, "--workers", "1",
                 "--log-level", "warning", os.path.join(HERE, "kore_app.py")],
        "uvicorn": [os.path.join(BIN, "uvicorn"), "--host", "127.0.0.1", "--port", str(port),
                    "--loop", "uvloop", "--http", "httptools", "--workers", "1",
                    "--log-level", "warning", "--no-access-log", "--app-dir", HERE,
                    "asgi_app:app"],
        "gunicorn-gevent": [os.path.join(BIN, "gunicorn"), "-k", "gevent", "-w", "1",
                            "-b", b, "--chdir", HERE, "--log-level", "warning",
                            "wsgi_app:app"],
        "granian": [os.path.join(BIN, "granian"), "--interface", "asgi", "--host",
                    "127.0.0.1", "--port", str(port), "--workers", "1", "--http", "1",
                    "--no-ws", "--log-level", "warning", "--working-dir", HERE,
                    "asgi_app:app"],
    }






def parse_latency(text):
    m = re.search(r"99%\s+([\d.]+)(us|ms|s)", text)
    if not m:
        return float("nan")
    v = float(m.group(1))
    return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v


def wrk(url, duration, conns):
    out = subprocess.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % duration, "--latency", url],
                         capture_output=True, text=True, timeout=duration + 30).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    errs = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return (float(m.group(1)) if m else 0.0, int(n.group(1)) if n else 0,
            parse_latency(out), int(errs.group(1)) if errs else 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--only", default="")
    ap.add_argument("--paths", default="/plaintext,/json")
    args = ap.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    names = [n for n in ("kore", "uvicorn", "gunicorn-gevent", "granian")
             if not args.only or n in args.only.split(",")]
    paths = args.paths.split(",")
    procs = {}
    results = {}
    try:
        for name in names:
            port = free_port()
            cmd = commands(port)[name]
            if not os.path.exists(cmd[0]):
                print("skipping %s: %s not installed" % (name, cmd[0]))
                continue
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True, cwd=HERE)
            if not wait_port(port):
                print("skipping %s: did not start" % name)
                os.killpg(p.pid, signal.SIGKILL)
                continue
            procs[name] = (p, port)
        for name, (p, port) in procs.items():      # warm up
            for path in paths:
                wrk("http://127.0.0.1:%d%s" % (port, path), 1, args.connections)
        for rnd in range(args.rounds):
            order = [(n, path) for n in procs for path in paths]
            random.shuffle(order)
            for name, path in order:
                p, port = procs[name]
                cpu0 = group_cpu(p.pid)
                rps, n, p99, errs = wrk("http://127.0.0.1:%d%s" % (port, path),
                                        args.duration, args.connections)
                cpu = group_cpu(p.pid) - cpu0
                results.setdefault((name, path), []).append(
                    (rps, p99, cpu / n * 100000 if n else float("nan"), errs))
                print("round %d %-16s %-11s %9.0f req/s  p99 %7.2f ms  cpu %.2f s/100k%s"
                      % (rnd + 1, name, path, rps, p99, cpu / n * 100000 if n else 0,
                         "  (%d errors)" % errs if errs else ""), flush=True)
    finally:
        for p, _ in procs.values():
            stop_group(p, 10)
    print()
    print("%-16s %-11s %10s %10s %12s %10s" % ("server", "path", "req/s", "p99 ms",
                                                 "cpu s/100k", "kore/peer"))
    for path in paths:
        kore = results.get(("kore", path))
        kore_rps = statistics.median(r[0] for r in kore) if kore else None
        for name in procs:
            rs = results.get((name, path))
            if not rs:
                continue
            rps = statistics.median(r[0] for r in rs)
            p99 = statistics.median(r[1] for r in rs)
            cpu = statistics.median(r[2] for r in rs)
            ratio = "%.2fx" % (kore_rps / rps) if kore_rps and name != "kore" else "-"
            print("%-16s %-11s %10.0f %10.2f %12.2f %10s" % (name, path, rps, p99, cpu, ratio))


if __name__ == "__main__":
    main()

"""HTTP/2 benchmark: kore vs granian, gunicorn 27 (h2) and hypercorn, one
worker each, one server alive at a time, h2load as the client.

    bash bench/http2/setup-peers.sh          # peers in bench/.peers/<name>/
    python bench/http2/run.py [--rounds 3] [--requests 20000]
                              [--only kore,granian] [--modes tls,h2c]
                              [--loads c10m10,c64m1,1m]

Loads: ``c10m10`` = ``h2load -c 10 -m 10``, ``c64m1`` = ``-c 64 -m 1`` on
/plaintext, ``1m`` = ``-n 400 -c 4 -m 8`` on a 1 MiB response (MB/s).  Each
round runs every (mode, load) against every server in a shuffled order; each
run starts the server, warms it up, measures, and stops it.  Printed:
median req/s (MB/s for 1m), median mean request time, server CPU seconds per
100k requests, and kore's ratio to each peer.
"""

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.path.dirname(HERE)
BIN = os.path.dirname(sys.executable)
PEERS = os.path.join(BENCH, ".peers")
sys.path.insert(0, BENCH)

from benchlib import free_port, group_cpu, stop_group, venv_versions, wait_port  # noqa: E402

# The venv each server runs from and the distributions whose versions are printed.
VENVS = {
    "kore": (os.path.dirname(BIN), ("kore-core", "kore-plugin-http2", "h2", "gevent")),
    "granian": (os.path.join(PEERS, "granian"), ("granian",)),
    "gunicorn": (os.path.join(PEERS, "gunicorn"), ("gunicorn", "h2", "gevent")),
    "hypercorn": (os.path.join(PEERS, "hypercorn"), ("hypercorn", "h2", "uvloop")),
}

LOADS = {
    "c10m10": (["-c", "10", "-m", "10"], "/plaintext"),
    "c64m1": (["-c", "64", "-m", "1"], "/plaintext"),
    "1m": (["-c", "4", "-m", "8"], "/1m"),
}


def command(name, mode, port, cert, key):
    """(argv, env, port the client talks to) for one server."""
    tls = mode == "tls"
    env = dict(os.environ)
    if name == "kore":
        other = free_port()
        env.update({"CERT": cert, "KEY": key,
                    "TLS_PORT": str(port if tls else other), "PORT": str(other if tls else port)})
        return [os.path.join(BIN, "korectl"), "run", "--workers", "1", "--log-level",
                "warning", "--http2-cleartext", "prior-knowledge",
                os.path.join(HERE, "kore_app.py")], env
    pbin = os.path.join(PEERS, name, "bin")
    if name == "granian":
        cmd = [os.path.join(pbin, "granian"), "--interface", "asgi", "--host", "127.0.0.1",
               "--port", str(port), "--workers", "1", "--http", "2", "--no-ws",
               "--log-level", "warning", "--working-dir", HERE]
        if tls:
            cmd += ["--ssl-certificate", cert, "--ssl-keyfile", key]
        return cmd + ["asgi_app:app"], env
    if name == "gunicorn":
        cmd = [os.path.join(pbin, "gunicorn"), "-k", "gevent", "-w", "1",
               "-b", "127.0.0.1:%d" % port, "--chdir", HERE, "--log-level", "warning",
               "--http-protocols", "h2,h1"]
        if tls:
            cmd += ["--certfile", cert, "--keyfile", key]
        else:
            cmd += ["--http2-cleartext", "prior-knowledge", "--forwarded-allow-ips",
                    "127.0.0.1"]
        return cmd + ["wsgi_app:app"], env
    if name == "hypercorn":
        cmd = [os.path.join(pbin, "hypercorn"), "--workers", "1", "--worker-class", "uvloop",
               "-b", "127.0.0.1:%d" % port, "--log-level", "warning",
               "--config", os.path.join(HERE, "hypercorn.toml")]
        if tls:
            cmd += ["--certfile", cert, "--keyfile", key]
        env["PYTHONPATH"] = HERE
        return cmd + ["asgi_app:app"], env
    raise ValueError(name)


def h2load(url, n, extra):
    r = subprocess.run(["h2load", "-n", str(n), "-t", "1"] + extra + [url],
                       capture_output=True, text=True, timeout=300)
    out = r.stdout
    m = re.search(r"finished in [\d.]+m?s, ([\d.]+) req/s, ([\d.]+)([KMG]?B)/s", out)
    ok = re.search(r"(\d+) succeeded, (\d+) failed, (\d+) errored", out)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)", out)
    if not m or not ok:
        return None
    rps = float(m.group(1))
    scale = {"B": 1e-6, "KB": 1e-3, "MB": 1.0, "GB": 1e3}[m.group(3)]
    mbps = float(m.group(2)) * scale
    t = float("nan")
    if mean:
        t = float(mean.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[mean.group(2)]
    return rps, mbps, t, int(ok.group(1)), int(ok.group(2)) + int(ok.group(3))


def one_run(name, mode, load, n, cert, key):
    port = free_port()
    cmd, env = command(name, mode, port, cert, key)
    if not os.path.exists(cmd[0]):
        return "not installed: " + cmd[0]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                         start_new_session=True, cwd=HERE)
    try:
        if not wait_port(port):
            return "did not start"
        extra, path = LOADS[load]
        url = "%s://127.0.0.1:%d%s" % ("https" if mode == "tls" else "http", port, path)
        count = 400 if load == "1m" else n
        warm = h2load(url, max(200, count // 10), extra)
        if warm is None or warm[3] == 0:
            return "warm-up failed"
        cpu0 = group_cpu(p.pid)
        res = h2load(url, count, extra)
        cpu = group_cpu(p.pid) - cpu0
        if res is None:
            return "h2load failed"
        rps, mbps, mean, ok, bad = res
        return rps, mbps, mean, cpu / max(ok, 1) * 100000, bad
    finally:
        stop_group(p, 10)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--only", default="")
    ap.add_argument("--modes", default="tls,h2c")
    ap.add_argument("--loads", default="c10m10,c64m1")
    args = ap.parse_args()
    if shutil.which("h2load") is None:
        sys.exit("h2load is not installed (apt-get install nghttp2-client)")
    names = [x for x in ("kore", "granian", "gunicorn", "hypercorn")
             if not args.only or x in args.only.split(",")]
    print("\n".join(venv_versions(VENVS, names)))
    print(subprocess.run(["h2load", "--version"], capture_output=True,
                         text=True).stdout.strip(), flush=True)
    tmp = tempfile.mkdtemp(prefix="kore-h2bench-")
    cert, key = os.path.join(tmp, "c.pem"), os.path.join(tmp, "k.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", "/CN=localhost"], check=True,
                   capture_output=True)
    results = {}
    cases = [(m, l) for m in args.modes.split(",") for l in args.loads.split(",")]
    try:
        for rnd in range(args.rounds):
            order = [(nm, m, l) for nm in names for m, l in cases]
            random.shuffle(order)
            for nm, m, l in order:
                r = one_run(nm, m, l, args.requests, cert, key)
                if isinstance(r, str):
                    print("round %d %-10s %-4s %-7s skipped: %s" % (rnd + 1, nm, m, l, r),
                          flush=True)
                    continue
                results.setdefault((nm, m, l), []).append(r)
                print("round %d %-10s %-4s %-7s %9.0f req/s %8.1f MB/s  mean %7.2f ms  "
                      "cpu %6.2f s/100k  errors %d" % ((rnd + 1, nm, m, l) + r), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print("%-10s %-4s %-7s %10s %9s %9s %11s %10s" % ("server", "mode", "load", "req/s",
                                                     "MB/s", "mean ms", "cpu s/100k",
                                                     "kore/peer"))
    for m, l in cases:
        kore = results.get(("kore", m, l))
        key_i = 1 if l == "1m" else 0
        kv = statistics.median(r[key_i] for r in kore) if kore else None
        for nm in names:
            rs = results.get((nm, m, l))
            if not rs:
                continue
            v = statistics.median(r[key_i] for r in rs)
            ratio = "%.2fx" % (kv / v) if kv and nm != "kore" and v else "-"
            print("%-10s %-4s %-7s %10.0f %9.1f %9.2f %11.2f %10s" % (
                nm, m, l, statistics.median(r[0] for r in rs),
                statistics.median(r[1] for r in rs), statistics.median(r[2] for r in rs),
                statistics.median(r[3] for r in rs), ratio))


if __name__ == "__main__":
    main()

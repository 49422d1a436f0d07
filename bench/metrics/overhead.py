"""Cost of kore-plugin-metrics plus the JSON access log on the HTTP path.

Two servers with one worker each, on the same app (bench/http/kore_app.py):
"off" (no metrics listener, no access log) and "on" (--metrics-bind and
--access-log FILE --access-log-format json).  Rounds alternate between them
in a shuffled order; the summary prints the median req/s of each, the ratio
and the CPU seconds per 100k requests (steadier on a shared machine).

    .venv/bin/python bench/metrics/overhead.py --rounds 5 --duration 5

Both servers load only the http and metrics plugins (``--plugins``): another
plugin's ``kore_http_access_log_fields`` (the gateway's transaction ids) is
that plugin's cost, measured with ``--plugins all``.  The access log of
"on" is removed at the end.

"off" has the plugin installed but no listener and no access log: its
workers count nothing (requests are counted only when --metrics-bind or
--max-requests is given), so the counting is part of what "on" costs.
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
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import free_port, group_cpu, stop_group, wait_port  # noqa: E402

BIN = os.path.dirname(sys.executable)
APP = os.path.join(ROOT, "bench", "http", "kore_app.py")


def wrk(url, duration, conns):
    out = subprocess.run(["wrk", "-t1", "-c%d" % conns, "-d%ds" % duration, url],
                         capture_output=True, text=True, timeout=duration + 30).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    n = re.search(r"(\d+) requests in", out)
    return float(m.group(1)) if m else 0.0, int(n.group(1)) if n else 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=int, default=5)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--on", default="metrics,accesslog",
                    help="what 'on' turns on: metrics, accesslog or both")
    ap.add_argument("--format", default="json",
                    help="--access-log-format of 'on': json, common or a gunicorn string")
    ap.add_argument("--plugins", default="http,metrics",
                    help="KORE_PLUGINS of both servers ('all': every installed "
                         "plugin, whose own access-log fields then count too)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="kore-metrics-bench-")
    procs = {}
    for name in ("off", "on"):
        port = free_port()
        cmd = [os.path.join(BIN, "korectl"), "run", "--bind", "127.0.0.1:%d" % port,
               "--workers", "1", "--log-level", "warning"]
        if name == "on" and "metrics" in a.on:
            cmd += ["--metrics-bind", "127.0.0.1:%d" % free_port()]
        if name == "on" and "accesslog" in a.on:
            cmd += ["--access-log", os.path.join(tmp, "access.log"),
                    "--access-log-format", a.format]
        env = dict(os.environ)
        if a.plugins != "all":
            env["KORE_PLUGINS"] = a.plugins
        p = subprocess.Popen(cmd + [APP], stdout=subprocess.DEVNULL, env=env,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        if not wait_port(port):
            raise SystemExit("%s did not start" % name)
        procs[name] = (p, port)
    res = {n: [] for n in procs}
    cpu = {n: [0.0, 0] for n in procs}
    try:
        for _ in range(a.rounds):
            order = list(procs)
            random.shuffle(order)
            for name in order:
                p, port = procs[name]
                c0 = group_cpu(p.pid)
                rps, n = wrk("http://127.0.0.1:%d/plaintext" % port, a.duration, a.connections)
                cpu[name][0] += group_cpu(p.pid) - c0
                cpu[name][1] += n
                res[name].append(rps)
    finally:
        for p, _ in procs.values():
            stop_group(p)
        shutil.rmtree(tmp, ignore_errors=True)
    med = {n: statistics.median(v) for n, v in res.items()}
    for n in ("off", "on"):
        print("%-4s median %8.0f req/s  rounds %s  CPU s/100k req %.2f"
              % (n, med[n], " ".join("%.0f" % x for x in res[n]),
                 100000 * cpu[n][0] / max(1, cpu[n][1])))
    print("on/off: %.3f (%.1f%% fewer req/s)" % (med["on"] / med["off"],
                                                   100 * (1 - med["on"] / med["off"])))


if __name__ == "__main__":
    main()

"""Instructions per request that the access log adds, counted by valgrind.

Wall-clock and CPU-time figures move by 10-30% on a shared machine; the
number of instructions the interpreter runs per request does not.  This runs
the http plugin's connection loop in-process (as ``bench/http/hotpath.py``:
N pipelined requests over a fake socket, so recv/send and the event loop are
not counted) under callgrind, with N1 and N2 requests, and prints
(Ir(N2) - Ir(N1)) / (N2 - N1) for each configuration:

    .venv/bin/python bench/metrics/instructions.py
    .venv/bin/python bench/metrics/instructions.py --formats off,json,common

``off`` is no access log; the others are ``--access-log FILE
--access-log-format X`` (the file is written and removed); ``+metrics``
(``json+metrics``, ``off+metrics``) adds the request counting a worker with
``--metrics-bind`` does.  All load only the http and metrics plugins.
Needs valgrind; each configuration takes about a minute.

``--child N FORMAT`` is the process callgrind runs.  Its clock for the log
lines advances 25 us per request (40,000 requests/s), whatever valgrind's
slowdown, so the once-per-millisecond and once-per-second caches hit as
often as at full speed.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
APP = os.path.join(ROOT, "bench", "http", "kore_app.py")


def child(n, fmt, path, logfile):
    from gevent import monkey
    monkey.patch_all()
    sys.path.insert(0, os.path.join(ROOT, "bench", "http"))
    from hotpath import FakeSock, Listener
    from kore import plugins, runtime
    plugins.install()
    import runpy
    runpy.run_path(APP)
    from kore_http import accesslog, declare, listeners, net
    from kore_http.h1 import server
    from kore_http.settings import SETTINGS
    reg = runtime.registry()
    reg.set("http_request_ms", 1000000, "cli")
    parts = fmt.split("+")
    if "metrics" in parts:
        # what a worker with --metrics-bind registers (kore_worker_init)
        reg.set("metrics_bind", "127.0.0.1:0", "cli")
        from kore_metrics import plugin as metrics_plugin
        metrics_plugin._count_requests()
        parts.remove("metrics")
    fmt = parts[0] if parts else "off"
    if fmt != "off":
        reg.set("http_access_log", logfile, "cli")
        reg.set("http_access_log_format", fmt, "cli")
    declare.resolve(None, ["127.0.0.1:8080"])
    SETTINGS.load()
    SETTINGS.accesslog = accesslog.configure()
    # under valgrind a request takes ~50 times longer: with the real clock
    # every line would start a new millisecond (and often a new second) and
    # the time caches would miss far more often than at full speed.  The
    # clock advances 25 us per line, as at 40,000 requests/s.
    import itertools
    import time
    accesslog.time = itertools.count(time.time(), 0.000025).__next__
    srv = declare.state.servers["default"]
    listeners.set_catchall(srv)
    req = (b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: bench/1.0\r\n\r\n"
           % path.encode())
    s = FakeSock(req * n)
    c = server.H1Connection(net.Client(s, ("127.0.0.1", 5000), Listener(srv)))
    c.tls = True          # the loop reads with sock.recv (no io watcher)
    server.loop(c, b"")
    accesslog.stop()
    assert s.calls == n, (s.calls, n)


def count(n, fmt, path, logfile):
    env = dict(os.environ, KORE_PLUGINS="http,metrics")
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
         os.path.abspath(__file__), "--child", str(n), fmt, "--path", path,
         "--logfile", logfile],
        env=env, capture_output=True, text=True, timeout=900)
    m = re.search(r"Collected : (\d+)", out.stderr)
    if m is None:
        raise SystemExit("callgrind gave no count:\n%s" % out.stderr[-2000:])
    return int(m.group(1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=2, metavar=("N", "FORMAT"))
    ap.add_argument("--path", default="/plaintext")
    ap.add_argument("--logfile", default="")
    ap.add_argument("--formats", default="off,json")
    ap.add_argument("--n1", type=int, default=500)
    ap.add_argument("--n2", type=int, default=2500)
    a = ap.parse_args()
    if a.child:
        return child(int(a.child[0]), a.child[1], a.path, a.logfile)
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    tmp = tempfile.mkdtemp(prefix="kore-log-instr-")
    res = {}
    try:
        for fmt in a.formats.split(","):
            log = os.path.join(tmp, "access.log")
            i1 = count(a.n1, fmt, a.path, log)
            i2 = count(a.n2, fmt, a.path, log)
            res[fmt] = (i2 - i1) / (a.n2 - a.n1)
            print("%-8s %8.0f instructions/request" % (fmt, res[fmt]), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if "off" in res:
        for fmt, v in res.items():
            if fmt != "off":
                print("%s / off: %.3f (+%.0f instructions)" % (fmt, v / res["off"],
                                                             v - res["off"]))


if __name__ == "__main__":
    sys.exit(main())

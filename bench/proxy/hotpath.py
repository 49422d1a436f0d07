"""The Python cost of one proxied request, without the client socket.

Starts one nginx upstream (a 13-byte answer, as bench/proxy/run.py), then
runs the http plugin's connection loop in-process over a fake client socket
holding N pipelined GETs for the proxy mount ``/`` -> ``@up``; each request
is a real exchange with nginx on a pooled keep-alive connection.  What is
timed is the proxy's side: parsing, routing, the mount, header rewriting,
the upstream client and its two socket calls, the response relay (nginx's
CPU is not counted; the client's recv/send are not made).

    .venv/bin/python bench/proxy/hotpath.py [--requests 20000] [--profile 25]

``--profile N`` runs one more round under cProfile and prints the N
functions with the most own time.
"""

import argparse
import os
import shutil
import sys
import tempfile
import time

from gevent import monkey

monkey.patch_all()

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "http"))

import socket  # noqa: E402

from hotpath import FakeSock, Listener  # noqa: E402  (bench/http/hotpath.py)

_IDLE = socket.socketpair()     # never readable: the client watcher stays quiet


class ProxySock(FakeSock):
    """bench/http's fake client socket with a real, silent fd: the proxy
    watches the client for EOF while the upstream answers."""

    def fileno(self):
        return _IDLE[0].fileno()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", type=int, default=0, metavar="N")
    args = ap.parse_args()

    import importlib.util
    spec = importlib.util.spec_from_file_location("proxy_run", os.path.join(HERE, "run.py"))
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    from benchlib import stop_group
    tmp = tempfile.mkdtemp(prefix="kore-proxy-hot-")
    up, port = run.upstream(tmp, "upstream")
    try:
        os.environ["UPS"] = "127.0.0.1:%d" % port
        from kore import plugins, runtime
        plugins.install()
        import runpy
        runpy.run_path(os.path.join(HERE, "kore_proxy_app.py"))
        from kore_http import declare, listeners, net
        from kore_http.h1 import server
        from kore_http.settings import SETTINGS
        runtime.registry().set("http_request_ms", 1000000, "bench")
        declare.resolve(None, ["127.0.0.1:8080"])
        SETTINGS.load()
        srv = declare.state.servers["default"]
        listeners.set_catchall(srv)
        req = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"

        def once(n):
            s = ProxySock(req * n)
            c = server.H1Connection(net.Client(s, ("127.0.0.1", 5000), Listener(srv)))
            c.tls = True        # the loop reads with sock.recv (no io watcher)
            t0, c0 = time.perf_counter(), time.process_time()
            server.loop(c, b"")
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            assert s.calls >= 1 and s.sent >= n * 100, (s.calls, s.sent)
            return dt / n * 1e6, cpu / n * 1e6

        once(500)       # connect, warm the pool
        best = None
        for _ in range(args.rounds):
            us, cus = once(args.requests)
            print("%.1f us/request (CPU %.1f us)" % (us, cus))
            best = (us, cus) if best is None else (min(best[0], us), min(best[1], cus))
        print("best %.1f us/request, CPU %.1f us (%d requests through the proxy)"
              % (best[0], best[1], args.requests))
        if args.profile:
            import cProfile
            import pstats
            prof = cProfile.Profile(time.process_time)   # CPU, not wall time
            prof.enable()
            once(args.requests)
            prof.disable()
            pstats.Stats(prof).sort_stats(os.environ.get("SORT", "tottime")).print_stats(args.profile)
    finally:
        stop_group(up)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

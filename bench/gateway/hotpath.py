"""The gateway's Python cost per request, without sockets (see
bench/http/hotpath.py): N pipelined requests through the HTTP/1.1 loop over
a fake socket, for GET /plain (auth=False) and GET /secure with a valid
HS256 token.  Run it once with the plugin loaded and once without:

    .venv/bin/python bench/gateway/hotpath.py
    KORE_PLUGINS=http BENCH_GATEWAY=0 .venv/bin/python bench/gateway/hotpath.py --paths /plain
"""

import argparse
import os
import sys
import time

from gevent import monkey

monkey.patch_all()

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "http"))

from hotpath import FakeSock, Listener  # noqa: E402

SECRET = "bench-secret-bench-secret-bench-0001"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--paths", default="/plain,/secure")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()

    import jwt
    from kore import plugins, runtime
    plugins.install()
    import runpy
    runpy.run_path(os.path.join(HERE, "app.py"))
    from kore_http import declare, listeners, net
    from kore_http.h1 import server
    from kore_http.settings import SETTINGS
    from kore_http.extend import declare_plugin_routes
    runtime.registry().set("http_request_ms", 1000000, "bench")
    declare.resolve(None, ["127.0.0.1:8080"])
    declare_plugin_routes()
    SETTINGS.load()
    if SETTINGS.wrapped:            # as kore_worker_serve does in a worker
        from kore_http.handlechain import CHAIN
        from kore_http.plugin import kore_http_handle
        CHAIN.load(kore_http_handle)
    srv = declare.state.servers["default"]
    listeners.set_catchall(srv)
    tok = jwt.encode({"sub": "bench", "exp": int(time.time()) + 86400}, SECRET)
    for spec in args.paths.split(","):
        path = spec.split("+")[0]
        head = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n" % path.encode()
        if path == "/secure" or spec.endswith("+token"):
            head += b"Authorization: Bearer %s\r\n" % tok.encode()
        req = head + b"\r\n"
        best = None
        for _ in range(args.rounds):
            s = FakeSock(req * args.requests)
            c = server.H1Connection(net.Client(s, ("127.0.0.1", 5000), Listener(srv)))
            c.tls = True
            if args.profile:
                import cProfile
                import pstats
                pr = cProfile.Profile(time.process_time)
                pr.enable()
            c0 = time.process_time()
            server.loop(c, b"")
            cpu = time.process_time() - c0
            if args.profile:
                pr.disable()
                pstats.Stats(pr).sort_stats(os.environ.get("SORT", "tottime")).print_stats(int(os.environ.get("TOP", "30")))
                args.profile = False
            assert s.calls == args.requests, (s.calls, args.requests)
            us = cpu / args.requests * 1e6
            best = us if best is None else min(best, us)
        print("%-14s best CPU %.2f us/request (%d requests)" % (spec, best, args.requests))


if __name__ == "__main__":
    sys.exit(main())

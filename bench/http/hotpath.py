"""The Python cost of one request, without sockets.

Runs the http plugin's connection loop in-process over a fake socket that
hands it N pipelined requests in one buffer and swallows the responses, so
what is timed is parsing, routing, the request object, the handler and the
response head: the part of the per-request budget that is ours (the rest
is recv/send and the event loop).

    .venv/bin/python bench/http/hotpath.py [--requests 20000] [--path /plaintext]
                                           [--tls]

By default the loop runs its plain-TCP path (the one a wrk run takes: the
raw socket's ``recv``/``send``; the fake socket's descriptor is one end of a
socketpair whose other end is closed, so the loop's final wait for the next
request sees end-of-file at once).  ``--tls`` runs the TLS path instead
(``sock.recv``/``sock.sendall``).
"""

import argparse
import os
import socket
import sys
import time

from gevent import monkey

monkey.patch_all()

HERE = os.path.dirname(os.path.abspath(__file__))


class FakeSock:
    family = 2

    def __init__(self, data, fd=0):
        self.data = data
        self.fd = fd
        self.sent = 0
        self.calls = 0
        self.responses = 0
        self._sock = self          # the plain path's raw socket

    def fileno(self):
        return self.fd

    def recv(self, n):
        d, self.data = self.data, b""
        return d

    def sendall(self, data):
        self.sent += len(data)
        self.calls += 1
        self.responses += data.count(b"HTTP/1.1 200 ")

    def send(self, data):
        self.sendall(data)
        return len(data)

    def settimeout(self, t):
        pass

    def close(self):
        pass


class Listener:
    ssl_context = None

    def __init__(self, server):
        self.server = server


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--path", default="/plaintext")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tls", action="store_true", help="run the TLS path of the loop")
    args = ap.parse_args()

    from kore import plugins, runtime
    plugins.install()
    import runpy
    runpy.run_path(os.path.join(HERE, "kore_app.py"))
    from kore_http import declare, listeners, net
    from kore_http.h1 import server
    from kore_http.settings import SETTINGS
    runtime.registry().set("http_request_ms", 1000000, "bench")
    declare.resolve(None, ["127.0.0.1:8080"])
    SETTINGS.load()
    srv = declare.state.servers["default"]
    listeners.set_catchall(srv)
    req = b"GET %s HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n" % args.path.encode()
    best = None
    best_cpu = None
    for _ in range(args.rounds):
        ours, peer = socket.socketpair()
        peer.close()              # the loop's wait after the last request sees EOF
        s = FakeSock(req * args.requests, ours.fileno())
        c = server.H1Connection(net.Client(s, ("127.0.0.1", 5000), Listener(srv)))
        c.tls = args.tls          # TLS: the loop reads with sock.recv (no io watcher)
        t0 = time.perf_counter()
        c0 = time.process_time()
        server.loop(c, b"" if args.tls else s.recv(0))
        dt = time.perf_counter() - t0
        cpu = time.process_time() - c0
        c.close_watchers()
        ours.close()
        assert s.responses == args.requests, (s.responses, args.requests)
        us = dt / args.requests * 1e6
        cus = cpu / args.requests * 1e6
        best = us if best is None else min(best, us)
        best_cpu = cus if best_cpu is None else min(best_cpu, cus)
        print("%.2f us/request (CPU %.2f us, %d sends)" % (us, cus, s.calls))
    print("best %.2f us/request, CPU %.2f us (%d requests, %s)"
          % (best, best_cpu, args.requests, args.path))


if __name__ == "__main__":
    sys.exit(main())

"""A daemon controlled with korectl, and the worker watchdog.

    korectl start -p /tmp/daemon-example.pid --log-file /tmp/daemon-example.log \
        -b 127.0.0.1:8080 --timeout 5 examples/daemon/app.py
    korectl status -p /tmp/daemon-example.pid
    curl http://127.0.0.1:8080/            # which worker answered
    curl http://127.0.0.1:8080/stuck       # blocks a worker: after 5 s the log
                                           # shows its stack and it is replaced
    korectl reload -p /tmp/daemon-example.pid
    korectl restart -p /tmp/daemon-example.pid
    korectl stop -p /tmp/daemon-example.pid
"""

import os

import kore


class Daemon:
    def configure(self, args):
        kore.config.workers = 2
        kore.server("default", ip="127.0.0.1", port="8080", tls=False)
        d = kore.domain("*", attach="default")
        d.route("/", self.index, methods=["get"])
        d.route("/stuck", self.stuck, methods=["get"])

    def index(self, req):
        req.response(200, ("worker %d\n" % os.getpid()).encode())

    def stuck(self, req):
        # a call gevent cannot see: the whole worker stops; the watchdog
        # (--timeout) logs this line's stack and replaces the worker
        os.system("sleep 30")
        req.response(200, b"never reached with --timeout below 30\n")


koreapp = Daemon()

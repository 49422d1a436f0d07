"""Serve a kore application from an existing gunicorn deployment.

    gunicorn -k kore.gunicorn.KoreWorker -w 4 -b 0.0.0.0:8000 app.py

gunicorn's arbiter keeps the master role (its signals, its worker
management, its listeners); every gunicorn worker becomes a kore worker:
the kore plugins are loaded, the app named by gunicorn's APP argument (a
file, a package directory or ``module:attr``, as for ``korectl run``) is
imported and configured in the worker, and kore's http plugin serves
gunicorn's listening sockets in the worker's gevent hub.

Differences from ``korectl run`` (docs/gunicorn.md): the app is imported in
every worker (gunicorn has no pre-fork import of a kore app), gunicorn's
``--bind`` decides the addresses, and there are no master/worker channels:
``kore.sendobj`` reaches only the sending worker and GLOBAL websocket
broadcasts stay local.
"""

import os
import signal
import socket

import gevent
from gunicorn.workers.ggevent import GeventWorker

from . import ipc, runtime
from .lifecycle import BootFailure, WorkerLifecycle
from .log import LOG, error


class _BridgeWorker:
    """The ``kore.runtime.worker()`` of a gunicorn worker (no master channel)."""

    def __init__(self, wid, app):
        self.id = wid
        self.pid = os.getpid()
        self.app = app
        self.stopping = False
        self.lifecycle = WorkerLifecycle(self, app)

    def send(self, msg):
        # No channel to a kore master: deliver what can be delivered locally.
        if msg.dst in (ipc.ALL_WORKERS, self.id):
            msg.src = self.id
            gevent.spawn(self.lifecycle.dispatch, msg)

    def request_shutdown(self, fatal=False):
        # gunicorn's arbiter stops gracefully on TERM
        os.kill(os.getppid(), signal.SIGTERM)


class KoreWorker(GeventWorker):
    """gunicorn worker class running a kore app (``-k kore.gunicorn.KoreWorker``)."""

    def load_wsgi(self):
        from . import plugins
        from .cli import AppLoader
        target = getattr(self.app, "app_uri", None)
        if not target:
            raise RuntimeError("kore.gunicorn.KoreWorker: name the kore app as "
                               "gunicorn's APP argument (file.py, dir/ or module:attr)")
        plugins.install()
        registry = runtime.registry()
        registry.load_env()
        if self.cfg.bind and "bind" in registry.options:
            # gunicorn owns the listeners: the app's own addresses are replaced
            registry.set("bind", list(self.cfg.bind), "cli")
        self.kore_app = AppLoader(target, [])()
        self.wsgi = None
        self.kore_id = self.age
        LOG.role = "wrk %d" % self.kore_id

    def run(self):
        try:
            from kore_http import app as http_app
            from kore_http import listen
        except ImportError:
            raise RuntimeError("kore.gunicorn.KoreWorker needs kore-plugin-http "
                               "(pip install kore-plugin-http)") from None
        worker = _BridgeWorker(self.kore_id, self.kore_app)
        lifecycle = worker.lifecycle
        lifecycle.attach()
        servers = list(http_app.state.servers.values())
        if not servers:
            raise RuntimeError("the kore app declares no server")
        srv = servers[0]
        srv.catchall = None
        if len(srv.domains) == 1 and srv.domains[0].host == "*":
            srv.catchall = srv.domains[0]
        del listen.LISTENERS[:]
        for sock in self.sockets:
            if sock.family == socket.AF_UNIX:
                addr = ("unix", sock.getsockname())
            else:
                name = sock.getsockname()
                addr = ("tcp", name[0], name[1])
            listen.LISTENERS.append(listen.Listener(listen.address_key(addr), addr,
                                                    sock, srv))
        try:
            lifecycle.boot()
        except BootFailure as exc:
            # gunicorn's arbiter stops on a worker exiting with 3 or 4
            error("worker %d failed to boot: %s" % (worker.id, exc.reason))
            LOG.stream.flush()
            raise SystemExit(exc.exit_code) from None

        while self.alive:
            self.notify()
            gevent.sleep(1.0)

        def pause():
            self.notify()
            gevent.sleep(0.05)
            return True
        worker.stopping = True
        lifecycle.stop(True, self.cfg.graceful_timeout, pause)
        LOG.stream.flush()

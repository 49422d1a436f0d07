"""Serve a kore application from an existing gunicorn deployment.

    gunicorn -k kore_http.gunicorn.KoreWorker -w 4 -b 0.0.0.0:8000 app.py

gunicorn's arbiter keeps the master role (its signals, its worker
management, its listeners); every gunicorn worker becomes a kore worker:
the kore plugins are loaded, the app named by gunicorn's APP argument (a
file, a package directory or ``module:attr``, as for ``korectl run``) is
imported and configured in the worker, and this plugin serves gunicorn's
listening sockets in the worker's gevent hub.  It lives with the HTTP code
because that is what it drives; it uses only the kernel's public API
(``kore.lifecycle``, ``kore.runtime``, ``kore.plugins``, ``kore.cli``).

Differences from ``korectl run`` (docs/gunicorn.md): the app is imported in
every worker (gunicorn has no pre-fork import of a kore app), gunicorn's
``--bind`` decides the addresses, and there are no master/worker channels:
``kore.sendobj`` reaches only the sending worker and GLOBAL websocket
broadcasts stay local.
"""

import os
import signal

import gevent
from gunicorn.workers.ggevent import GeventWorker

from kore import ipc, runtime
from kore.lifecycle import BootFailure, WorkerLifecycle
from kore.log import LOG, error

from . import listeners


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
    """gunicorn worker class running a kore app (``-k kore_http.gunicorn.KoreWorker``)."""

    def load_wsgi(self):
        from kore import plugins
        from kore.cli import AppLoader
        target = getattr(self.app, "app_uri", None)
        if not target:
            raise RuntimeError("kore_http.gunicorn.KoreWorker: name the kore app as "
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
        worker = _BridgeWorker(self.kore_id, self.kore_app)
        lifecycle = worker.lifecycle
        lifecycle.attach()
        listeners.adopt_sockets(self.sockets)
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

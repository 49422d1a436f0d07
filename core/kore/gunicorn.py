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
import socket
import sys
import time

import gevent
from gunicorn.workers.ggevent import GeventWorker

from . import _state, ipc
from .log import LOG


class _BridgeWorker:
    """The ``kore._state.worker`` of a gunicorn worker (no master channel)."""

    def __init__(self, wid, app):
        self.id = wid
        self.pid = os.getpid()
        self.app = app
        self.stopping = False

    def send(self, msg):
        # No channel to a kore master: deliver what can be delivered locally.
        if msg.dst in (ipc.ALL_WORKERS, self.id):
            msg.src = self.id
            gevent.spawn(self._deliver, msg)

    def _deliver(self, msg):
        from .workerproc import Worker
        Worker._dispatch(self, msg)

    def request_shutdown(self, fatal=False):
        os.kill(os.getppid(), 15)


class KoreWorker(GeventWorker):
    """gunicorn worker class running a kore app (``-k kore.gunicorn.KoreWorker``)."""

    def load_wsgi(self):
        from . import plugins
        from .cli import AppLoader
        from .log import LOG as _log
        target = getattr(self.app, "app_uri", None)
        if not target:
            raise RuntimeError("kore.gunicorn.KoreWorker: name the kore app as "
                               "gunicorn's APP argument (file.py, dir/ or module:attr)")
        plugins.install()
        _state.registry.load_env()
        if self.cfg.bind and "bind" in _state.registry.options:
            # gunicorn owns the listeners: the app's own addresses are replaced
            _state.registry.set("bind", list(self.cfg.bind), "cli")
        self.kore_app = AppLoader(target, [])()
        self.wsgi = None
        self.kore_id = self.age
        _log.role = "wrk %d" % self.kore_id

    def run(self):
        try:
            from kore_http import listeners as net
        except ImportError:
            raise RuntimeError("kore.gunicorn.KoreWorker needs kore-plugin-http "
                               "(pip install kore-plugin-http)") from None
        worker = _BridgeWorker(self.kore_id, self.kore_app)
        _state.role = "worker"
        _state.worker = worker
        net.adopt_sockets(self.sockets)
        pm = _state.pm
        pm.hook.kore_worker_init(worker=worker)
        from . import aio
        aio.start_deferred()
        self.kore_app.call("workerstart")
        pm.hook.kore_worker_serve(worker=worker)

        while self.alive:
            self.notify()
            gevent.sleep(1.0)

        pm.hook.kore_worker_stop_accepting(worker=worker)
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while time.monotonic() < deadline:
            if sum(n or 0 for n in pm.hook.kore_worker_busy(worker=worker)) == 0:
                break
            self.notify()
            gevent.sleep(0.05)
        pm.hook.kore_worker_shutdown(worker=worker)
        try:
            self.kore_app.call("workerstop")
        except Exception:
            from .trace import report
            report(sys.exc_info(), where="koreapp.workerstop()")
        LOG.stream.flush()

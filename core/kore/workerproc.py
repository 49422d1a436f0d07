"""A worker process: ``kore [wrk N]``.

Runs in the child right after fork: re-initialised gevent hub, privileges
dropped, ``kore_worker_init`` hooks, the tasks and timers the app created at
import time, ``koreapp.workerstart()``, then ``kore_worker_serve``.  It reports
ready to the master and serves until a signal stops it:

* TERM: stop accepting, let in-flight work finish within
  ``graceful_timeout``, then exit 0;
* INT/QUIT: exit at once (``koreapp.workerstop()`` still runs);
* USR1: reopen the log file;
* signals trapped with ``kore.sigtrap`` go to ``koreapp.signal(signo)``.
"""

import os
import pickle
import resource
import signal
import sys
import time

import gevent
from gevent.event import Event

from . import _state, ipc, privdrop, proctitle, signals
from .arbiter import (APP_LOAD_ERROR, MSG_BOOT_ERROR, MSG_READY, MSG_SENDOBJ,
                      MSG_SHUTDOWN, WORKER_BOOT_ERROR)
from .log import LOG, error, info
from .trace import report


class Worker:
    def __init__(self, wid, channel, app):
        self.id = wid
        self.pid = os.getpid()
        self.channel = channel
        self.app = app
        self.stopping = False
        self.graceful = True
        self._stop = Event()
        self._signal_watchers = []

    # -- API for plugins and kore functions -------------------------------------

    def send(self, msg):
        """Send a message to the master (which routes it on)."""
        self.channel.send(msg)

    def request_shutdown(self, fatal=False):
        try:
            self.send(ipc.Message(MSG_SHUTDOWN, b"fatal" if fatal else b""))
        except ipc.ChannelClosed:
            pass

    def stop(self, graceful=True):
        if self.stopping and (not self.graceful or graceful):
            return
        self.stopping = True
        self.graceful = graceful
        self._stop.set()

    # -- life -------------------------------------------------------------------

    def run(self):
        _state.role = "worker"
        _state.worker = self
        LOG.role = "wrk %d" % self.id
        proctitle.set_role("wrk %d" % self.id)
        self._install_signals()
        try:
            self._setup_process()
        except Exception as exc:
            return self._boot_failed(WORKER_BOOT_ERROR, "%s: %s" % (type(exc).__name__, exc))
        gevent.spawn(self._read_master)
        try:
            _state.pm.hook.kore_worker_init(worker=self)
            from . import aio
            aio.start_deferred()
        except Exception as exc:
            report(where="worker start-up")
            return self._boot_failed(WORKER_BOOT_ERROR, "%s: %s" % (type(exc).__name__, exc))
        try:
            self.app.call("workerstart")
        except Exception as exc:
            report(where="koreapp.workerstart()")
            return self._boot_failed(APP_LOAD_ERROR, "koreapp.workerstart() raised %s: %s"
                                     % (type(exc).__name__, exc))
        try:
            _state.pm.hook.kore_worker_serve(worker=self)
        except Exception as exc:
            report(where="worker start-up")
            return self._boot_failed(WORKER_BOOT_ERROR, "%s: %s" % (type(exc).__name__, exc))
        try:
            self.send(ipc.Message(MSG_READY))
        except ipc.ChannelClosed:
            return 0
        self._stop.wait()
        return self._shutdown()

    def _setup_process(self):
        reg = _state.registry
        try:
            nofile = reg.get("worker_rlimit_nofiles") + 32
            soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            want = nofile if hard == resource.RLIM_INFINITY else min(nofile, hard)
            if want > soft:
                resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):
            pass
        if reg.get("worker_set_affinity") and hasattr(os, "sched_setaffinity"):
            try:
                cpus = sorted(os.sched_getaffinity(0))
                if len(cpus) > 1:
                    os.sched_setaffinity(0, {cpus[(self.id - 1) % len(cpus)]})
            except OSError:
                pass
        privdrop.drop(reg.get("root"), reg.get("runas"),
                      reg.get("deployment") == "production")

    def _boot_failed(self, code, reason):
        error("worker %d failed to boot: %s" % (self.id, reason))
        try:
            self.send(ipc.Message(MSG_BOOT_ERROR, reason.encode("utf-8", "replace")))
        except ipc.ChannelClosed:
            pass
        return code

    def _shutdown(self):
        pm = _state.pm
        try:
            pm.hook.kore_worker_stop_accepting(worker=self)
        except Exception:
            report(where="worker shutdown")
        if self.graceful:
            deadline = time.monotonic() + _state.registry.get("graceful_timeout")
            while time.monotonic() < deadline and not (self.stopping and not self.graceful):
                try:
                    busy = sum(n or 0 for n in pm.hook.kore_worker_busy(worker=self))
                except Exception:
                    report(where="worker shutdown")
                    busy = 0
                if busy == 0:
                    break
                self._stop.clear()
                self._stop.wait(0.05)
        try:
            pm.hook.kore_worker_shutdown(worker=self)
        except Exception:
            report(where="worker shutdown")
        try:
            self.app.call("workerstop")
        except Exception:
            report(where="koreapp.workerstop()")
        return 0

    # -- messages ---------------------------------------------------------------

    def _read_master(self):
        while True:
            try:
                msg = self.channel.recv()
            except ipc.ChannelClosed:
                if not self.stopping:
                    error("lost the master, exiting")
                    self.stop(graceful=False)
                return
            gevent.spawn(self._dispatch, msg)

    def _dispatch(self, msg):
        try:
            if msg.kind == MSG_SENDOBJ:
                obj = pickle.loads(msg.payload)
                self.app.call("onmsg", obj)
                return
            handled = _state.pm.hook.kore_worker_message(worker=self, msg=msg)
            if not any(handled):
                error("no plugin handles message kind '%s'" % msg.kind)
        except Exception:
            report(where="message '%s'" % msg.kind)

    # -- signals ----------------------------------------------------------------

    def _install_signals(self):
        for signo in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(signo, signal.SIG_IGN)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        handlers = {
            signal.SIGTERM: lambda: self.stop(graceful=True),
            signal.SIGINT: lambda: self.stop(graceful=False),
            signal.SIGQUIT: lambda: self.stop(graceful=False),
            signal.SIGUSR1: self._reopen_logs,
        }
        for signo, fn in handlers.items():
            self._signal_watchers.append(gevent.signal_handler(signo, fn))
        for signo in signals.TRAPPED:
            self._signal_watchers.append(
                gevent.signal_handler(signo, self._trapped, signo))

    def _reopen_logs(self):
        LOG.reopen()
        try:
            _state.pm.hook.kore_reopen_logs()
        except Exception:
            report(where="kore_reopen_logs hook")

    def _trapped(self, signo):
        gevent.spawn(self._call_signal, signo)

    def _call_signal(self, signo):
        try:
            self.app.call("signal", signo)
        except Exception:
            report(where="koreapp.signal()")

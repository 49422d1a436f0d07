"""A worker process: ``kore [wrk N]``.

Runs in the child right after fork: re-initialised gevent hub, privileges
dropped, ``kore_worker_init`` hooks, the tasks and timers the app created at
import time, ``koreapp.workerstart()``, then ``kore_worker_serve``.  It reports
ready to the master (after loading its seccomp filter, ``kore.seccomp``)
and serves until a signal stops it:

* TERM: stop accepting, let in-flight work finish within
  ``graceful_timeout``, then exit 0;
* INT/QUIT: exit at once (``koreapp.workerstop()`` still runs);
* USR1: reopen the log file;
* signals trapped with ``kore.sigtrap`` go to ``koreapp.signal(signo)``.
"""

from __future__ import annotations

import os
import resource
import signal
import sys
from typing import Any, Callable, NoReturn, Optional

import gevent
from gevent.event import Event

from . import _state, exitcodes, ipc, privdrop, proctitle, sandbox, signals, watchdog
from .lifecycle import BootFailure, WorkerLifecycle
from .log import LOG, error
from .trace import report


class Worker:
    """A worker process (the master keeps a ``kore.arbiter.WorkerSlot`` for
    each); plugins receive it as ``worker`` in the worker hooks."""

    def __init__(self, wid: int, channel: ipc.Channel, app: Any,
                 heartbeat: Optional[watchdog.Heartbeat] = None) -> None:
        self.id = wid
        self.heartbeat = heartbeat
        self._beat_timer: Any = None
        self.pid = os.getpid()
        self.channel = channel
        self.app = app
        self.stopping = False
        self.graceful = True
        self.lifecycle = WorkerLifecycle(self, app)
        self._stop = Event()
        self._signal_watchers: list = []

    # -- API for plugins and kore functions -------------------------------------

    def send(self, msg: ipc.Message) -> None:
        """Send a message to the master (which routes it on)."""
        self.channel.send(msg)

    def request_shutdown(self, fatal: bool = False) -> None:
        try:
            self.send(ipc.Message(ipc.MSG_SHUTDOWN, b"fatal" if fatal else b""))
        except ipc.ChannelClosed:
            pass

    def stop(self, graceful: bool = True) -> None:
        if self.stopping and (not self.graceful or graceful):
            return
        self.stopping = True
        self.graceful = graceful
        self._stop.set()

    # -- life -------------------------------------------------------------------

    def run(self) -> int:
        """Boot, serve until stopped, shut down; return the exit code."""
        self.lifecycle.attach()
        LOG.role = "wrk %d" % self.id
        proctitle.set_role("wrk %d" % self.id)
        self._install_signals()
        try:
            self._setup_process()
        except Exception as exc:
            return self._boot_failed(exitcodes.WORKER_BOOT_ERROR,
                                     "%s: %s" % (type(exc).__name__, exc))
        gevent.spawn(self._read_master)
        if self.heartbeat is not None:
            self._beat_timer = watchdog.start_beating(
                self.heartbeat, _state.registry.get("worker_timeout"), LOG.stream)
        try:
            self.lifecycle.boot()
        except BootFailure as exc:
            return self._boot_failed(exc.exit_code, exc.reason)
        try:
            sandbox.enable(self, self.app)
        except Exception as exc:
            report(where="worker seccomp filter")
            return self._boot_failed(exitcodes.WORKER_BOOT_ERROR,
                                     "%s: %s" % (type(exc).__name__, exc))
        if self.heartbeat is not None:
            # a long synchronous workerstart() is not a timeout: the master
            # starts watching at ready, so the slot must be fresh then
            self.heartbeat.beat()
        try:
            self.send(ipc.Message(ipc.MSG_READY))
        except ipc.ChannelClosed:
            return exitcodes.OK
        self._stop.wait()
        self.lifecycle.stop(self.graceful, _state.registry.get("graceful_timeout"),
                            self._drain_pause)
        return exitcodes.OK

    def _drain_pause(self) -> bool:
        """Wait 50 ms while draining; False once a fast stop arrived."""
        if self.stopping and not self.graceful:
            return False
        self._stop.clear()
        self._stop.wait(0.05)
        return not (self.stopping and not self.graceful)

    def _setup_process(self) -> None:
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

    def _boot_failed(self, code: int, reason: str) -> int:
        error("worker %d failed to boot: %s" % (self.id, reason))
        try:
            self.send(ipc.Message(ipc.MSG_BOOT_ERROR, reason.encode("utf-8", "replace")))
        except ipc.ChannelClosed:
            pass
        return code

    # -- messages ---------------------------------------------------------------

    def _read_master(self) -> None:
        while True:
            try:
                msg = self.channel.recv()
            except ipc.ChannelClosed:
                if not self.stopping:
                    error("lost the master, exiting")
                    self.stop(graceful=False)
                return
            gevent.spawn(self.lifecycle.dispatch, msg)

    # -- signals ----------------------------------------------------------------

    def _install_signals(self) -> None:
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

    def _reopen_logs(self) -> None:
        self.lifecycle.reopen_logs()
        if self._beat_timer is not None:
            watchdog.arm_dump(LOG.stream)     # the dump follows the new file

    def _trapped(self, signo: int) -> None:
        gevent.spawn(self._call_signal, signo)

    def _call_signal(self, signo: int) -> None:
        try:
            self.app.call("signal", signo)
        except Exception:
            report(where="koreapp.signal()")


def run_forked(wid: int, channel: ipc.Channel, app: Any,
               prepare: Callable[[], None],
               heartbeat: Optional[watchdog.Heartbeat] = None) -> NoReturn:
    """In a child the master just forked: ``prepare()`` (drop the master's
    resources), be worker ``wid`` and end the process with its exit code.
    Anything escaping the worker ends it with WORKER_BOOT_ERROR."""
    code = exitcodes.FATAL
    try:
        prepare()
        code = Worker(wid, channel, app, heartbeat).run()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else exitcodes.FATAL
    except BaseException:
        import traceback
        try:
            sys.stderr.write(traceback.format_exc())
        except Exception:
            pass
        code = exitcodes.WORKER_BOOT_ERROR
    finally:
        try:
            LOG.stream.flush()
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:
            pass
        os._exit(code)

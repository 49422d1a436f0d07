"""The master process: forks the workers and keeps their slots filled.

Signals are gunicorn's (docs/cli.md has the table): TERM graceful stop, INT
and QUIT fast stop, HUP reload (``kore.reload``), TTIN/TTOU one worker more
or less, USR1 reopen the logs; each is handled by ``Arbiter.handle_<name>``
from ``SIGNAL_HANDLERS``.  Exit codes are in ``kore.exitcodes``.
"""

from __future__ import annotations

import errno
import os
import signal
import time
from typing import Any, Callable, Optional

import gevent
from gevent import monkey
from gevent.event import Event
from gevent.pool import Group

from . import _state, exitcodes, ipc, proctitle, reload, sandbox, signals, watchdog
from .log import LOG, error, info, notice, warning
from .arbiter_control import SIGNAL_HANDLERS, ReloadAndSignals  # noqa: F401 (re-exported)
from .pidfile import Pidfile
from .sandbox_master import Supervisor
from .runtime import call_reported, notify
from .trace import report
from .workerproc import run_forked

_fork = monkey.get_original("os", "fork")
_waitpid = monkey.get_original("os", "waitpid")

#: signal -> name of the ``handle_<name>`` method (gunicorn's pattern)


class WorkerSlot:
    """The master's record of one worker process (``kore.workerproc.Worker``
    is the process itself)."""

    __slots__ = ("id", "pid", "channel", "generation", "ready", "retiring",
                 "boot_error", "killed_at", "heartbeat", "aborted_at")

    def __init__(self, wid: int, generation: int, channel: ipc.Channel) -> None:
        self.id = wid
        self.pid: Optional[int] = None
        self.channel = channel
        self.generation = generation
        self.ready = False
        self.retiring = False
        self.boot_error: Optional[str] = None
        self.killed_at: Optional[float] = None
        self.heartbeat = watchdog.Heartbeat()
        self.aborted_at: Optional[float] = None


class Arbiter(ReloadAndSignals):
    """Forks the workers, keeps their slots filled and handles the signals.

    Plugins get it as ``arbiter`` in the master hooks and use ``listen``,
    ``spawn``, ``route``, ``request_stop`` and ``request_reload``.
    """

    def __init__(self, app: Any, loader: Optional[Callable[[], Any]] = None) -> None:
        self.app = app
        self.loader = loader            # callable re-importing the app (reload)
        self.listeners: dict = {}       # key -> listening socket
        self._used_keys: set = set()
        self.procs: dict[int, WorkerSlot] = {}    # pid -> slot
        self.slots: dict[int, WorkerSlot] = {}    # worker id -> newest slot
        self.num_workers: int = _state.registry.get("workers")
        self.generation = 0
        self.services = Group()         # parent-side services of plugins
        self._readers = Group()         # IPC reader greenlets
        self.sandbox = Supervisor(self._readers.spawn)   # workers' seccomp listeners
        self._signal_watchers: list = []
        self._signals: list[int] = []
        self._wake = Event()
        self.stopping = False
        self.graceful = True
        self.stop_deadline: Optional[float] = None
        self.exit_code = exitcodes.OK
        self.reloading: Optional[reload.Reload] = None
        self.pidfile: Optional[Pidfile] = None
        #: korectl start's pipe: told "ready" once the first generation
        #: serves, or "exit N" if the master stops first
        self.ready_fd: Optional[int] = None

    # -- plugin API -----------------------------------------------------------

    def listen(self, key: Any, factory: Callable[[], Any]) -> Any:
        """Return the listening socket kept under ``key`` or create it."""
        sock = self.listeners.get(key)
        if sock is None:
            sock = factory()
            self.listeners[key] = sock
        self._used_keys.add(key)
        return sock

    def spawn(self, fn: Callable, *args: Any, **kwargs: Any) -> gevent.Greenlet:
        """Run a parent-side service greenlet (never inherited by workers)."""
        return self.services.spawn(fn, *args, **kwargs)

    def route(self, msg: ipc.Message) -> None:
        """Deliver a message to the master, one worker or all workers."""
        if msg.dst == ipc.MASTER:
            self._master_message(msg)
            return
        if msg.dst == ipc.ALL_WORKERS:
            targets = [wp for wp in self.slots.values() if wp.pid is not None]
        else:
            wp = self.slots.get(msg.dst)
            targets = [wp] if wp is not None and wp.pid is not None else []
        for wp in targets:
            try:
                wp.channel.send(msg)
            except ipc.ChannelClosed:
                pass

    def request_stop(self, graceful: bool = True, exit_code: int = exitcodes.OK) -> None:
        if not self.stopping or (self.graceful and not graceful):
            self._begin_stop(graceful, exit_code)
        self._wake.set()

    def request_reload(self) -> None:
        """Reload as on SIGHUP (``--reload`` calls this on a file change)."""
        self.queue_signal(signal.SIGHUP)

    def queue_signal(self, signo: int) -> None:
        """Handle ``signo`` in the supervision loop (signal handlers only
        queue: the work happens outside the handler)."""
        self._signals.append(signo)
        self._wake.set()

    # -- start ------------------------------------------------------------------

    def bind(self) -> None:
        self._used_keys = set()
        # not reported: a ConfigError or OSError here is the user's, and
        # korectl prints it as one line
        _state.pm.hook.kore_master_bind(arbiter=self)
        if not self.listeners:
            warning("no listener was opened: is kore-plugin-http installed "
                    "and does the app call kore.server()?")

    def _close_unused_listeners(self) -> None:
        for key in list(self.listeners):
            if key not in self._used_keys:
                sock = self.listeners.pop(key)
                try:
                    sock.close()
                except OSError:
                    pass

    def run(self) -> int:
        """Supervise until stopped; return the exit code."""
        _state.role = "master"
        _state.arbiter = self
        LOG.role = "parent"
        proctitle.set_role("parent")
        path = _state.registry.get("pidfile")
        if path:
            self.pidfile = Pidfile(path)
            try:
                self.pidfile.create()
            except SystemExit:
                self.pidfile = None
                self._report_started("exit %d" % exitcodes.FATAL)
                raise
        self._install_signals()
        for signo in signals.take_held():
            self.queue_signal(signo)
        notice("kore for Python %s, master %d, %d worker%s"
               % (_kore_version(), os.getpid(), self.num_workers,
                  "" if self.num_workers == 1 else "s"))
        self.generation = 1
        sandbox.preload()
        for wid in range(1, self.num_workers + 1):
            self._spawn(wid)
        try:
            call_reported("kore_master_start", arbiter=self)
        except Exception as exc:
            error("kore_master_start failed: %s: %s" % (type(exc).__name__, exc))
            self._begin_stop(False, exitcodes.FATAL)
        if _state.registry.get("reload"):
            from . import reloader
            self.spawn(reloader.watch, self)
        try:
            self._loop()
        finally:
            self._finish()
        return self.exit_code

    def _loop(self) -> None:
        while True:
            self._wake.wait(0.5)
            self._wake.clear()
            while self._signals:
                self._handle_signal(self._signals.pop(0))
            self._reap()
            if self.stopping:
                if not self.procs:
                    return
                now = time.monotonic()
                if now >= self.stop_deadline:
                    for wp in list(self.procs.values()):
                        if wp.killed_at is None:
                            warning("worker %d (pid %d) did not stop in time, killing it"
                                    % (wp.id, wp.pid))
                            self._kill(wp, signal.SIGKILL)
                            wp.killed_at = now
                continue
            self._check_reload()
            self._watch()
            self._manage()

    # -- workers ----------------------------------------------------------------

    def _spawn(self, wid: int) -> WorkerSlot:
        master_end, worker_end = ipc.Channel.pair()
        wp = WorkerSlot(wid, self.generation, master_end)
        pid = _fork()
        if pid == 0:
            def prepare() -> None:
                master_end.close()
                self._after_fork_child()
            run_forked(wid, worker_end, self.app, prepare,
                       wp.heartbeat)                           # never returns
        worker_end.close()
        wp.pid = pid
        self.procs[pid] = wp
        self.slots[wid] = wp
        self._readers.spawn(self._read_worker, wp)
        return wp

    def _after_fork_child(self) -> None:
        gevent.reinit()
        for watcher in self._signal_watchers:
            watcher.cancel()
        self._signal_watchers = []
        for wp in self.procs.values():
            wp.channel.close()
            wp.heartbeat.close()
        self._readers.kill(block=False)
        self.services.kill(block=False)
        self.sandbox.drop_inherited()
        _state.arbiter = None
        if self.pidfile is not None:
            self.pidfile.forget()
        if self.ready_fd is not None:
            try:
                os.close(self.ready_fd)
            except OSError:
                pass
            self.ready_fd = None

    def _read_worker(self, wp: WorkerSlot) -> None:
        while True:
            try:
                msg = wp.channel.recv()
            except ipc.ChannelClosed:
                self._wake.set()        # the worker is probably gone: reap it
                return
            msg.src = wp.id
            if msg.dst == ipc.MASTER:
                self._master_message(msg, wp)
            else:
                self.route(msg)

    def _master_message(self, msg: ipc.Message, wp: Optional[WorkerSlot] = None) -> None:
        kind = msg.kind
        if kind == ipc.MSG_READY and wp is not None:
            wp.ready = True
            info("worker %d (pid %d) ready" % (wp.id, wp.pid))
            if self.ready_fd is not None and all(
                    w.ready for w in self.slots.values()) \
                    and len(self.slots) >= self.num_workers:
                self._report_started("ready")
            self._wake.set()
        elif kind == sandbox.MSG_LISTENER and wp is not None:
            self.sandbox.adopt(wp, msg.payload)
        elif kind == ipc.MSG_BOOT_ERROR and wp is not None:
            wp.boot_error = msg.payload.decode("utf-8", "replace")
        elif kind == ipc.MSG_SHUTDOWN:
            fatal = msg.payload == b"fatal"
            who = "worker %s" % msg.src if msg.src else "the master"
            notice("shutdown requested by %s, going down" % who)
            self.request_stop(graceful=not fatal,
                              exit_code=exitcodes.FATAL if fatal else exitcodes.OK)
        else:
            try:
                handled = call_reported("kore_master_message", where="message '%s'" % kind,
                                        arbiter=self, msg=msg)
            except Exception:
                return
            if not handled:
                warning("no plugin handles message kind '%s'" % kind)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = _waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                return
            if pid == 0:
                return
            wp = self.procs.pop(pid, None)
            if wp is None:
                # a plugin's child (cron's shell jobs): hand it its status
                try:
                    _state.pm.hook.kore_master_child_exit(arbiter=self, pid=pid,
                                                          status=status)
                except Exception as exc:
                    error("kore_master_child_exit failed: %s" % exc)
                continue
            wp.channel.close()
            wp.heartbeat.close()
            if self.slots.get(wp.id) is wp:
                del self.slots[wp.id]
            self._worker_exited(wp, status, self.sandbox.forget(pid))

    def _worker_exited(self, wp: WorkerSlot, status: int,
                       violation: Optional[str] = None) -> None:
        if os.WIFSIGNALED(status):
            how = "killed by signal %d" % os.WTERMSIG(status)
            if violation:
                how += " (sandbox violation, %s)" % violation
            code = None
        else:
            code = os.WEXITSTATUS(status)
            how = "exited with status %d" % code
        if self.stopping or wp.retiring:
            info("worker %d (pid %d) %s" % (wp.id, wp.pid, how))
            return
        if not wp.ready:
            reason = wp.boot_error or how
            if self.reloading is not None and self.reloading.is_new(wp):
                error("reload failed: new worker %d did not boot: %s; "
                      "keeping the old workers" % (wp.id, reason))
                self._abort_reload()
                return
            exit_code = exitcodes.APP_LOAD_ERROR if code == exitcodes.APP_LOAD_ERROR \
                else exitcodes.WORKER_BOOT_ERROR
            error("worker %d failed to boot: %s" % (wp.id, reason))
            self._begin_stop(False, exit_code)
            return
        if _state.registry.get("worker_death_policy") == "terminate":
            error("worker %d (pid %d) %s, worker_death_policy is terminate: "
                  "shutting down" % (wp.id, wp.pid, how))
            self._begin_stop(True, exitcodes.FATAL)
            return
        warning("worker %d (pid %d) %s, restarting it" % (wp.id, wp.pid, how))

    def _watch(self) -> None:
        """The watchdog (``kore.watchdog``): replace a worker whose event
        loop has not turned for ``worker_timeout`` seconds."""
        timeout = _state.registry.get("worker_timeout")
        if timeout <= 0:
            return
        now = time.monotonic()
        for wp in list(self.procs.values()):
            if not wp.ready or wp.killed_at is not None:
                continue
            if wp.aborted_at is not None:
                if now - wp.aborted_at >= watchdog.KILL_DELAY:
                    self._kill(wp, signal.SIGKILL)
                    wp.killed_at = now
                continue
            age = wp.heartbeat.age()
            if age > timeout:
                error("worker %d (pid %d) timed out: its event loop has not turned "
                      "for %.1f s (worker_timeout %g); the stack of the blocking "
                      "code follows, then it is killed and replaced"
                      % (wp.id, wp.pid, age, timeout))
                wp.aborted_at = now
                self._kill(wp, watchdog.DUMP_SIGNAL)

    def _manage(self) -> None:
        if self.reloading is not None:
            return
        current = {wp.id for wp in self.slots.values() if not wp.retiring}
        for wid in range(1, self.num_workers + 1):
            if wid not in current:
                self._spawn(wid)
        for wp in list(self.slots.values()):
            if wp.id > self.num_workers and not wp.retiring:
                self._retire(wp)

    def _retire(self, wp: WorkerSlot) -> None:
        wp.retiring = True
        if self.slots.get(wp.id) is wp:
            del self.slots[wp.id]
        self._kill(wp, signal.SIGTERM)

    def _kill(self, wp: WorkerSlot, signo: int) -> None:
        try:
            os.kill(wp.pid, signo)
        except ProcessLookupError:
            pass

    def _alive(self, wp: WorkerSlot) -> bool:
        return wp.pid in self.procs

    # -- stop -------------------------------------------------------------------

    def _begin_stop(self, graceful: bool, exit_code: int) -> None:
        if exit_code and not self.exit_code:
            self.exit_code = exit_code
        first = not self.stopping
        self.stopping = True
        self.graceful = graceful
        timeout = _state.registry.get("graceful_timeout") if graceful else 5.0
        deadline = time.monotonic() + timeout
        if first or deadline < self.stop_deadline:
            self.stop_deadline = deadline
        signo = signal.SIGTERM if graceful else signal.SIGQUIT
        if first:
            # stop listening at once: once the workers have closed their
            # copies too (after accepting what is already queued), a new
            # connection is refused, so clients and load balancers fail over
            for sock in self.listeners.values():
                try:
                    sock.close()
                except OSError:
                    pass
        for wp in list(self.procs.values()):
            self._kill(wp, signo)
        self._wake.set()

    def _report_started(self, what: str) -> None:
        if self.ready_fd is None:
            return
        fd, self.ready_fd = self.ready_fd, None
        try:
            os.write(fd, what.encode("ascii"))
        except OSError:
            pass
        try:
            os.close(fd)
        except OSError:
            pass

    def _finish(self) -> None:
        self._report_started("exit %d" % (self.exit_code or exitcodes.FATAL))
        self.services.kill(block=True, timeout=5)
        notify("kore_master_stop", where="kore_master_stop", arbiter=self)
        try:
            self.app.call("cleanup")
        except Exception:
            report(where="koreapp.cleanup()")
        for sock in self.listeners.values():
            try:
                sock.close()
            except OSError:
                pass
        self._readers.kill(block=False)
        self.sandbox.close_all()
        if self.pidfile is not None:
            self.pidfile.remove()
        notice("server stopped" + (" (exit code %d)" % self.exit_code
                                   if self.exit_code else ""))

def _kore_version() -> str:
    import kore
    return kore.__version__

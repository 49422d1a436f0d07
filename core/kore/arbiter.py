"""The master process: forks and supervises the workers.

Signals (as gunicorn's):

=========  ==============================================================
TERM       graceful stop: workers stop accepting, in-flight requests get
           ``graceful_timeout`` seconds, then the rest is killed
INT, QUIT  fast stop
HUP        reload: re-import the application, start a new generation of
           workers, retire the old ones once the new ones are ready
TTIN/TTOU  one worker more / less
USR1       reopen the log files (master and workers)
=========  ==============================================================

Exit codes: 0 stopped, 1 stopped because of a fatal error (``kore.fatalx``,
``worker_death_policy = "terminate"``), 3 a worker failed to boot, 4 the
application failed to load in a worker (gunicorn's codes).
"""

import errno
import os
import signal
import sys
import time

import gevent
from gevent import monkey
from gevent.event import Event
from gevent.pool import Group

from . import _state, ipc, proctitle
from .log import LOG, error, info, notice, warning

_fork = monkey.get_original("os", "fork")
_waitpid = monkey.get_original("os", "waitpid")

# Signals that arrive while the master is still loading the app and binding,
# before run() installs its handlers: recorded here and handled once it runs
# (their default action would kill or stop the process).
EARLY_SIGNALS = (signal.SIGHUP, signal.SIGTERM, signal.SIGUSR1, signal.SIGTTIN,
                 signal.SIGTTOU)
_early = []


def trap_early_signals():
    for signo in EARLY_SIGNALS:
        signal.signal(signo, lambda signo, frame: _early.append(signo))


WORKER_BOOT_ERROR = 3
APP_LOAD_ERROR = 4

# Messages the kernel itself sends.
MSG_READY = "kore.ready"
MSG_BOOT_ERROR = "kore.boot_error"
MSG_SHUTDOWN = "kore.shutdown"
MSG_SENDOBJ = "kore.sendobj"


class WorkerProc:
    """The master's view of one worker process."""

    __slots__ = ("id", "pid", "channel", "generation", "ready", "started",
                 "retiring", "boot_error", "killed_at")

    def __init__(self, wid, generation, channel):
        self.id = wid
        self.pid = None
        self.channel = channel
        self.generation = generation
        self.ready = False
        self.started = time.monotonic()
        self.retiring = False
        self.boot_error = None
        self.killed_at = None


class Arbiter:
    def __init__(self, app, loader=None):
        self.app = app
        self.loader = loader            # callable re-importing the app (reload)
        self.listeners = {}             # key -> listening socket
        self._used_keys = set()
        self.procs = {}                 # pid -> WorkerProc
        self.slots = {}                 # worker id -> newest WorkerProc
        self.num_workers = _state.registry.get("workers")
        self.generation = 0
        self.services = Group()         # parent-side services of plugins
        self._readers = Group()         # IPC reader greenlets
        self._signal_watchers = []
        self._signals = []
        self._wake = Event()
        self.stopping = False
        self.graceful = True
        self.stop_deadline = None
        self.exit_code = 0
        self.reloading = None           # generation being started by a reload
        self.pidfile = None
        self.started = False

    # -- plugin API -----------------------------------------------------------

    def listen(self, key, factory):
        """Return the listening socket kept under ``key`` or create it."""
        sock = self.listeners.get(key)
        if sock is None:
            sock = factory()
            self.listeners[key] = sock
        self._used_keys.add(key)
        return sock

    def spawn(self, fn, *args, **kwargs):
        """Run a parent-side service greenlet (never inherited by workers)."""
        return self.services.spawn(fn, *args, **kwargs)

    def route(self, msg):
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

    def request_stop(self, graceful=True, exit_code=0):
        if not self.stopping or (self.graceful and not graceful):
            self._begin_stop(graceful, exit_code)
        self._wake.set()

    # -- start ------------------------------------------------------------------

    def bind(self):
        self._used_keys = set()
        _state.pm.hook.kore_master_bind(arbiter=self)
        if not self.listeners:
            warning("no listener was opened: is kore-plugin-http installed "
                    "and does the app call kore.server()?")

    def _close_unused_listeners(self):
        for key in list(self.listeners):
            if key not in self._used_keys:
                sock = self.listeners.pop(key)
                try:
                    sock.close()
                except OSError:
                    pass

    def run(self):
        """Supervise until stopped; return the exit code."""
        _state.role = "master"
        _state.arbiter = self
        LOG.role = "parent"
        proctitle.set_role("parent")
        self._write_pidfile()
        self._install_signals()
        while _early:
            self._on_signal(_early.pop(0))
        notice("kore for Python %s, master %d, %d worker%s"
               % (_kore_version(), os.getpid(), self.num_workers,
                  "" if self.num_workers == 1 else "s"))
        self.generation = 1
        for wid in range(1, self.num_workers + 1):
            self._spawn(wid)
        try:
            _state.pm.hook.kore_master_start(arbiter=self)
        except Exception as exc:
            error("kore_master_start failed: %s: %s" % (type(exc).__name__, exc))
            self._begin_stop(False, 1)
        if _state.registry.get("reload"):
            from . import reloader
            self.spawn(reloader.watch, self)
        try:
            self._loop()
        finally:
            self._finish()
        return self.exit_code

    def _loop(self):
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
            self._manage()

    # -- workers ----------------------------------------------------------------

    def _spawn(self, wid):
        master_end, worker_end = ipc.Channel.pair()
        wp = WorkerProc(wid, self.generation, master_end)
        pid = _fork()
        if pid == 0:
            # In the child: become the worker and never return.
            code = 1
            try:
                master_end.close()
                self._after_fork_child()
                from .workerproc import Worker
                code = Worker(wid, worker_end, self.app).run()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                import traceback
                try:
                    sys.stderr.write(traceback.format_exc())
                except Exception:
                    pass
                code = WORKER_BOOT_ERROR
            finally:
                try:
                    LOG.stream.flush()
                    sys.stdout.flush()
                    sys.stderr.flush()
                except Exception:
                    pass
                os._exit(code)
        worker_end.close()
        wp.pid = pid
        self.procs[pid] = wp
        self.slots[wid] = wp
        self._readers.spawn(self._read_worker, wp)
        return wp

    def _after_fork_child(self):
        gevent.reinit()
        for watcher in self._signal_watchers:
            watcher.cancel()
        self._signal_watchers = []
        for wp in self.procs.values():
            wp.channel.close()
        self._readers.kill(block=False)
        self.services.kill(block=False)
        _state.arbiter = None
        self._remove_pidfile_on_exit = False

    def _read_worker(self, wp):
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

    def _master_message(self, msg, wp=None):
        kind = msg.kind
        if kind == MSG_READY and wp is not None:
            wp.ready = True
            info("worker %d (pid %d) ready" % (wp.id, wp.pid))
            self._wake.set()
        elif kind == MSG_BOOT_ERROR and wp is not None:
            wp.boot_error = msg.payload.decode("utf-8", "replace")
        elif kind == MSG_SHUTDOWN:
            fatal = msg.payload == b"fatal"
            who = "worker %s" % msg.src if msg.src else "the master"
            notice("shutdown requested by %s, going down" % who)
            self.request_stop(graceful=not fatal, exit_code=1 if fatal else 0)
        else:
            handled = _state.pm.hook.kore_master_message(arbiter=self, msg=msg)
            if not any(handled):
                warning("no plugin handles message kind '%s'" % kind)

    def _reap(self):
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
            if self.slots.get(wp.id) is wp:
                del self.slots[wp.id]
            self._worker_exited(wp, status)

    def _worker_exited(self, wp, status):
        if os.WIFSIGNALED(status):
            how = "killed by signal %d" % os.WTERMSIG(status)
            code = None
        else:
            code = os.WEXITSTATUS(status)
            how = "exited with status %d" % code
        if self.stopping or wp.retiring:
            info("worker %d (pid %d) %s" % (wp.id, wp.pid, how))
            return
        if not wp.ready:
            reason = wp.boot_error or how
            if self.reloading is not None and wp.generation == self.reloading:
                error("reload failed: new worker %d did not boot: %s; "
                      "keeping the old workers" % (wp.id, reason))
                self._abort_reload()
                return
            exit_code = APP_LOAD_ERROR if code == APP_LOAD_ERROR else WORKER_BOOT_ERROR
            error("worker %d failed to boot: %s" % (wp.id, reason))
            self._begin_stop(False, exit_code)
            return
        if _state.registry.get("worker_death_policy") == "terminate":
            error("worker %d (pid %d) %s, worker_death_policy is terminate: "
                  "shutting down" % (wp.id, wp.pid, how))
            self._begin_stop(True, 1)
            return
        warning("worker %d (pid %d) %s, restarting it" % (wp.id, wp.pid, how))

    def _manage(self):
        if self.reloading is not None:
            return
        current = {wp.id for wp in self.slots.values() if not wp.retiring}
        for wid in range(1, self.num_workers + 1):
            if wid not in current:
                self._spawn(wid)
        for wp in list(self.slots.values()):
            if wp.id > self.num_workers and not wp.retiring:
                self._retire(wp)

    def _retire(self, wp):
        wp.retiring = True
        if self.slots.get(wp.id) is wp:
            del self.slots[wp.id]
        self._kill(wp, signal.SIGTERM)

    def _kill(self, wp, signo):
        try:
            os.kill(wp.pid, signo)
        except ProcessLookupError:
            pass

    # -- reload -----------------------------------------------------------------

    def reload(self):
        if self.stopping or self.reloading is not None:
            return
        notice("reloading: importing the application again")
        if self.loader is not None:
            problem = self._probe_reload()
            if problem is not None:
                error("reload failed, keeping the running workers and the loaded "
                      "application: %s" % problem)
                return
            try:
                self.app = self.loader()
            except Exception as exc:
                error("reload failed, keeping the running workers: %s" % exc)
                return
            try:
                self.bind()
            except Exception as exc:
                error("reload failed while opening listeners, keeping the running "
                      "workers: %s" % exc)
                return
        self.num_workers = _state.registry.get("workers")
        self.generation += 1
        self.reloading = self.generation
        self._old = [wp for wp in self.procs.values() if wp.generation < self.generation]
        for wp in self._old:
            if self.slots.get(wp.id) is wp:
                del self.slots[wp.id]
        for wid in range(1, self.num_workers + 1):
            self._spawn(wid)
        self._reload_deadline = time.monotonic() + max(30.0, _state.registry.get(
            "graceful_timeout"))

    def _probe_reload(self, timeout=120.0):
        """Load the application once in a throwaway child first.

        Loading resets the master's application state before importing, so a
        load that fails half-way in the master would leave it with a broken
        application, which every worker it later forks (a crashed one, TTIN)
        would get.  The child's output is discarded (the real load prints it
        again); it reports the error text through a pipe.  Returns None when
        the application loads, else the error.
        """
        r, w = os.pipe()
        pid = _fork()
        if pid == 0:
            code = 0
            try:
                os.close(r)
                null = os.open(os.devnull, os.O_WRONLY)
                os.dup2(null, 1)
                os.dup2(null, 2)
                self._after_fork_child()
                import io
                LOG.stream = io.StringIO()
                try:
                    self.loader()
                except BaseException as exc:
                    code = 1
                    text = str(exc) or type(exc).__name__
                    os.write(w, text.encode("utf-8", "replace")[:8000])
            finally:
                os._exit(code)
        os.close(w)
        chunks = []
        deadline = time.monotonic() + timeout
        try:
            os.set_blocking(r, False)
            from gevent.socket import wait_read
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    self._kill_pid(pid)
                    return "the application did not load within %d s" % timeout
                try:
                    wait_read(r, timeout=min(left, 1.0))
                except Exception:
                    continue            # timed out waiting: check the deadline
                try:
                    data = os.read(r, 65536)
                except BlockingIOError:
                    continue
                if not data:
                    break
                chunks.append(data)
        finally:
            os.close(r)
        code = self._wait_probe(pid)
        if chunks:
            return b"".join(chunks).decode("utf-8", "replace")
        if code != 0:
            return "the application loader exited with status %s" % code
        return None

    def _kill_pid(self, pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._wait_probe(pid)

    def _wait_probe(self, pid, timeout=10.0):
        deadline = time.monotonic() + timeout
        while True:
            try:
                done, status = _waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return None             # reaped elsewhere
            if done:
                return os.waitstatus_to_exitcode(status)
            if time.monotonic() > deadline:
                return None
            gevent.sleep(0.02)

    def _check_reload(self):
        if self.reloading is None:
            return
        new = [wp for wp in self.procs.values() if wp.generation == self.reloading]
        if new and len(new) >= self.num_workers and all(wp.ready for wp in new):
            for wp in self._old:
                if wp.pid in self.procs:
                    wp.retiring = True
                    self._kill(wp, signal.SIGTERM)
            self._old = []
            self.reloading = None
            self._close_unused_listeners()
            notice("reload complete: generation %d serving" % self.generation)
        elif time.monotonic() > self._reload_deadline:
            error("reload failed: new workers not ready in time; keeping the old ones")
            self._abort_reload()

    def _abort_reload(self):
        gen = self.reloading
        for wp in list(self.procs.values()):
            if wp.generation == gen:
                wp.retiring = True
                self._kill(wp, signal.SIGKILL)
        for wp in self._old:
            if wp.pid in self.procs and not wp.retiring:
                self.slots[wp.id] = wp
        self._old = []
        self.reloading = None

    # -- stop -------------------------------------------------------------------

    def _begin_stop(self, graceful, exit_code):
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
        for wp in list(self.procs.values()):
            self._kill(wp, signo)
        self._wake.set()

    def _finish(self):
        self.services.kill(block=True, timeout=5)
        try:
            _state.pm.hook.kore_master_stop(arbiter=self)
        except Exception as exc:
            error("kore_master_stop failed: %s" % exc)
        try:
            self.app.call("cleanup")
        except Exception:
            from .trace import report
            report(where="koreapp.cleanup()")
        for sock in self.listeners.values():
            try:
                sock.close()
            except OSError:
                pass
        self._readers.kill(block=False)
        self._remove_pidfile()
        notice("server stopped" + (" (exit code %d)" % self.exit_code
                                   if self.exit_code else ""))

    # -- signals ----------------------------------------------------------------

    def _install_signals(self):
        for signo in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP,
                      signal.SIGTTIN, signal.SIGTTOU, signal.SIGUSR1, signal.SIGCHLD):
            self._signal_watchers.append(
                gevent.signal_handler(signo, self._on_signal, signo))

    def _on_signal(self, signo):
        self._signals.append(signo)
        self._wake.set()

    def _handle_signal(self, signo):
        if signo == signal.SIGCHLD:
            return
        if signo == signal.SIGTERM:
            notice("TERM received: graceful stop")
            self.request_stop(graceful=True)
        elif signo in (signal.SIGINT, signal.SIGQUIT):
            notice("%s received: fast stop" % signal.Signals(signo).name)
            self.request_stop(graceful=False)
        elif signo == signal.SIGHUP:
            notice("HUP received")
            self.reload()
        elif signo == signal.SIGTTIN:
            self.num_workers += 1
            notice("TTIN: %d workers" % self.num_workers)
        elif signo == signal.SIGTTOU:
            if self.num_workers > 1:
                self.num_workers -= 1
            notice("TTOU: %d workers" % self.num_workers)
        elif signo == signal.SIGUSR1:
            LOG.reopen()
            try:
                _state.pm.hook.kore_reopen_logs()
            except Exception as exc:
                error("kore_reopen_logs failed: %s" % exc)
            for wp in self.procs.values():
                self._kill(wp, signal.SIGUSR1)

    # -- pidfile ----------------------------------------------------------------

    def _write_pidfile(self):
        path = _state.registry.get("pidfile")
        if not path:
            return
        path = os.path.abspath(path)
        try:
            with open(path) as f:
                old = int(f.read().strip() or 0)
            if old and old != os.getpid():
                os.kill(old, 0)
                raise SystemExit("korectl: pidfile %s names running process %d"
                                 % (path, old))
        except (FileNotFoundError, ValueError, ProcessLookupError):
            pass
        except PermissionError:
            raise SystemExit("korectl: pidfile %s names a running process" % path)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % os.getpid())
        os.replace(tmp, path)
        self.pidfile = path

    def _remove_pidfile(self):
        if self.pidfile and getattr(self, "_remove_pidfile_on_exit", True):
            try:
                with open(self.pidfile) as f:
                    if int(f.read().strip()) == os.getpid():
                        os.unlink(self.pidfile)
            except (OSError, ValueError):
                pass


def _kore_version():
    import kore
    return kore.__version__

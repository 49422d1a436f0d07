"""A worker's life, the same under ``korectl`` and under another supervisor.

``WorkerLifecycle`` runs the chain every kore worker goes through, with the
kernel's error policy at each step:

1. ``attach()``: this process becomes a kore worker (``kore.runtime.role()``
   is ``"worker"``, ``kore.runtime.worker()`` the worker object);
2. ``boot()``: ``kore_worker_init`` -> the tasks and timers the app created
   at import time (``kore.aio.start_deferred``) -> ``koreapp.workerstart()``
   -> ``kore_worker_serve``.  A step that raises is reported and ends the
   boot with ``BootFailure`` carrying the exit code the worker should end
   with (``kore.exitcodes``: 3 for a plugin, 4 for the application);
3. (the supervisor's own loop serves until it is told to stop)
4. ``stop(graceful, timeout, pause)``: ``kore_worker_stop_accepting`` ->
   while ``kore_worker_busy`` reports work and the timeout has not passed,
   ``pause()`` -> ``kore_worker_shutdown`` -> ``koreapp.workerstop()``.
   A hook that raises is reported and the chain goes on.

``dispatch(msg)`` delivers one IPC message (``kore.sendobj`` objects to
``koreapp.onmsg``, the rest to ``kore_worker_message``) and ``reopen_logs()``
is what SIGUSR1 does in a worker.

``kore.workerproc.Worker`` (the ``korectl`` worker process) drives it, and so
does the gunicorn bridge, from outside the kernel: this module is public API.
"""

from __future__ import annotations

import pickle
import time
from typing import Any, Callable, cast

from . import _state, exitcodes, ipc, sandbox
from .log import LOG, error
from .runtime import call_reported, notify
from .trace import report


class BootFailure(Exception):
    """A worker could not boot: ``exit_code`` (``kore.exitcodes``) and a
    one-line ``reason`` for the master's log."""

    def __init__(self, exit_code: int, reason: str) -> None:
        super().__init__(reason)
        self.exit_code = exit_code
        self.reason = reason


def _why(exc: BaseException) -> str:
    return "%s: %s" % (type(exc).__name__, exc)


class WorkerLifecycle:
    """The boot and stop sequence of one worker process.

    ``worker`` is the object plugins receive as ``worker`` in the worker
    hooks (it has ``id``, ``pid``, ``app``, ``stopping``, ``send(msg)`` and
    ``request_shutdown(fatal)``); ``app`` the ``kore.application.Application``.
    """

    def __init__(self, worker: Any, app: Any) -> None:
        self.worker = worker
        self.app = app

    def attach(self) -> None:
        """Make this process a kore worker (role and worker object)."""
        _state.role = "worker"
        _state.worker = self.worker

    # -- boot -------------------------------------------------------------------

    def boot(self) -> None:
        """Run the boot chain; raise ``BootFailure`` when a step fails."""
        worker = self.worker
        try:
            call_reported("kore_worker_init", where="worker start-up", worker=worker)
            from . import aio
            aio.start_deferred()
        except Exception as exc:
            raise BootFailure(exitcodes.WORKER_BOOT_ERROR, _why(exc)) from exc
        try:
            self.app.call("workerstart")
        except Exception as exc:
            report(where="koreapp.workerstart()")
            raise BootFailure(exitcodes.APP_LOAD_ERROR, "koreapp.workerstart() raised %s"
                              % _why(exc)) from exc
        try:
            call_reported("kore_worker_serve", where="worker start-up", worker=worker)
        except Exception as exc:
            raise BootFailure(exitcodes.WORKER_BOOT_ERROR, _why(exc)) from exc

    # -- stop -------------------------------------------------------------------

    def stop_accepting(self) -> None:
        notify("kore_worker_stop_accepting", where="worker shutdown", worker=self.worker)

    def busy(self) -> int:
        """Requests or sessions still in flight, summed over the plugins (0
        when a plugin raised: draining must not hang on a broken plugin)."""
        try:
            counts = call_reported("kore_worker_busy", where="worker shutdown",
                                   worker=self.worker)
        except Exception:
            return 0
        return sum(n or 0 for n in counts)

    def drain(self, deadline: float, pause: Callable[[], bool]) -> bool:
        """Wait for in-flight work until the monotonic ``deadline``.

        ``pause()`` waits a little (about 50 ms) and returns False to give up
        (a fast stop arrived).  True when nothing was left in flight.
        """
        while time.monotonic() < deadline:
            if self.busy() == 0:
                return True
            if not pause():
                return False
        return False

    def shutdown(self) -> None:
        """``kore_worker_shutdown`` then ``koreapp.workerstop()``."""
        notify("kore_worker_shutdown", where="worker shutdown", worker=self.worker)
        try:
            self.app.call("workerstop")
        except Exception:
            report(where="koreapp.workerstop()")

    def stop(self, graceful: bool, timeout: float, pause: Callable[[], bool]) -> None:
        """The whole stop chain: stop accepting, drain (graceful only, at
        most ``timeout`` seconds), shut down."""
        self.stop_accepting()
        if graceful:
            self.drain(time.monotonic() + timeout, pause)
        self.shutdown()

    # -- messages and signals ---------------------------------------------------

    def dispatch(self, msg: ipc.Message) -> None:
        """Deliver one message to this worker; never raises."""
        where = "message '%s'" % msg.kind
        try:
            if msg.kind == sandbox.MSG_HELD:
                sandbox.listener_held(cast(bytes, msg.payload))
                return
            if msg.kind == ipc.MSG_SENDOBJ:
                obj = pickle.loads(cast(bytes, msg.payload))   # kore.sendobj pickles
                self.app.call("onmsg", obj)
                return
            handled = call_reported("kore_worker_message", where=where,
                                    worker=self.worker, msg=msg)
        except Exception:
            if msg.kind == ipc.MSG_SENDOBJ:
                report(where=where)
            return
        if not handled:
            error("no plugin handles message kind '%s'" % msg.kind)

    def reopen_logs(self) -> None:
        LOG.reopen()
        notify("kore_reopen_logs", where="kore_reopen_logs hook")

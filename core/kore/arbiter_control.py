"""The arbiter's reload and signal handling (a mixin of ``arbiter.Arbiter``).

``reload()`` probes the new application in a throwaway child, then starts a
new generation of workers and retires the old one once it serves
(``kore.reload`` holds the state); signals are ``handle_<name>`` methods
looked up in ``SIGNAL_HANDLERS``.
"""

from __future__ import annotations

import signal

import gevent

from . import _state, reload
from .log import LOG, error, notice
from .runtime import notify

SIGNAL_HANDLERS: dict[int, str] = {
    signal.SIGTERM: "term",
    signal.SIGINT: "int",
    signal.SIGQUIT: "quit",
    signal.SIGHUP: "hup",
    signal.SIGTTIN: "ttin",
    signal.SIGTTOU: "ttou",
    signal.SIGUSR1: "usr1",
    signal.SIGCHLD: "chld",
}


class ReloadAndSignals:
    """Methods of ``Arbiter`` (they use its slots, procs and helpers)."""

    # -- reload -----------------------------------------------------------------

    def reload(self) -> None:
        if self.stopping or self.reloading is not None:
            return
        notice("reloading: importing the application again")
        if self.loader is not None:
            problem = reload.probe(self.loader, self._after_fork_child)
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
        self.reloading = reload.Reload.begin(self.generation, self.procs.values(),
                                             _state.registry.get("graceful_timeout"))
        for wp in self.reloading.old:
            if self.slots.get(wp.id) is wp:
                del self.slots[wp.id]
        for wid in range(1, self.num_workers + 1):
            self._spawn(wid)

    def _check_reload(self) -> None:
        if self.reloading is None:
            return
        outcome = self.reloading.outcome(self.procs.values(), self.num_workers)
        if outcome == reload.COMPLETE:
            for wp in self.reloading.to_retire(self._alive):
                wp.retiring = True
                self._kill(wp, signal.SIGTERM)
            self.reloading = None
            self._close_unused_listeners()
            notice("reload complete: generation %d serving" % self.generation)
        elif outcome == reload.EXPIRED:
            error("reload failed: new workers not ready in time; keeping the old ones")
            self._abort_reload()

    def _abort_reload(self) -> None:
        for wp in self.reloading.to_kill(list(self.procs.values())):
            wp.retiring = True
            self._kill(wp, signal.SIGKILL)
        for wp in self.reloading.to_restore(self._alive):
            self.slots[wp.id] = wp
        self.reloading = None

    # -- signals ----------------------------------------------------------------

    def _install_signals(self) -> None:
        for signo in SIGNAL_HANDLERS:
            self._signal_watchers.append(
                gevent.signal_handler(signo, self.queue_signal, signo))

    def _handle_signal(self, signo: int) -> None:
        name = SIGNAL_HANDLERS.get(signo)
        if name is not None:
            getattr(self, "handle_" + name)()

    def handle_chld(self) -> None:
        """A worker exited: the loop reaps it right after the signals."""

    def handle_term(self) -> None:
        notice("TERM received: graceful stop")
        self.request_stop(graceful=True)

    def handle_int(self) -> None:
        notice("SIGINT received: fast stop")
        self.request_stop(graceful=False)

    def handle_quit(self) -> None:
        notice("SIGQUIT received: fast stop")
        self.request_stop(graceful=False)

    def handle_hup(self) -> None:
        notice("HUP received")
        self.reload()

    def handle_ttin(self) -> None:
        self.num_workers += 1
        notice("TTIN: %d workers" % self.num_workers)

    def handle_ttou(self) -> None:
        if self.num_workers > 1:
            self.num_workers -= 1
        notice("TTOU: %d workers" % self.num_workers)

    def handle_usr1(self) -> None:
        LOG.reopen()
        notify("kore_reopen_logs", where="kore_reopen_logs hook")
        for wp in self.procs.values():
            self._kill(wp, signal.SIGUSR1)

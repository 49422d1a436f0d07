"""Signals: the ones held during start-up, and the ones an app traps.

Start-up.  Between the moment ``korectl`` starts and the moment the arbiter
installs its handlers (plugins and gevent imported, the app imported and
configured, listeners bound) a HUP or TERM would kill the master with the
default action.  ``korectl`` installs a holding handler for ``STARTUP``
before it imports anything else; the held signals are handled by the
arbiter once it runs (``take_held``), or, for a command that does not serve
(``korectl config show``), delivered again with their default action
(``release_held``).

Trapped.  ``kore.sigtrap(signo)`` delivers ``signo`` to
``koreapp.signal(signo)`` in every worker.
"""

from __future__ import annotations

import os
import signal
from typing import Any, Callable, List, Optional, Set

#: Held from the start of korectl until the arbiter handles them.
STARTUP = (signal.SIGHUP, signal.SIGTERM, signal.SIGUSR1, signal.SIGTTIN,
           signal.SIGTTOU)

TRAPPED: Set[int] = set()
# Signals the arbiter and workers use themselves.
RESERVED = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP,
            signal.SIGCHLD, signal.SIGTTIN, signal.SIGTTOU, signal.SIGKILL,
            signal.SIGSTOP}

_held: Optional[List[int]] = None


def hold(pending: Optional[List[int]] = None) -> List[int]:
    """Hold the ``STARTUP`` signals from now on, appending them to ``pending``.

    ``korectl`` passes the list its own first-instruction handler already
    fills; the handlers are then only installed when ``pending`` is new.
    Returns the list.
    """
    global _held
    if pending is None:
        pending = []
        record = _recorder(pending)
        for signo in STARTUP:
            signal.signal(signo, record)
    _held = pending
    return pending


def _recorder(pending: List[int]) -> Callable[[int, Any], None]:
    def record(signo: int, frame: Any) -> None:
        pending.append(signo)
    return record


def take_held() -> List[int]:
    """The signals held so far, in arrival order (and forget them)."""
    if _held is None:
        return []
    out = list(_held)
    del _held[:len(out)]
    return out


def release_held() -> None:
    """Stop holding: restore the default actions and deliver what was held
    (a TERM sent to ``korectl config show`` still ends it)."""
    global _held
    if _held is None:
        return
    for startup_signal in STARTUP:
        signal.signal(startup_signal, signal.SIG_DFL)
    pending, _held = take_held(), None
    for signo in pending:
        os.kill(os.getpid(), signo)


def trap(signo: int) -> None:
    if not isinstance(signo, int):
        raise TypeError("kore.sigtrap: signo must be an int")
    if signo in RESERVED:
        raise RuntimeError("kore.sigtrap: signal %d is used by the server" % signo)
    TRAPPED.add(signo)

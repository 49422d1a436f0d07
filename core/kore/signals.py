"""Signals trapped with ``kore.sigtrap(signo)``, delivered to
``koreapp.signal(signo)`` (or ``kore_worker_signal``) in every worker."""

import signal

TRAPPED = set()
# Signals the arbiter and workers use themselves.
RESERVED = {signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGHUP,
            signal.SIGCHLD, signal.SIGTTIN, signal.SIGTTOU, signal.SIGKILL,
            signal.SIGSTOP}


def trap(signo):
    if not isinstance(signo, int):
        raise TypeError("kore.sigtrap: signo must be an int")
    if signo in RESERVED:
        raise RuntimeError("kore.sigtrap: signal %d is used by the server" % signo)
    TRAPPED.add(signo)

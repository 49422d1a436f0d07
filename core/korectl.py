"""The ``korectl`` entry point.

Two things must happen before anything else is imported (gevent, the
plugins, the application):

* HUP, TERM, USR1, TTIN and TTOU are held from the first instruction on
  (``kore.signals``): sent while the master is still starting, they would
  otherwise kill it; the arbiter handles them once it runs;
* gevent's monkey-patching.

So this module lives outside the ``kore`` package and imports only
``signal`` before it has done both.
"""

import signal

# the same signals as kore.signals.STARTUP (a test keeps the two equal)
STARTUP = (signal.SIGHUP, signal.SIGTERM, signal.SIGUSR1, signal.SIGTTIN,
           signal.SIGTTOU)


def main(argv=None):
    held = []
    for signo in STARTUP:
        signal.signal(signo, lambda signo, frame: held.append(signo))
    from gevent import monkey
    monkey.patch_all()
    from kore.cli import main as _main
    return _main(argv, held_signals=held)


if __name__ == "__main__":
    raise SystemExit(main())

"""Exit codes of ``korectl run`` and of its worker processes (gunicorn's).

The master exits with one of these; a worker exits with ``OK``,
``WORKER_BOOT_ERROR`` or ``APP_LOAD_ERROR`` so the master can tell why it
did not come up.  docs/cli.md lists them for operators.
"""

#: stopped (TERM, INT, QUIT, ``kore.shutdown()``)
OK = 0
#: stopped because of a fatal error (``kore.fatalx``,
#: ``worker_death_policy = "terminate"``, a failing ``kore_master_start``)
FATAL = 1
#: a configuration or usage error (nothing was started)
CONFIG_ERROR = 2
#: a worker failed to boot (a plugin's worker hooks raised)
WORKER_BOOT_ERROR = 3
#: the application failed to load (import, ``configure``, ``workerstart``)
APP_LOAD_ERROR = 4

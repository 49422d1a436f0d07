"""Hook specifications of the kore kernel.

Every feature of kore is a plugin: a module, found through the entry-point
group ``kore.plugins``, holding functions decorated with ``kore.hookimpl``
whose names match the specifications below.  Plugins implement only the
hooks they need.  A caller on a hot path may ask
``kore.runtime.implemented(name)`` once and skip a hook nobody implements
(the http plugin does for its per-connection and per-request hooks, which
it declares itself through ``kore_add_hookspecs``).

The specifications are grouped by lifecycle.  Each docstring says in which
process the hook runs -- the *master* (the ``korectl run`` process,
``kore [parent]``), a *worker* (``kore [wrk N]``) or the ``korectl``
process before either exists -- when, what its arguments are and what it
returns.  Hooks are synchronous: they run in the calling greenlet and may
block cooperatively (gevent), never for long on a worker's hot path.

``firstresult`` hooks stop at the first implementation that returns
something other than None: return None for "not mine".  An implementation
that raises is reported by the kernel (``kore.runtime.notify``), naming the
plugin, unless the docstring says the exception stops start-up.
docs/writing-plugins.md lists every hook; a test keeps the two in step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

import pluggy

if TYPE_CHECKING:
    import argparse
    from types import TracebackType
    from typing import Tuple, Type

    from .application import Application
    from .arbiter import Arbiter
    from .config import Registry
    from .ipc import Message

    ExcInfo = Tuple[Type[BaseException], BaseException, TracebackType]

hookspec = pluggy.HookspecMarker("kore")


# ---------------------------------------------------------------------------
# korectl and master: start-up, configuration and supervision
# ---------------------------------------------------------------------------

@hookspec
def kore_add_hookspecs(pm: pluggy.PluginManager) -> None:
    """Add a plugin's own hook specifications (pytest's ``pytest_addhooks``).

    Runs in every process that loads plugins, right after all of them were
    registered and before any other hook is called.  The http plugin adds
    its connection, TLS and request hooks this way, the websocket plugin its
    connect/disconnect hooks; docs/writing-plugins.md lists them with the
    kernel's.  An exception stops ``korectl`` naming the plugin.

    :param pm: the pluggy ``PluginManager``: call ``pm.add_hookspecs(module)``.
    :returns: nothing.
    """


@hookspec
def kore_config_options(registry: Registry) -> None:
    """Declare the configuration options a plugin owns.

    Runs in the ``korectl`` process (which becomes the master), once, right
    after plugins are loaded and before the command line is parsed and the
    application imported.  Call ``registry.add(Option(...))`` for each
    option (see ``kore.config.Option``); a flag it declares appears on
    ``korectl run``.  An exception stops ``korectl`` naming the plugin.

    :param registry: the process's ``kore.config.Registry``.
    :returns: nothing.
    """


@hookspec
def kore_namespace() -> Optional[Dict[str, Any]]:
    """Return a dict of names to add to the ``kore`` module.

    Runs in the ``korectl`` process once after plugins are loaded and before
    the application is imported (workers inherit the names through fork).
    This is how ``kore.server`` or ``kore.dbquery`` come to exist: the kernel
    knows which package provides each well-known name and raises
    ``kore.PluginMissing`` naming it when the plugin is absent.  Two plugins
    providing one name, a plugin replacing a kernel name or an exception
    stop start-up naming the plugin.

    :returns: ``{name: object}`` (or None for nothing).
    """


@hookspec
def kore_cli_options(parser: argparse.ArgumentParser) -> None:
    """Add flags to ``korectl run`` (an ``argparse`` parser).

    Runs in the ``korectl`` process before arguments are parsed; ``parser``
    is the ``korectl run`` sub-parser.  Flags are usually bound to config
    options with ``registry.add(Option(..., flags=("--x",)))`` instead (the
    value then reaches ``kore.config``); this hook is for anything else, for
    example a flag whose ``argparse.Action`` acts while arguments are parsed.

    :param parser: the ``korectl run`` sub-parser.
    :returns: nothing.
    """


@hookspec
def kore_cli_commands(subparsers, app_arguments, load_app):
    """Add ``korectl`` subcommands (``korectl cron list APP``, ...).

    Runs in the ``korectl`` process before arguments are parsed.
    ``subparsers`` is korectl's ``argparse`` sub-parser action: call
    ``p = subparsers.add_parser(name, help=...)`` and
    ``p.set_defaults(kore_command=fn)``; korectl then calls ``fn(args)`` and
    exits with its return value (an int).  ``app_arguments(p)`` gives ``p``
    ``korectl run``'s option flags and ``APP [ARGS...]``; ``load_app(args)``
    imports and configures that app without serving it and returns the
    ``kore.application.Application`` (a ``ConfigError`` or ``AppLoadError``
    it raises is reported by korectl with its usual message and exit code).

    :returns: nothing.
    """


@hookspec
def kore_app_reset() -> None:
    """Forget everything the previous import of the application declared.

    Runs in the master before the application is (re)imported: at start-up
    and on every ``SIGHUP`` reload (and in the reload's throwaway probe
    child).  A plugin holding per-app state (servers, domains, routes,
    databases) clears it here.

    :returns: nothing.
    """


@hookspec
def kore_app_loaded(app: Application) -> None:
    """The application was imported and configured.

    Runs in the master after the application module was imported and
    ``koreapp.configure(args)`` / ``kore_parent_configure(args)`` returned,
    and before the configuration is frozen; again after every reload.
    Plugins resolve what the app declared here (the http plugin installs
    ``@kore.route`` routes); raise ``kore.ConfigError`` to stop start-up
    (or the reload) with a message.

    :param app: the ``kore.application.Application``.
    :returns: nothing.
    """


@hookspec
def kore_master_bind(arbiter: Arbiter) -> None:
    """Open listening sockets.

    Runs in the master after the configuration is frozen, before workers are
    forked and before privileges are dropped (so ports below 1024 work).  On
    reload it runs again: get sockets with ``arbiter.listen(key, factory)``,
    which reuses the one already open under ``key`` (so no connection is
    refused) and closes, once the reload completed, those no longer asked
    for.  A ``kore.ConfigError`` or ``OSError`` stops start-up with one line.

    :param arbiter: the ``kore.arbiter.Arbiter``.
    :returns: nothing.
    """


@hookspec
def kore_master_start(arbiter: Arbiter) -> None:
    """The master is about to supervise its workers.

    Runs in the master after the first workers were forked.  Parent-side
    services (ACME renewal, cron scheduling, SMTP delivery) start their
    greenlets here through ``arbiter.spawn``: those greenlets are never
    inherited by workers.  An exception stops the server (exit code 1).

    :param arbiter: the ``kore.arbiter.Arbiter``.
    :returns: nothing.
    """


@hookspec(firstresult=True)
def kore_master_message(arbiter: Arbiter, msg: Message) -> Optional[bool]:
    """A message addressed to the master arrived from a worker.

    Runs in the master, in the greenlet reading that worker's channel, for
    every kind the kernel does not handle itself (``kore.*``).  The first
    plugin returning a non-None value wins; when none does the master logs
    "no plugin handles message kind".

    :param arbiter: the ``kore.arbiter.Arbiter``.
    :param msg: the ``kore.ipc.Message``; ``msg.src`` is the worker's id.
    :returns: True if the plugin handled ``msg``, None if it is not its kind.
    """


@hookspec
def kore_master_stop(arbiter: Arbiter) -> None:
    """The server is going down.

    Runs in the master after all workers exited and its service greenlets
    were killed, before ``koreapp.cleanup()``.

    :param arbiter: the ``kore.arbiter.Arbiter``.
    :returns: nothing.
    """


# ---------------------------------------------------------------------------
# worker: process lifecycle (kore.lifecycle.WorkerLifecycle calls these)
# ---------------------------------------------------------------------------

@hookspec
def kore_worker_init(worker: Any) -> None:
    """A worker process was forked.

    Runs in the new worker, after the gevent hub was re-initialised and
    privileges were dropped, before the app's deferred tasks start and
    before ``koreapp.workerstart()``.  Create per-worker resources here
    (pools, curl multi handles).  An exception fails the worker's boot
    (exit code 3, the master stops).

    :param worker: the worker object (``kore.workerproc.Worker`` under
        korectl): ``id``, ``pid``, ``app``, ``stopping``, ``send(msg)``.
    :returns: nothing.
    """


@hookspec
def kore_worker_seccomp(worker: Any, seccomp: Any) -> None:
    """Add a plugin's syscall rules to the worker's seccomp filter (Linux).

    Runs in the worker once it booted (after ``kore_worker_serve``), before
    ``koreapp.seccomp(seccomp)`` and before the filter is loaded; only when
    the ``seccomp`` option is on.  Call Kore's methods on ``seccomp``
    (``allow("name")``, ``allow_arg(name, arg, value)``, ``deny(name,
    errno=...)``, ...); rules for a syscall replace the default policy's
    rules for it (``docs/sandbox.md``).  An exception fails the worker's
    boot (exit code 3).

    :param worker: the worker object.
    :param seccomp: a ``kore.seccomp`` being built.
    :returns: nothing.
    """


@hookspec
def kore_worker_serve(worker: Any) -> None:
    """Start serving: install accept watchers on the inherited listeners.

    Runs in the worker after ``koreapp.workerstart()``; the worker reports
    ready to the master when every implementation returned.  Must not
    block.  An exception fails the worker's boot (exit code 3).

    :param worker: the worker object.
    :returns: nothing.
    """


@hookspec
def kore_worker_stop_accepting(worker: Any) -> None:
    """Stop accepting new connections (graceful stop or reload).

    Runs in the worker when it was told to stop (TERM: graceful; INT/QUIT:
    fast, and then no draining follows).  Must not block; in-flight work
    continues.

    :param worker: the worker object.
    :returns: nothing.
    """


@hookspec
def kore_worker_busy(worker: Any) -> Optional[int]:
    """Report how much work is still in flight.

    Runs in the worker every ~50 ms while it drains during a graceful stop;
    the worker goes on to ``kore_worker_shutdown`` when the sum over all
    plugins is 0 or ``graceful_timeout`` passed.

    :param worker: the worker object.
    :returns: the number of requests or sessions still in flight (None: 0).
    """


@hookspec
def kore_worker_shutdown(worker: Any) -> None:
    """The worker is exiting: close what is left.

    Runs in the worker after draining (or when the graceful timeout expired,
    or at once on a fast stop), before ``koreapp.workerstop()``.

    :param worker: the worker object.
    :returns: nothing.
    """


@hookspec
def kore_reopen_logs() -> None:
    """Reopen log files a plugin writes (SIGUSR1, log rotation).

    Runs in the master and in every worker when the master gets USR1, after
    the kernel reopened its own log file.

    :returns: nothing.
    """


@hookspec(firstresult=True)
def kore_worker_message(worker: Any, msg: Message) -> Optional[bool]:
    """A message for this worker arrived from the master or another worker.

    Runs in the worker, in a greenlet of its own per message, for every kind
    except ``kore.sendobj`` (which goes to ``koreapp.onmsg``).  The first
    plugin returning a non-None value wins; when none does the worker logs
    "no plugin handles message kind".

    :param worker: the worker object.
    :param msg: the ``kore.ipc.Message``; ``msg.src`` is the sender's id
        (0 for the master).
    :returns: True if the plugin handled ``msg``, None if it is not its kind.
    """


# ---------------------------------------------------------------------------
# errors (connection, request, TLS and websocket hooks are declared by the
# http and websocket plugins: kore_http/hookspecs.py, kore_websocket/hookspecs.py)
# ---------------------------------------------------------------------------

@hookspec
def kore_handler_error(req: Any, exc_info: ExcInfo) -> None:
    """An uncaught exception left a handler, task, timer or callback.

    Runs in the process and greenlet where it happened, after the kernel
    called the ``kore.tracer`` callback or logged the traceback.  Observers
    only: an exception raised here is logged, never reported again.

    :param req: the ``HttpRequest`` being handled, or None outside a request.
    :param exc_info: ``(type, value, traceback)``.
    :returns: nothing.
    """


# ---------------------------------------------------------------------------
# scheduling and tasks
# ---------------------------------------------------------------------------

@hookspec
def kore_scheduler_jobs(app):
    """Return a list of periodic jobs a plugin contributes.

    Runs in the master after the application was loaded (start-up and every
    reload), when kore-plugin-cron is installed.  Each entry is
    ``(name, schedule, callable)`` or ``(name, schedule, callable, options)``
    with ``schedule`` a crontab schedule (``"*/5 * * * *"``, ``"@daily"``)
    and ``options`` a dict of ``kore.cron``'s keyword arguments (``overlap``,
    ``catch_up``, ``timeout``).  The callable (or coroutine function) runs in
    one worker, once per tick, as a ``kore.cron`` Python job named ``name``.

    :param app: the ``kore.application.Application``.
    :returns: a list of job tuples, or None.
    """


@hookspec
def kore_master_child_exit(arbiter, pid, status):
    """A child process of the master that is not a worker was reaped.

    Runs in the master's supervision loop, which reaps every child with
    ``waitpid(-1)``; ``status`` is the raw wait status.  A plugin that
    started the process (cron's shell jobs) returns True.

    :param arbiter: the master's ``kore.arbiter.Arbiter``.
    :param pid: the reaped process id.
    :param status: its raw wait status (``os.waitstatus_to_exitcode``).
    :returns: True when the plugin started that process, else None.
    """


@hookspec
def kore_task_error(task: Any, exc_info: ExcInfo) -> None:
    """A ``kore.task_create`` task or a ``kore.timer`` callback raised.

    Runs in the worker (or master) where the task ran, after the exception
    was reported (``kore.tracer`` or the log) and ``kore_handler_error``
    was called.  Observers only: an exception raised here is logged.

    :param task: the ``kore.aio.Task`` (None for a timer callback).
    :param exc_info: ``(type, value, traceback)``.
    :returns: nothing.
    """

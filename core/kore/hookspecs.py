"""Hook specifications of the kore kernel.

Every feature of kore is a plugin: a module, found through the entry-point
group ``kore.plugins``, holding functions decorated with ``kore.hookimpl``
whose names match the specifications below.  Plugins implement only the
hooks they need; the kernel precomputes which plugins implement a hook, so an
unimplemented hook costs nothing on the hot path.

The specifications are grouped by lifecycle.  Each docstring says when the
hook runs and in which process: the *master* (the ``korectl run`` process,
``kore [parent]``) or a *worker* (``kore [wrk N]``).
"""

import pluggy

hookspec = pluggy.HookspecMarker("kore")


# ---------------------------------------------------------------------------
# master: start-up, configuration and supervision
# ---------------------------------------------------------------------------

@hookspec
def kore_add_hookspecs(pm):
    """Add a plugin's own hook specifications (pytest's ``pytest_addhooks``).

    Runs in every process that loads plugins, right after all of them were
    registered and before any other hook is called.  ``pm`` is the pluggy
    ``PluginManager``: call ``pm.add_hookspecs(module)``.  The http plugin
    adds its connection, TLS and request hooks this way (documented in
    docs/writing-plugins.md with the kernel's).  The return value is
    ignored.
    """


@hookspec
def kore_config_options(registry):
    """Declare the configuration options a plugin owns.

    Runs in the master, once, right after plugins are loaded and before the
    application is imported.  Call ``registry.add(Option(...))`` for each
    option (see ``kore.config.Option``).
    """


@hookspec
def kore_namespace():
    """Return a dict of names to add to the ``kore`` module.

    Runs in the master once after plugins are loaded and before the
    application is imported (workers inherit the names through fork).  This
    is how ``kore.server`` or ``kore.dbquery`` come to exist: the kernel
    knows which package provides each well-known name and raises
    ``kore.PluginMissing`` naming it when the plugin is absent.
    """


@hookspec
def kore_cli_options(parser):
    """Add flags to ``korectl run`` (an ``argparse`` parser).

    Runs in the ``korectl`` process before arguments are parsed; ``parser``
    is the ``korectl run`` sub-parser.  Flags are usually bound to config
    options with ``registry.add(Option(..., flags=("--x",)))`` instead; this
    hook is for anything else.
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
    """


@hookspec
def kore_app_reset():
    """Forget everything the previous import of the application declared.

    Runs in the master before the application is (re)imported: at start-up
    and on every ``SIGHUP`` reload.  A plugin holding per-app state (servers,
    domains, routes, databases) clears it here.
    """


@hookspec
def kore_app_loaded(app):
    """The application was imported and configured.

    Runs in the master after the application module was imported and
    ``koreapp.configure(args)`` / ``kore_parent_configure(args)`` returned,
    and before the configuration is frozen.  ``app`` is the
    ``kore.application.Application``.  Plugins resolve what the app declared here
    (the http plugin installs ``@kore.route`` routes); raise
    ``kore.ConfigError`` to stop start-up with a message.
    """


@hookspec
def kore_master_bind(arbiter):
    """Open listening sockets.

    Runs in the master after the configuration is frozen, before workers are
    forked and before privileges are dropped (so ports below 1024 work).  On
    reload it runs again: reuse already open sockets for unchanged addresses
    (``arbiter.listeners`` keeps them) so no connection is refused.
    """


@hookspec
def kore_master_start(arbiter):
    """The master is about to supervise its workers.

    Runs in the master after the first workers were forked.  Parent-side
    services (ACME renewal, cron scheduling, SMTP delivery) start their
    greenlets here through ``arbiter.spawn``: those greenlets are never
    inherited by workers.
    """


@hookspec
def kore_master_message(arbiter, msg):
    """A message addressed to the master arrived from a worker.

    Runs in the master.  ``msg`` is a ``kore.ipc.Message``; return True if the
    plugin handled it.
    """


@hookspec
def kore_master_stop(arbiter):
    """The server is going down.

    Runs in the master after all workers exited, before
    ``koreapp.cleanup()``.
    """


# ---------------------------------------------------------------------------
# worker: process lifecycle
# ---------------------------------------------------------------------------

@hookspec
def kore_worker_init(worker):
    """A worker process was forked.

    Runs in the new worker, after the gevent hub was re-initialised and
    privileges were dropped, before ``koreapp.workerstart()``.  ``worker`` is
    the ``kore.workerproc.Worker``.
    """


@hookspec
def kore_worker_serve(worker):
    """Start serving: install accept watchers on the inherited listeners.

    Runs in the worker after ``koreapp.workerstart()``.  Must not block.
    """


@hookspec
def kore_worker_stop_accepting(worker):
    """Stop accepting new connections (graceful stop or reload).

    Runs in the worker.  Must not block; in-flight work continues.
    """


@hookspec
def kore_worker_busy(worker):
    """Return how many requests or sessions are still in flight.

    Runs in the worker while it drains during a graceful stop; the worker
    exits when every plugin reports 0 or the graceful timeout passes.
    """


@hookspec
def kore_worker_shutdown(worker):
    """The worker is exiting: close what is left.

    Runs in the worker after draining (or when the graceful timeout expired),
    before ``koreapp.workerstop()``.
    """


@hookspec
def kore_reopen_logs():
    """Reopen log files a plugin writes (SIGUSR1, log rotation).

    Runs in the master and in every worker when the master gets USR1.
    """


@hookspec
def kore_worker_message(worker, msg):
    """A message for this worker arrived from the master or another worker.

    Runs in the worker, in its own greenlet.  ``msg`` is a
    ``kore.ipc.Message``; look at ``msg.kind`` and return True if handled.
    """


# ---------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------

@hookspec
def kore_handler_error(req, exc_info):
    """An uncaught exception left a handler, task, timer or callback.

    Runs in the worker where it happened; ``req`` is None outside a request.
    Observers only: the ``kore.tracer`` callback and the log are handled by
    the kernel.
    """


@hookspec(firstresult=True)
def kore_httpclient_target(url, options):
    """Return the client for a ``kore.httpclient(url)`` whose URL names an
    alias (``"@api/path"``) instead of a host.

    Runs where ``kore.httpclient`` is called (a worker's handler, usually)
    when ``url`` starts with ``@``.  ``options`` is the dict of the other
    keywords.  kore-plugin-proxy returns a client with the same request
    methods, balanced over the alias's nodes; return None for a URL the
    plugin does not serve.  The first non-None result is used; with none,
    ``kore.httpclient`` raises RuntimeError naming kore-plugin-proxy.
    """


# ---------------------------------------------------------------------------
# scheduling
# ---------------------------------------------------------------------------

@hookspec
def kore_scheduler_jobs(app):
    """Return a list of ``(name, schedule, callable)`` periodic jobs.

    Runs in the master after the app was loaded.  The cron plugin collects
    them and runs each in the master or hands it to a worker.
    """


@hookspec
def kore_task_error(task, exc_info):
    """A ``kore.task_create`` task or a ``kore.timer`` callback raised.

    Runs in the worker where the task ran.  Observers only.
    """

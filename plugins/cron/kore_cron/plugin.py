"""Hooks of kore-plugin-cron."""

import sys

from kore import hookimpl, runtime
from kore.config import ConfigError, Option

from . import clock as clockmod
from . import jobs, schedule

# The scheduler, shell and worker modules are imported when first needed:
# every korectl command loads this plugin.
MSG_RUN = "cron.run"
MSG_DONE = "cron.done"

OWNER = "kore-plugin-cron"

_scheduler = [None]


def current_scheduler():
    return _scheduler[0]


@hookimpl
def kore_add_hookspecs(pm):
    from . import hookspecs
    pm.add_hookspecs(hookspecs)


@hookimpl
def kore_config_options(registry):
    O = Option
    registry.add(O("cron_timezone", "str", "", "time zone schedules are read in "
                   "(an IANA name such as Europe/Berlin; default $TZ, else the "
                   "system's)", owner=OWNER))
    registry.add(O("cron_shell", "str", "/bin/sh", "shell that runs the command "
                   "line of a shell job (as SHELL -c COMMAND)", owner=OWNER))
    registry.add(O("cron_overlap", "choice", "skip", "what a tick does when the "
                   "job's previous run is still going: skip it (logged) or allow "
                   "a second run", choices=("skip", "allow"), owner=OWNER))
    registry.add(O("cron_timeout", "float", 0.0, "default seconds a job may run "
                   "before it is stopped (0: no limit)", minimum=0, owner=OWNER))
    registry.add(O("cron_kill_timeout", "float", 5.0, "seconds a timed-out shell "
                   "job gets between TERM and KILL", minimum=0, owner=OWNER))
    registry.add(O("cron_claim_timeout", "float", 5.0, "seconds a tick waits for "
                   "kore_cron_claim (the cross-host lock) before it is not run here "
                   "(0: no limit)", minimum=0, owner=OWNER))
    registry.add(O("cron_state_file", "str", "", "file keeping each job's last "
                   "tick across restarts (needed by catch_up=True)", owner=OWNER))


@hookimpl
def kore_namespace():
    return {"cron": jobs.cron}


@hookimpl
def kore_app_reset():
    jobs.begin_load()


@hookimpl
def kore_app_loaded(app):
    try:
        conf = app.conf
        blocks = getattr(conf, "blocks", None) or {}
        if "cron" in blocks:
            jobs.conf_lines(conf.path, blocks["cron"])
        if runtime.implemented("kore_scheduler_jobs"):
            jobs.plugin_jobs(runtime.hook("kore_scheduler_jobs")(app=app))
        try:
            tz = schedule.local_zone(runtime.option("cron_timezone"))
        except schedule.ScheduleError as exc:
            raise ConfigError("option 'cron_timezone': %s" % exc) from None
        try:
            clockmod.from_environment()
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        table = jobs.finish_load()
    except BaseException:
        jobs.abort_load()
        raise
    sch = _scheduler[0]
    if sch is not None:
        # A reload: the master loads the app, then forks the next generation.
        sch.tz = tz
        sch.load(table, generation=getattr(sch.arbiter, "generation", 0) + 1)


@hookimpl
def kore_master_start(arbiter):
    from .scheduler import Scheduler
    tz = schedule.local_zone(runtime.option("cron_timezone"))
    sch = Scheduler(arbiter, clockmod.from_environment(), tz)
    # The first generation was forked with this table already.
    sch.load(jobs.active(), generation=getattr(arbiter, "generation", 0))
    _scheduler[0] = sch
    arbiter.spawn(sch.run)


@hookimpl
def kore_master_message(arbiter, msg):
    if msg.kind != MSG_DONE:
        return None
    sch = _scheduler[0]
    if sch is not None:
        sch.python_done(msg.payload)
    return True


@hookimpl
def kore_master_child_exit(arbiter, pid, status):
    sch = _scheduler[0]
    if sch is None:
        return None
    return sch.reaped(pid, status) or None


@hookimpl
def kore_master_stop(arbiter):
    sch = _scheduler[0]
    if sch is not None:
        sch.finish_stop()


@hookimpl
def kore_worker_init(worker):
    # The scheduler stays in the master: drop what this process inherited
    # (its greenlets were killed at fork; close the job pipes' read ends).
    import os
    sch = _scheduler[0]
    _scheduler[0] = None
    if sch is not None:
        for run in sch.shell_runs.values():
            for fd in run.open_fds:
                try:
                    os.close(fd)
                except OSError:
                    pass
            run.open_fds.clear()
            run._fds = []


@hookimpl
def kore_worker_message(worker, msg):
    if msg.kind != MSG_RUN:
        return None
    from . import worker as pyworker
    pyworker.handle(worker, msg)
    return True


@hookimpl
def kore_worker_busy(worker):
    pyworker = sys.modules.get("kore_cron.worker")
    return pyworker.busy() if pyworker is not None else 0


@hookimpl
def kore_worker_shutdown(worker):
    pyworker = sys.modules.get("kore_cron.worker")
    if pyworker is not None:
        pyworker.shutdown()


@hookimpl
def kore_cli_commands(subparsers, app_arguments, load_app):
    from . import cli
    cli.add_commands(subparsers, app_arguments, load_app)


@hookimpl
def kore_metrics_collect_master(samples):
    # kore-plugin-metrics: the master's scheduler (one per server): ticks by
    # job and outcome since the server started, and runs going on now
    sch = _scheduler[0]
    if sch is None:
        return
    from .scheduler import OUTCOMES
    samples.family("kore_cron_runs_total", "counter", "cron ticks ended, by job and "
                   "outcome (ok, failed, timeout, skipped: the previous run still "
                   "going, not_run: no worker took it or the server stopped)")
    samples.family("kore_cron_running", "gauge", "cron jobs running now, by job")
    running = sch.running()
    names = set(running) | {name for name, _ in sch.counts}
    for name in sorted(names):
        lab = (("job", name),)
        for outcome in OUTCOMES:
            samples.set("kore_cron_runs_total", lab + (("outcome", outcome),),
                        sch.counts.get((name, outcome), 0))
        samples.set("kore_cron_running", lab, running.get(name, 0))

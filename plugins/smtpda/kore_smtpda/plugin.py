"""Hooks of kore-plugin-smtpda."""

import os

from kore import hookimpl, runtime

from . import settings
from .settings import STATE, enable_smtpda, smtpda_server


def email(subject, snd, rcpt):
    """``kore.email(subject, snd, rcpt)`` -> a ``kore_smtpda.Composer``."""
    from .composer import Composer
    return Composer(subject, snd, rcpt)

# the email package is imported when the app enables the agent (in the
# master, before workers fork) or on first use, not by every korectl command

_SUP = []           # the master's Supervisor, once started


@hookimpl
def kore_config_options(registry):
    for opt in settings.options():
        registry.add(opt)


@hookimpl
def kore_namespace():
    return {"email": email, "enable_smtpda": enable_smtpda,
            "smtpda_server": smtpda_server}


@hookimpl
def kore_app_reset():
    STATE.reset()


@hookimpl
def kore_app_loaded(app):
    spool = settings.resolve(app)
    if STATE.enabled:
        _chown_for_runas(spool)
        from . import composer
        composer.warm_up()
    arbiter = runtime.arbiter()
    if arbiter is None:
        return
    if not STATE.enabled:
        if _SUP and _SUP[0].master_pid == os.getpid():
            # a reload turned the agent off
            sup = _SUP.pop()
            arbiter.spawn(sup.stop)
        return
    if _SUP:
        sup = _SUP[0]
        if sup.master_pid == os.getpid():
            config = settings.agent_config()
            if config != sup.config:
                sup.restart(config)
    else:
        # a reload enabled the agent (the first load runs before the master
        # exists; kore_master_start starts it then)
        _start(arbiter)


def _chown_for_runas(spool):
    """Workers and the agent run as ``runas``: they must own the spool."""
    runas = runtime.option("runas")
    if not runas or os.geteuid() != 0:
        return
    import pwd
    from . import spool as spoolmod
    pw = pwd.getpwnam(runas)
    for d in [spool] + [os.path.join(spool, s) for s in spoolmod.SUBDIRS]:
        os.chown(d, pw.pw_uid, pw.pw_gid)


def _start(arbiter):
    from .supervisor import Supervisor
    sup = Supervisor(settings.agent_config())
    _SUP[:] = [sup]
    sup.greenlet = arbiter.spawn(sup.run)


@hookimpl
def kore_master_start(arbiter):
    if STATE.enabled and not _SUP:
        _start(arbiter)


@hookimpl
def kore_master_stop(arbiter):
    if _SUP and _SUP[0].master_pid == os.getpid():
        # a fast stop (INT, QUIT) does not wait for SMTP sessions: what they
        # were sending stays in the spool
        _SUP[0].stop(timeout=None if getattr(arbiter, "graceful", True) else 2.0)


@hookimpl
def kore_reopen_logs():
    # USR1 (log rotation): the agent writes the same log file
    if _SUP and _SUP[0].master_pid == os.getpid():
        _SUP[0].reopen_logs()


@hookimpl
def kore_worker_init(worker):
    # the pipes to the agent belong to the master
    if _SUP:
        for fd in _SUP[0].fds():
            try:
                os.close(fd)
            except OSError:
                pass
        del _SUP[:]
    if STATE.enabled:
        from . import composer
        composer.warm_up()


@hookimpl
def kore_metrics_collect_master(samples):
    # kore-plugin-metrics' hook (ignored without it): the spool is shared by
    # every worker, so it is read once, in the master, at each scrape
    if STATE.enabled and STATE.spool:
        from . import status
        status.export(samples, status.read(STATE.spool))


@hookimpl
def kore_cli_commands(subparsers, app_arguments, load_app):
    from . import cli
    cli.add_commands(subparsers, app_arguments, load_app)

"""What the application declared: ``kore.cron(schedule, command)`` jobs.

``kore.cron`` runs while the application loads in the master (module level
or ``koreapp.configure``).  Declarations collect in a pending table that
``kore_app_loaded`` makes the active one, so a reload whose import fails
leaves the running table alone.  Workers inherit the active table through
fork; a Python job is looked up there by name when the master hands it over.
"""

import inspect
import os
import sys

from kore import runtime
from kore.config import ConfigError

from . import schedule as sched

OVERLAP = ("skip", "allow")

_pending = []           # jobs declared by the load in progress
_active = {}            # name -> Job, the table the scheduler runs
_loading = [False]


class Job:
    """One crontab entry: a shell command line or a Python callable."""

    __slots__ = ("name", "schedule", "command", "func", "overlap", "catch_up",
                 "timeout", "source")

    def __init__(self, name, schedule, command=None, func=None, overlap="skip",
                 catch_up=False, timeout=0.0, source=""):
        self.name = name
        self.schedule = schedule
        self.command = command
        self.func = func
        self.overlap = overlap
        self.catch_up = catch_up
        self.timeout = timeout
        self.source = source

    @property
    def kind(self):
        return "shell" if self.command is not None else "python"

    @property
    def reboot(self):
        return self.schedule == sched.REBOOT

    def target(self):
        """What the job runs, for logs and ``korectl cron list``."""
        if self.command is not None:
            return self.command
        return "python %s" % callable_name(self.func)

    def key(self):
        """Identity across reloads: same name and schedule keep their ticks."""
        return (self.name, self.schedule)

    def __repr__(self):
        return "<cron job %r %s %s>" % (self.name, self.schedule, self.target())


def callable_name(func):
    mod = getattr(func, "__module__", None) or "?"
    qual = getattr(func, "__qualname__", None) or getattr(func, "__name__", None) \
        or type(func).__name__
    return "%s.%s" % (mod, qual)


def _caller():
    """``file:line`` of the application code calling kore.cron."""
    frame = sys._getframe(2)
    here = os.path.dirname(os.path.abspath(__file__))
    while frame is not None and os.path.dirname(
            os.path.abspath(frame.f_code.co_filename)) == here:
        frame = frame.f_back
    if frame is None:
        return ""
    return "%s:%d" % (frame.f_code.co_filename, frame.f_lineno)


def make_job(schedule, command, name=None, overlap=None, catch_up=False,
             timeout=None, source=""):
    """Validate one declaration and return a Job; raises ConfigError whose
    message starts with ``source`` (the user's file and line)."""
    where = (source + ": ") if source else ""
    try:
        norm = sched.normalize(schedule)
    except sched.ScheduleError as exc:
        raise ConfigError("%skore.cron: %s" % (where, exc)) from None
    func = None
    if isinstance(command, str):
        if not command.strip():
            raise ConfigError("%skore.cron: the command is empty" % where)
        command = command.strip()
    elif callable(command):
        func, command = command, None
    else:
        raise ConfigError("%skore.cron: command must be a shell command line (str) "
                          "or a callable, not %s" % (where, type(command).__name__))
    if overlap is None:
        overlap = runtime.option("cron_overlap")
    if overlap not in OVERLAP:
        raise ConfigError("%skore.cron: overlap must be 'skip' or 'allow', not %r"
                          % (where, overlap))
    if not isinstance(catch_up, bool):
        raise ConfigError("%skore.cron: catch_up must be True or False" % where)
    if timeout is None:
        timeout = runtime.option("cron_timeout")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
        raise ConfigError("%skore.cron: timeout must be a number of seconds >= 0 "
                          "(0: no limit), not %r" % (where, timeout))
    if catch_up and norm == sched.REBOOT:
        raise ConfigError("%skore.cron: catch_up makes no sense for @reboot" % where)
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ConfigError("%skore.cron: name must be a non-empty string" % where)
    if name is None:
        name = " ".join(command.split())[:60] if command is not None \
            else callable_name(func)
    return Job(name.strip(), norm, command, func, overlap, catch_up, float(timeout),
               source)


def declare(job, explicit_name=False):
    """Add ``job`` to the table being loaded (unique names)."""
    names = {j.name for j in _pending}
    if job.name in names:
        if explicit_name:
            raise ConfigError("%s%skore.cron: a job named '%s' is already declared"
                              % (job.source, ": " if job.source else "", job.name))
        base, n = job.name, 2
        while "%s #%d" % (base, n) in names:
            n += 1
        job.name = "%s #%d" % (base, n)
    _pending.append(job)
    return job


def cron(schedule, command, name=None, overlap=None, catch_up=False, timeout=None):
    """``kore.cron(schedule, command)``: run ``command`` on a crontab schedule.

    ``command`` is a shell command line (run by ``/bin/sh -c`` as a child of
    the master) or a Python callable / coroutine function (run in one
    worker).  ``schedule`` is five crontab fields or ``@hourly``, ``@daily``,
    ``@weekly``, ``@monthly``, ``@yearly``, ``@reboot``.  ``overlap="allow"``
    lets a run start while the previous one is still going (default
    ``"skip"``), ``catch_up=True`` runs once after a downtime that missed
    ticks (needs ``cron_state_file``), ``timeout`` ends a run after that many
    seconds.  Returns the Job.
    """
    if not _loading[0] or runtime.role() == "worker":
        raise RuntimeError("kore.cron() is called while the application loads "
                           "(module level or koreapp.configure), not at run time")
    job = make_job(schedule, command, name=name, overlap=overlap, catch_up=catch_up,
                   timeout=timeout, source=_caller())
    return declare(job, explicit_name=name is not None)


def begin_load():
    del _pending[:]
    _loading[0] = True


def conf_lines(path, lines):
    """Jobs of a kore.conf ``cron { }`` block: ``[(lineno, text)]``."""
    for lineno, text in lines:
        where = "%s:%d" % (path, lineno)
        try:
            schedule, command = sched.split_line(text)
        except sched.ScheduleError as exc:
            raise ConfigError("%s: cron line '%s': %s" % (where, text, exc)) from None
        declare(make_job(schedule, command, source=where))


def plugin_jobs(results):
    """Jobs other plugins return from ``kore_scheduler_jobs``."""
    for batch in results:
        for entry in batch or ():
            if not isinstance(entry, (tuple, list)) or len(entry) not in (3, 4):
                raise ConfigError("kore_scheduler_jobs: expected (name, schedule, "
                                  "callable[, options]), got %r" % (entry,))
            name, schedule, func = entry[:3]
            opts = dict(entry[3]) if len(entry) == 4 else {}
            if not callable(func):
                raise ConfigError("kore_scheduler_jobs: job '%s' is not callable" % name)
            declare(make_job(schedule, func, name=name, source="plugin job '%s'" % name,
                             **opts), explicit_name=True)


def finish_load():
    """The load succeeded: the pending table becomes the active one."""
    _loading[0] = False
    for job in _pending:
        if job.catch_up and not runtime.option("cron_state_file"):
            raise ConfigError("%s: kore.cron(..., catch_up=True) needs option "
                              "'cron_state_file' (where the last run of each job is "
                              "kept across restarts)" % (job.source or job.name))
    _active.clear()
    for job in _pending:
        _active[job.name] = job
    del _pending[:]
    return list(_active.values())


def abort_load():
    _loading[0] = False


def active():
    return list(_active.values())


def get(name):
    return _active.get(name)


def is_coroutine_function(func):
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        getattr(func, "__call__", None))

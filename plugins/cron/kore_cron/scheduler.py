"""The master's scheduler: one per server, never one per worker.

One greenlet of the master (``arbiter.spawn``) sleeps until the next
scheduled time of any job and fires every job due then, so each job runs
once per tick however many workers there are.  For each due job:

1. ticks the master slept through (a stalled loop, a clock jump) are
   coalesced: only the newest one runs, and the log says how many were
   missed;
2. a job whose previous run is still going is skipped and logged
   (``overlap="skip"``, the default) or started anyway (``"allow"``);
3. ``kore_cron_claim(job, scheduled)`` may say another host has the tick
   (False); no plugin answering (None) means run here, a plugin raising or
   not answering in time means not here (at most once);
4. a shell job starts as a child of the master (``kore_cron.shell``), a
   Python job is handed to one worker (``kore_cron.worker``).

The table survives a reload: a job with the same name and schedule keeps its
next run time, so a HUP neither drops nor doubles a tick.  Durations,
timeouts and the stop deadline are real (monotonic) seconds; only the
schedule follows the clock (``kore_cron.clock``).
"""

import itertools
import json
import os
import signal
import time
from datetime import datetime

import gevent

from kore import ipc, runtime
from kore.log import error, info, notice, warning

from . import claim as claimmod
from . import schedule as sched
from . import shell

MSG_RUN = "cron.run"
MSG_DONE = "cron.done"
DISPATCH_WAIT = 10.0        # seconds a Python job waits for a ready worker
MAX_COALESCE = 1000000
# how a tick ended (kore_cron_runs_total): ran and exited 0 / returned; ran
# and failed (a non-zero exit, a signal, an exception, a worker that died
# with it, a command that could not start); ended at its timeout; skipped
# because the previous run was still going; never started (no worker came,
# the server stopped first)
OUTCOMES = ("ok", "failed", "timeout", "skipped", "not_run")


class JobState:
    __slots__ = ("job", "next_run", "runs", "last_tick", "since")

    def __init__(self, job, since=0):
        self.job = job
        self.next_run = None        # aware datetime, None for @reboot
        self.runs = []              # ShellRun / PythonRun not finished
        self.last_tick = None       # epoch of the newest tick handled
        self.since = since          # oldest worker generation that knows the job


class PythonRun:
    """A Python job handed to a worker."""

    def __init__(self, job, scheduled, run_id, since=0):
        self.job = job
        self.scheduled = scheduled
        self.id = run_id
        self.since = since          # only workers of this generation or newer
        self.worker_id = None
        self.worker_pid = None
        self.started = time.monotonic()
        self.done = False

    @property
    def pid(self):
        return self.worker_pid


def fmt(dt):
    return dt.isoformat(timespec="seconds")


class Scheduler:
    def __init__(self, arbiter, clock, tz):
        self.arbiter = arbiter
        self.clock = clock
        self.tz = tz
        self.states = {}            # name -> JobState
        self.shell_runs = {}        # pid -> ShellRun
        self.python_runs = {}       # run id -> PythonRun
        self.pending = []           # PythonRun waiting for a ready worker
        self.stopping = False
        self.checked = None         # clock time up to which ticks were handled
        self._ids = itertools.count(1)
        self.counts = {}            # (job name, outcome) -> ticks (metrics)
        self.state_file = runtime.option("cron_state_file")
        self.kill_timeout = runtime.option("cron_kill_timeout")
        self.claim_timeout = runtime.option("cron_claim_timeout")

    # -- the table ------------------------------------------------------------

    def now(self):
        return datetime.fromtimestamp(self.clock.now(), self.tz)

    def count(self, name, outcome):
        key = (name, outcome)
        self.counts[key] = self.counts.get(key, 0) + 1

    def running(self):
        """{job name: runs not finished} of every job in the table."""
        return {name: sum(1 for r in st.runs if not r.done)
                for name, st in self.states.items()}

    def load(self, jobs, generation=0):
        """Install the job table (start-up or reload).

        A new or changed job counts its ticks from the time the scheduler
        last looked, not from now: a reload that holds the master across a
        tick does not drop that tick for the jobs it changed.

        ``generation`` is the first worker generation forked with this
        table.  A Python job the previous table did not have is handed only
        to workers of that generation or newer: older workers (still serving
        after a reload that failed) would not find it by name.
        """
        now = self.now()
        if self.checked is not None:
            now = min(now, datetime.fromtimestamp(self.checked, self.tz))
        states = {}
        for job in jobs:
            old = self.states.get(job.name)
            known = old is not None and old.job.kind == "python" == job.kind
            since = old.since if known else generation
            if old is not None and old.job.key() == job.key():
                old.job = job
                old.since = since
                states[job.name] = old
                continue
            st = JobState(job, since)
            if old is not None:
                st.runs = old.runs          # still running under the old definition
                st.last_tick = old.last_tick
            st.next_run = sched.next_after(job.schedule, now)
            states[job.name] = st
        for name, old in self.states.items():
            if name not in states and any(not r.done and r.pid is not None
                                          for r in old.runs):
                info("cron job '%s' is gone from the application; its running "
                     "run continues" % name)
        for run in list(self.pending):
            # the next generation's workers would not find it by that name
            st = states.get(run.job.name)
            if st is None or st.job.kind != "python":
                self._drop_pending(run, "the job is gone from the application",
                                   log=notice)
        self.states = states

    # -- the loop -------------------------------------------------------------

    def run(self, first=True):
        if first:
            self._guarded(self._start_up)
        while True:
            if not self._guarded(self._step):
                gevent.sleep(1.0)       # a bug must not spin or end the scheduler

    def _guarded(self, fn):
        try:
            fn()
            return True
        except gevent.GreenletExit:
            raise
        except Exception:
            from kore.trace import report
            report(where="the cron scheduler")
            return False

    def _step(self):
        """Supervise, then fire what is due or sleep until it is."""
        if self.arbiter.stopping and not self.stopping:
            self.begin_stop()
        self._supervise()
        if self.stopping:
            gevent.sleep(0.1)
            return
        now = self.clock.now()
        due = min((st.next_run.timestamp() for st in self.states.values()
                   if st.next_run is not None), default=None)
        if due is not None and due <= now:
            self._tick(now)
            self.checked = now
            return
        self.checked = now
        wait = 0.5 * self.clock.speed
        if due is not None:
            wait = min(wait, due - now)
        self.clock.sleep(wait)

    def _start_up(self):
        now = self.now()
        saved = self._read_state()
        for st in list(self.states.values()):
            job = st.job
            if job.reboot:
                self.fire(st, now, "@reboot")
                continue
            last = saved.get(job.name)
            if last is not None:
                st.last_tick = last
            if job.catch_up and last is not None:
                missed = sched.next_after(job.schedule,
                                          datetime.fromtimestamp(last, self.tz))
                if missed <= now:
                    newest, count = self._coalesce(job, missed, now.timestamp())
                    notice("cron job '%s': %d tick%s missed while the server was "
                           "down (first %s), catching up once"
                           % (job.name, count + 1, "" if count == 0 else "s",
                              fmt(missed)))
                    self.fire(st, newest, "catch-up")
        self._write_state()

    def _coalesce(self, job, scheduled, now):
        """The newest run time <= ``now`` from ``scheduled`` on, and how many
        older ones it stands for."""
        count = 0
        nxt = sched.next_after(job.schedule, scheduled)
        while nxt.timestamp() <= now and count < MAX_COALESCE:
            scheduled, count = nxt, count + 1
            nxt = sched.next_after(job.schedule, scheduled)
        return scheduled, count

    def _tick(self, now):
        for st in list(self.states.values()):
            if st.next_run is None or st.next_run.timestamp() > now:
                continue
            scheduled, missed = self._coalesce(st.job, st.next_run, now)
            st.next_run = sched.next_after(st.job.schedule, scheduled)
            if missed:
                warning("cron job '%s': %d tick%s missed (the master was busy or "
                        "the clock jumped); running the one at %s only"
                        % (st.job.name, missed, "" if missed == 1 else "s",
                           fmt(scheduled)))
            self.fire(st, scheduled, "tick")
        self._write_state()

    def fire(self, st, scheduled, reason):
        job = st.job
        st.last_tick = scheduled.timestamp()
        st.runs = [r for r in st.runs if not r.done]
        if st.runs and job.overlap == "skip":
            r = st.runs[0]
            warning("cron job '%s': still running (%s, started for %s), skipping "
                    "the tick at %s" % (job.name, _where(r), fmt(r.scheduled),
                                         fmt(scheduled)))
            self.count(job.name, "skipped")
            return
        if reason != "@reboot":
            if claimmod.ask(job, scheduled, self.claim_timeout) is False:
                return                  # logged by claim.ask
        if job.kind == "shell":
            self._start_shell(st, scheduled)
        else:
            run = PythonRun(job, scheduled, next(self._ids), st.since)
            st.runs.append(run)
            self.python_runs[run.id] = run
            if not self._dispatch(run):
                self.pending.append(run)

    # -- shell jobs -----------------------------------------------------------

    def _start_shell(self, st, scheduled):
        run = shell.ShellRun(st.job, scheduled)
        try:
            shell.start(run)
        except (OSError, ValueError) as exc:
            error("cron job '%s': cannot start '%s': %s"
                  % (st.job.name, st.job.command, exc))
            self.count(st.job.name, "failed")
            return
        self.shell_runs[run.pid] = run
        st.runs.append(run)
        info("cron job '%s': started pid %d for %s" % (st.job.name, run.pid,
                                                       fmt(scheduled)))
        readers = shell.read_output(run, self.arbiter.spawn)
        self.arbiter.spawn(self._await_shell, run, readers)

    def _await_shell(self, run, readers):
        run.exited.wait()
        gevent.joinall(readers, timeout=2.0)
        self._shell_finished(run)

    def _shell_finished(self, run):
        if self.shell_runs.pop(run.pid, None) is None:
            return
        took = time.monotonic() - run.started
        how = run.describe_status()
        why = " (timed out after %g s)" % run.job.timeout if run.timed_out else ""
        code = run.exit_code()
        log = info if code == 0 else warning
        self.count(run.job.name, "timeout" if run.timed_out
                   else "ok" if code == 0 else "failed")
        log("cron job '%s': pid %d %s after %.3f s%s"
            % (run.job.name, run.pid, how, took, why))

    def reaped(self, pid, status):
        run = self.shell_runs.get(pid)
        if run is None:
            return False
        shell.reaped(run, status)
        return True

    # -- Python jobs ----------------------------------------------------------

    def _pick_worker(self, since=0):
        """The ready worker with the lowest id, of generation ``since`` or
        newer, among the current slots.

        During a reload the slots hold only the new generation: a tick waits
        for its first ready worker rather than go to an old one, which is
        about to be retired (a job there would be cut at the graceful
        timeout, and one handed over just as the TERM arrives would be lost
        with it).  Outside a reload, any ready worker that is not retiring.
        """
        a = self.arbiter

        def fit(wp):
            return (wp.ready and not wp.retiring and wp.pid is not None
                    and getattr(wp, "generation", 0) >= since)
        ready = [wp for wp in a.slots.values() if fit(wp)]
        if not ready and not self._reloading():
            ready = [wp for wp in a.procs.values() if fit(wp)]
        return min(ready, key=lambda wp: wp.id) if ready else None

    def _dispatch(self, run):
        wp = self._pick_worker(run.since)
        if wp is None:
            return False
        payload = json.dumps({"run": run.id, "name": run.job.name,
                              "scheduled": fmt(run.scheduled),
                              "timeout": run.job.timeout}).encode()
        try:
            wp.channel.send(ipc.Message(MSG_RUN, payload, wp.id, src=ipc.MASTER))
        except ipc.ChannelClosed:
            return False
        run.worker_id, run.worker_pid = wp.id, wp.pid
        info("cron job '%s': handed to worker %d (pid %d) for %s"
             % (run.job.name, wp.id, wp.pid, fmt(run.scheduled)))
        return True

    def python_done(self, payload):
        data = json.loads(payload)
        run = self.python_runs.pop(data.get("run"), None)
        if run is None:
            return
        run.done = True
        took = data.get("duration", 0.0)
        self.count(run.job.name, "ok" if data.get("ok") else
                   "timeout" if data.get("timed_out") else "failed")
        if data.get("ok"):
            info("cron job '%s': finished in worker %s after %.3f s"
                 % (run.job.name, run.worker_id, took))
        else:
            warning("cron job '%s': failed in worker %s after %.3f s: %s"
                    % (run.job.name, run.worker_id, took, data.get("error")))

    # -- supervision ----------------------------------------------------------

    def _supervise(self):
        now = time.monotonic()
        for run in list(self.shell_runs.values()):
            if run.done:
                continue
            limit = run.job.timeout
            if limit and run.term_sent is None and now - run.started > limit:
                run.timed_out = True
                run.term_sent = now
                warning("cron job '%s': pid %d still running after its timeout of "
                        "%g s, sending TERM to its process group"
                        % (run.job.name, run.pid, limit))
                shell.signal_group(run, signal.SIGTERM)
            elif run.term_sent is not None and not run.killed and (
                    now - run.term_sent > self.kill_timeout
                    or (self.stopping and self._past_deadline())):
                run.killed = True
                warning("cron job '%s': pid %d did not end after TERM, sending "
                        "KILL to its process group" % (run.job.name, run.pid))
                shell.signal_group(run, signal.SIGKILL)
        alive = set(self.arbiter.procs)
        for run in list(self.python_runs.values()):
            if run.worker_pid is not None and run.worker_pid not in alive:
                self.python_runs.pop(run.id, None)
                run.done = True
                self.count(run.job.name, "failed")
                error("cron job '%s': worker %s (pid %d) exited while running it"
                      % (run.job.name, run.worker_id, run.worker_pid))
        for run in list(self.pending):
            if self.stopping:
                self._drop_pending(run, "the server is stopping")
            elif self._dispatch(run):
                self.pending.remove(run)
            elif now - run.started > DISPATCH_WAIT and not self._reloading():
                # a reload's new workers get the reload's own deadline
                self._drop_pending(run, "no worker that knows the job was ready "
                                   "for %g s" % DISPATCH_WAIT)

    def _drop_pending(self, run, why, log=error):
        self.pending.remove(run)
        self.python_runs.pop(run.id, None)
        run.done = True
        self.count(run.job.name, "not_run")
        log("cron job '%s': the tick at %s did not run: %s"
            % (run.job.name, fmt(run.scheduled), why))

    def _reloading(self):
        return getattr(self.arbiter, "reloading", None) is not None

    def _past_deadline(self):
        deadline = getattr(self.arbiter, "stop_deadline", None)
        return deadline is not None and time.monotonic() >= deadline

    # -- stop -----------------------------------------------------------------

    def begin_stop(self):
        self.stopping = True
        running = [r for r in self.shell_runs.values() if not r.done]
        if running:
            notice("cron: stopping, TERM to the process group of %d running job%s"
                   % (len(running), "" if len(running) == 1 else "s"))
        now = time.monotonic()
        for run in running:
            run.term_sent = now
            shell.signal_group(run, signal.SIGTERM)
        self._write_state()

    def finish_stop(self):
        """After the master's loop ended (nobody reaps any more): wait for
        the jobs until the stop deadline, KILL what is left, reap it."""
        if not self.stopping:
            self.begin_stop()
        left = [r for r in self.shell_runs.values() if not r.done]
        readers = [g for r in left for g in shell.read_output(r, gevent.spawn)]
        while left:
            left = [r for r in left if not shell.try_reap(r)]
            if not left:
                break
            if self._past_deadline() and not all(r.killed for r in left):
                for r in left:
                    if not r.killed:
                        r.killed = True
                        warning("cron job '%s': pid %d still running at the end of "
                                "the graceful timeout, sending KILL to its process "
                                "group" % (r.job.name, r.pid))
                        shell.signal_group(r, signal.SIGKILL)
            gevent.sleep(0.05)
        gevent.joinall(readers, timeout=2.0)
        for run in list(self.shell_runs.values()):
            if run.done:
                self._shell_finished(run)

    # -- state file (catch_up) --------------------------------------------------

    def _read_state(self):
        if not self.state_file:
            return {}
        try:
            with open(self.state_file, encoding="utf-8") as f:
                data = json.load(f)
            return {k: float(v) for k, v in data.get("last_tick", {}).items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            warning("cron: ignoring unreadable state file %s: %s" % (self.state_file, exc))
            return {}

    def _write_state(self):
        if not self.state_file:
            return
        data = {"last_tick": {name: st.last_tick for name, st in self.states.items()
                              if st.last_tick is not None}}
        tmp = self.state_file + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(data, f)
            os.replace(tmp, self.state_file)
        except OSError as exc:
            warning("cron: cannot write state file %s: %s" % (self.state_file, exc))


def _where(run):
    if isinstance(run, PythonRun):
        return "in worker %s" % run.worker_id if run.worker_id else "waiting for a worker"
    return "pid %d" % run.pid

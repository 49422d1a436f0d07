"""Python jobs: run in one worker, handed over by the master.

A Python job runs in a worker, not in the master: it may use everything a
request handler can (``kore.dbquery``, ``kore.httpclient``, the app's
state), and blocking or slow code there cannot stall the master's
supervision and scheduling.  The master picks the ready worker with the
lowest id (worker 1 while it is up), so a job's runs land in one predictable
process; if that worker is restarting the next one takes the tick.  During a
reload the tick waits for the new generation (``Scheduler._pick_worker``).

The worker finds the job by name in the table it inherited at fork, runs the
callable (a coroutine function is driven to completion) in a greenlet of
its own, ends it at the job's timeout, and reports the outcome to the
master, which logs it.  A worker draining for a stop or a reload counts
running jobs as busy, so they get the graceful timeout to finish.
"""

import inspect
import json
import time

import gevent

from kore import ipc
from kore.log import error
from kore.trace import report

from . import jobs
from .scheduler import MSG_DONE

_running = {}           # run id -> greenlet


def handle(worker, msg):
    data = json.loads(msg.payload)
    run_id = data["run"]
    job = jobs.get(data["name"])
    started = time.monotonic()
    if job is None or job.func is None:
        _reply(worker, run_id, False, "this worker has no Python job named '%s' "
               "(it was loaded before a reload changed the table)" % data["name"],
               started)
        return
    g = gevent.spawn(_call, job)
    _running[run_id] = g
    try:
        timeout = data.get("timeout") or None
        g.join(timeout)
        if not g.dead:
            error("cron job '%s': still running after its timeout of %g s, "
                  "killing it" % (job.name, timeout))
            g.kill(block=True, timeout=5)
            _reply(worker, run_id, False, "timed out after %g s" % timeout, started,
                   timed_out=True)
        elif g.successful() and not isinstance(g.value, gevent.GreenletExit):
            _reply(worker, run_id, True, None, started)
        else:
            exc = g.exception or g.value
            if isinstance(exc, gevent.GreenletExit):
                why = "stopped with the worker"
            else:
                why = "%s: %s" % (type(exc).__name__, exc)
            _reply(worker, run_id, False, why, started)
    finally:
        _running.pop(run_id, None)


def _call(job):
    try:
        result = job.func()
        if inspect.iscoroutine(result):
            from kore.aio import drive
            drive(result)
    except gevent.GreenletExit:
        raise
    except BaseException:
        report(where="cron job '%s'" % job.name)
        raise


def _reply(worker, run_id, ok, why, started, timed_out=False):
    payload = json.dumps({"run": run_id, "ok": ok, "error": why, "timed_out": timed_out,
                          "duration": time.monotonic() - started}).encode()
    try:
        worker.send(ipc.Message(MSG_DONE, payload, ipc.MASTER))
    except ipc.ChannelClosed:
        pass


def busy():
    return len(_running)


def shutdown():
    for g in list(_running.values()):
        g.kill(block=False)
    gevent.sleep(0)
    # Let the handlers send their replies before the worker closes its channel.
    deadline = time.monotonic() + 1.0
    while _running and time.monotonic() < deadline:
        gevent.sleep(0.01)

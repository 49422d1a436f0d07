"""The per-tick claim: may this host run a job's tick (``kore_cron_claim``)?

The answer is taken at most once per tick: a claim that raises or does not
answer within ``cron_claim_timeout`` seconds counts as "another host has
it" (False), never as "run here", so a failing or hung shared store cannot
double a run.  The limit also bounds how long the scheduler's greenlet (and
with it the other jobs' ticks and the supervision of running jobs) waits.
No plugin answering (None) means run here.
"""

import gevent

from kore import runtime
from kore.log import info, warning


def fmt(dt):
    return dt.isoformat(timespec="seconds")


def ask(job, scheduled, limit):
    """True (run here), False (not here) or None (nobody answered: run
    here) for ``job``'s tick at the aware datetime ``scheduled``."""
    timer = gevent.Timeout(limit if limit > 0 else None)
    timer.start()
    try:
        answer = _ask(job, scheduled)
        if answer is False:
            info("cron job '%s': the tick at %s is claimed elsewhere"
                 % (job.name, fmt(scheduled)))
        return answer
    except gevent.Timeout as exc:
        if exc is not timer:
            raise
        warning("cron job '%s': kore_cron_claim gave no answer within %g s for the "
                "tick at %s: not running it here" % (job.name, limit, fmt(scheduled)))
    except Exception:
        from kore.trace import report
        report(where="kore_cron_claim")
        warning("cron job '%s': kore_cron_claim failed for the tick at %s: not "
                "running it here" % (job.name, fmt(scheduled)))
    finally:
        timer.close()
    return False


def _ask(job, scheduled):
    if not runtime.implemented("kore_cron_claim"):
        return None
    return runtime.hook("kore_cron_claim")(job=job, scheduled=scheduled)

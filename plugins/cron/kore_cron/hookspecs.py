"""Hook specifications the cron plugin adds (``kore_add_hookspecs``)."""

import pluggy

hookspec = pluggy.HookspecMarker("kore")


@hookspec(firstresult=True)
def kore_cron_claim(job, scheduled):
    """May this server run ``job``'s tick at ``scheduled``?

    Runs in the master, in the cron scheduler's greenlet, for every tick of
    every job about to start (not for ``@reboot``); it may block
    cooperatively (a round trip to a shared store).  ``job`` is the
    ``kore_cron.jobs.Job`` (``job.name``, ``job.schedule``), ``scheduled``
    the tick's aware ``datetime``.  Return True to run it here, False when
    another host has it, None to leave the decision to the next plugin (no
    answer at all: run locally).  An implementation that raises, or does not
    answer within option ``cron_claim_timeout`` seconds, counts as False.  A cross-host implementation takes a lock
    keyed by the job and the *scheduled* time (``SET kore:cron:<name>:<epoch>
    <host> NX EX <ttl>``), so clock skew between hosts cannot double a run.

    :returns: True (run here), False (another host runs it) or None.
    """

"""Hooks declared by kore-plugin-metrics."""

import pluggy

hookspec = pluggy.HookspecMarker("kore")


@hookspec
def kore_metrics_collect(samples):
    """Add a plugin's own metrics to this worker's next snapshot.

    Runs in each worker every ``metrics_interval`` seconds and before a
    scrape (never per request).  ``samples`` is a
    ``kore_metrics.store.Samples``: declare a family once with
    ``samples.family(name, "counter"|"gauge"|"histogram", help,
    buckets=None)``, then ``samples.set(name, labels, value)`` (labels: a
    tuple of (name, value) pairs, bounded in number).  Counters and
    histograms are cumulative per worker (the master sums the workers and
    keeps the totals of workers that exited); gauges are summed over the
    live workers.  Names should start with ``kore_``.  The return value is
    ignored.

    :returns: nothing.
    """


@hookspec
def kore_metrics_collect_master(samples):
    """Add metrics of the server as a whole (not of one worker).

    Runs in the master before every scrape and status page, after the
    workers' fresh snapshots arrived; for numbers a plugin keeps outside the
    workers (a spool, a supervised process), which summing per-worker
    snapshots would count once per worker.  ``samples`` is the master's own
    ``kore_metrics.store.Samples``: declare a family with
    ``samples.family(...)`` and ``samples.set(name, labels, value)`` the
    current value (counters included: the value given is what is exported,
    nothing is summed or folded).  Keep it cheap (a few file reads).  The
    return value is ignored.

    :returns: nothing.
    """


@hookspec
def kore_ready_check():
    """Whether this worker can serve (``/readyz``).

    Runs in the worker on each ``/readyz`` request.  Return None or True
    when ready, or a short string saying why not ("postgresql unreachable");
    any string makes ``/readyz`` answer 503 with it (``/healthz`` stays 200).

    :returns: None, True or a reason (str).
    """


@hookspec
def kore_ready_degraded():
    """What works only in part in this worker (``/readyz``).

    Runs in the worker on each ``/readyz`` request that no readiness check
    failed.  Return None when nothing is degraded, or a short string saying
    what is and why ("backplane redis degraded: reader: Connection
    refused"): ``/readyz`` then still answers 200, since the worker serves
    and taking it out of the load balancer would not help, but with
    ``"status": "warn"`` and the reasons in ``"output"`` (the health+json
    draft's "healthy, with some concerns").  kore-plugin-websocket says so
    while a networked backplane is disconnected.

    :returns: None or a reason (str).
    """

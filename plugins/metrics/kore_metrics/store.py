"""The samples of one process, and the master's sum over the workers.

A worker keeps cumulative values (``Samples``); every ``metrics_interval``
seconds, on a scrape and when it stops it sends the whole snapshot to the
master (one message per interval, never one per request).  Sending the
totals rather than deltas makes a message idempotent: a lost or repeated
snapshot never skews a counter.  The master (``Aggregate``) keeps the last
snapshot of each live worker and, when a worker is gone, folds its counters
and histograms into ``dead`` so totals never decrease across crashes and
recycles; gauges of a dead worker are dropped.  The master's memory is one
snapshot per live worker plus one folded set, whatever the number of
recycles (no file per pid as in prometheus_client's multiprocess mode).
"""

import json
from bisect import bisect_left

# OpenTelemetry's default buckets for http.server.request.duration (seconds)
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0,
                    2.5, 5.0, 7.5, 10.0)
KINDS = ("counter", "gauge", "histogram")
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS",
                     "TRACE", "PATCH", "QUERY"))


class Family:
    """Metadata of one metric family."""

    __slots__ = ("name", "kind", "help", "buckets")

    def __init__(self, name, kind, help, buckets=None):
        if kind not in KINDS:
            raise ValueError("metric %s: kind must be one of %s" % (name, ", ".join(KINDS)))
        self.name = name
        self.kind = kind
        self.help = help
        self.buckets = tuple(buckets) if buckets else None

    def meta(self):
        return [self.kind, self.help, list(self.buckets) if self.buckets else None]


class Samples:
    """Cumulative samples: ``values[(family, labels)]`` is a number
    (counter, gauge) or ``[bucket counts..., above the last bucket, sum,
    count]`` (histogram, counts not cumulative);
    ``labels`` is a tuple of (name, value) pairs."""

    def __init__(self):
        self.families = {}
        self.values = {}

    def family(self, name, kind, help, buckets=None):
        f = self.families.get(name)
        if f is None:
            f = self.families[name] = Family(name, kind, help, buckets)
        return f

    def inc(self, name, labels=(), by=1):
        v = self.values
        key = (name, labels)
        v[key] = v.get(key, 0) + by

    def set(self, name, labels, value):
        self.values[(name, labels)] = value

    def observe(self, name, labels, value):
        key = (name, labels)
        h = self.values.get(key)
        buckets = self.families[name].buckets
        if h is None:
            h = self.values[key] = [0] * (len(buckets) + 3)
        h[bisect_left(buckets, value)] += 1
        h[-2] += value
        h[-1] += 1

    def dump(self):
        """JSON text of the snapshot (histogram buckets non-cumulative)."""
        return json.dumps({
            "families": {n: f.meta() for n, f in self.families.items()},
            "values": [[n, [list(p) for p in labels], v]
                       for (n, labels), v in self.values.items()],
        }, separators=(",", ":"))


def load(text):
    """Parse ``Samples.dump()`` output: (families, values)."""
    data = json.loads(text)
    fams = {}
    for name, (kind, help, buckets) in data["families"].items():
        fams[name] = Family(name, kind, help, buckets)
    values = {}
    for name, labels, v in data["values"]:
        values[(name, tuple(tuple(p) for p in labels))] = v
    return fams, values


def _add(into, key, v):
    old = into.get(key)
    if old is None:
        into[key] = list(v) if isinstance(v, list) else v
    elif isinstance(v, list):
        if len(old) == len(v):
            for i, x in enumerate(v):
                old[i] += x
    else:
        into[key] = old + v


class Aggregate:
    """The master's view: live workers' last snapshots plus folded dead ones."""

    def __init__(self):
        self.families = {}
        self.live = {}          # pid -> values
        self.dead = {}          # folded counters and histograms of gone workers

    def update(self, pid, text):
        fams, values = load(text)
        for name, f in fams.items():
            self.families.setdefault(name, f)
        self.live[pid] = values

    def forget(self, pid):
        """Worker ``pid`` is gone: keep its counters and histograms."""
        values = self.live.pop(pid, None)
        if not values:
            return
        for key, v in values.items():
            f = self.families.get(key[0])
            if f is not None and f.kind != "gauge":
                _add(self.dead, key, v)

    def total(self, extra=None):
        """Sum over live and dead workers (plus ``extra``, the master's own
        Samples): {key: value}."""
        out = {}
        for key, v in self.dead.items():
            _add(out, key, v)
        for values in self.live.values():
            for key, v in values.items():
                _add(out, key, v)
        if extra is not None:
            for name, f in extra.families.items():
                self.families.setdefault(name, f)
            for key, v in extra.values.items():
                _add(out, key, v)
        return out

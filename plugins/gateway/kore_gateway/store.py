"""Where rate-limit counts live: the ``CounterStore`` interface.

Counts are fixed windows (Kong's rate-limiting): window ``w`` of a rate
with a ``window`` of W seconds covers ``[w*W, (w+1)*W)``.  A store hands
out *leases*: ``take(key, want, limit, window, index)`` grants up to
``want`` requests of the window (never more than what is left under
``limit``) and returns ``(granted, left)``.  The master runs the store for
all its workers (``MemoryCounterStore``); a cross-host backplane
implements the same method on its server (Redis: an ``INCRBY`` capped by a
small Lua script, with ``PEXPIREAT`` at the window's end) and the master
uses it instead, so hosts share the count without changing the workers.
"""

import time


class CounterStore:
    """The interface a counter backend implements."""

    def take(self, key, want, limit, window, index):
        """Grant up to ``want`` requests of window ``index`` of ``key``
        without exceeding ``limit``; return ``(granted, left)``."""
        raise NotImplementedError

    # optional: ``give_back(key, n, index)`` returns ``n`` unused requests
    # of window ``index`` (a worker's idle lease); a store without it keeps
    # them spent until the window ends


class MemoryCounterStore(CounterStore):
    """Counts in this process (the master's, for one host)."""

    def __init__(self, clock=time.time):
        self.counts = {}       # key -> [index, used, window]
        self.clock = clock
        self._swept = clock()

    def take(self, key, want, limit, window, index):
        c = self.counts.get(key)
        if c is None or c[0] != index:
            if c is not None and c[0] > index:
                return 0, 0       # a lease for a window already over
            c = self.counts[key] = [index, 0, window]
        left = limit - c[1]
        granted = max(0, min(want, left))
        c[1] += granted
        self._sweep()
        return granted, left - granted

    def give_back(self, key, n, index):
        """Return ``n`` unused requests of window ``index`` (a worker's
        idle lease); nothing once that window is over."""
        c = self.counts.get(key)
        if c is not None and c[0] == index:
            c[1] = max(0, c[1] - n)

    def _sweep(self):
        now = self.clock()
        if now - self._swept < 10.0:
            return
        self._swept = now
        for k, (index, _used, window) in list(self.counts.items()):
            if (index + 1) * window < now:
                del self.counts[k]

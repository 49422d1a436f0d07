"""Rate limits shared by every worker, without a round trip per request.

The master owns the counts (``store.MemoryCounterStore``, or a store
shared by several hosts: ``kore_gateway_counter_store``, e.g. Redis).  A
worker asks it for a *lease* of several requests of the current window
(message ``gateway.take``) and spends it locally; it asks again only when
the lease is used up.  The master grants at most
``left / (2 * workers)`` at a time (at least 1, at most ``MAX_LEASE``), so
the requests admitted in a window never exceed the limit and little of it
sits unused in another worker's lease near the end of a window.  Once the
master says nothing is left, the worker refuses locally until the window
ends: a flood of refused requests costs no messages either.

If the master does not answer within ``TIMEOUT`` seconds the request is
let through (fail open, as Kong's ``fault_tolerant``) and a warning logged.
Outside a worker (library use, tests in one process) the store is local.
"""

import json
import math
import time

from gevent.event import AsyncResult, Event

from kore import ipc, runtime
from kore.log import LOG, LOG_WARNING

from .store import MemoryCounterStore

MSG_TAKE = "gateway.take"
MSG_GRANT = "gateway.grant"
MAX_LEASE = 100
TIMEOUT = 2.0


class Lease:
    __slots__ = ("index", "tokens", "left", "pending")

    def __init__(self, index):
        self.index = index
        self.tokens = 0       # requests this worker may still admit
        self.left = None      # what the master had left at the last grant
        self.pending = None   # AsyncResult of an outstanding take


class Decision:
    __slots__ = ("allowed", "limit", "remaining", "reset")

    def __init__(self, allowed, limit, remaining, reset):
        self.allowed = allowed
        self.limit = limit
        self.remaining = remaining
        self.reset = reset    # whole seconds until the window ends


class Limiter:
    """The worker side: leases per (scope, key)."""

    def __init__(self, clock=time.time):
        self.clock = clock
        self.leases = {}
        self.waiting = {}      # request id -> AsyncResult
        self.next_id = 1
        self.local = None      # MemoryCounterStore when there is no master
        self.warned = 0.0

    def check(self, key, rate):
        now = self.clock()
        index = int(now // rate.window)
        reset = max(1, int(math.ceil((index + 1) * rate.window - now)))
        deadline = time.monotonic() + 2 * TIMEOUT
        while time.monotonic() < deadline:
            lease = self.leases.get(key)
            if lease is None or lease.index < index:
                lease = self.leases[key] = Lease(index)
                self._sweep(index)
            if lease.tokens > 0:
                lease.tokens -= 1
                return Decision(True, rate.limit, lease.tokens + (lease.left or 0), reset)
            if lease.left == 0:
                return Decision(False, rate.limit, 0, reset)
            if lease.pending is not None:
                # another request of this worker is asking: wait for its answer
                lease.pending.wait(max(0.0, deadline - time.monotonic()))
                continue
            if not self._take(lease, key, rate):
                break
        # the master did not answer: fail open
        return Decision(True, rate.limit, rate.limit, reset)

    def _take(self, lease, key, rate):
        """Ask for a lease and credit it; False when no answer came."""
        w = runtime.worker()
        if w is None:
            if self.local is None:
                self.local = MemoryCounterStore(self.clock)
            granted, left = self.local.take(key, rate.limit, rate.limit, rate.window,
                                            lease.index)
            lease.tokens += granted
            lease.left = left
            return True
        rid = self.next_id
        self.next_id += 1
        done = lease.pending = Event()
        result = self.waiting[rid] = AsyncResult()
        try:
            payload = json.dumps({"id": rid, "key": key, "limit": rate.limit,
                                  "window": rate.window, "index": lease.index})
            w.send(ipc.Message(MSG_TAKE, payload.encode("utf-8")))
            reply = result.get(timeout=TIMEOUT)
            lease.tokens += int(reply["granted"])
            lease.left = int(reply["left"])
            return True
        except Exception as exc:
            now = time.monotonic()
            if now - self.warned > 10.0:
                self.warned = now
                LOG.write(LOG_WARNING, "gateway: the master did not grant a rate-limit "
                          "lease (%s): letting requests through"
                          % (type(exc).__name__ if not str(exc) else exc))
            return False
        finally:
            self.waiting.pop(rid, None)
            lease.pending = None
            done.set()

    def granted(self, payload):
        """A ``gateway.grant`` from the master."""
        reply = json.loads(payload)
        result = self.waiting.get(reply.get("id"))
        if result is not None and not result.ready():
            result.set(reply)

    def _sweep(self, index):
        if len(self.leases) > 10000:
            for k, lease in list(self.leases.items()):
                if lease.index < index and lease.pending is None:
                    del self.leases[k]


class MasterCounts:
    """The master side: answers ``gateway.take`` from its store.

    The lease size is decided here, where the count is: a share of what the
    store had left after the previous grant of the same window.

    ``shared`` is a store other hosts use too (``kore_gateway_counter_store``,
    e.g. Redis).  When it fails the master counts on this host alone (its
    memory store) and logs it once; it asks the shared store again on the
    next lease, or ``RETRY`` seconds after a timeout (a hung server must not
    cost every lease a timeout).  Requests are never refused because the
    shared store is down: fail open to the per-host count."""

    RETRY = 1.0

    def __init__(self, store=None, shared=None, clock=time.monotonic):
        self.store = store or MemoryCounterStore()
        self.shared = shared
        self.clock = clock
        self.down_since = None      # monotonic time the shared store failed
        self.retry_at = 0.0
        self.last_left = {}     # key -> (window index, left)

    def _take(self, key, want, limit, window, index):
        shared = self.shared
        if shared is not None and self.clock() >= self.retry_at:
            try:
                result = shared.take(key, want, limit, window, index)
            except Exception as exc:
                now = self.clock()
                if isinstance(exc, TimeoutError) or "imeout" in type(exc).__name__:
                    self.retry_at = now + self.RETRY
                if self.down_since is None:
                    self.down_since = now
                    LOG.write(LOG_WARNING, "gateway: the shared rate-limit count "
                              "cannot be reached (%s): counting on this host only "
                              "until it answers" % (str(exc) or type(exc).__name__))
            else:
                if self.down_since is not None:
                    LOG.write(LOG_WARNING, "gateway: the shared rate-limit count "
                              "answers again after %.1f s" % (self.clock() - self.down_since))
                    self.down_since = None
                return result
        return self.store.take(key, want, limit, window, index)

    def take(self, arbiter, msg):
        req = json.loads(msg.payload)
        key = req["key"]
        limit = int(req["limit"])
        index = int(req["index"])
        workers = max(1, int(getattr(arbiter, "num_workers", 1) or 1))
        last = self.last_left.get(key)
        left = last[1] if last is not None and last[0] == index else limit
        want = max(1, min(MAX_LEASE, left // (2 * workers)))
        granted, left = self._take(key, want, limit, int(req["window"]), index)
        if len(self.last_left) > 100000:
            self.last_left.clear()
        self.last_left[key] = (index, left)
        reply = json.dumps({"id": req["id"], "granted": granted, "left": left})
        arbiter.route(ipc.Message(MSG_GRANT, reply.encode("utf-8"), dst=msg.src))

"""Rate limits shared by every worker, without a round trip per request.

The master owns the counts (``store.MemoryCounterStore``, or a store
shared by several hosts: ``kore_gateway_counter_store``, e.g. Redis).  A
worker asks it for a *lease* of several requests of the current window
(message ``gateway.take``) and spends it locally; it asks again only when
the lease is used up.  The master grants at most
``left / (2 * workers)`` at a time (at least 1, at most ``MAX_LEASE``), so
the requests admitted in a window never exceed the limit and little of it
sits unused in another worker's lease near the end of a window.  A lease
a worker has not drawn on for ``IDLE`` seconds goes back to the master
(``gateway.return``), so a worker that stopped getting requests (the kernel
chooses which worker accepts) does not keep part of the count from the
others.  Once the master says nothing is left, the worker refuses locally
and asks again at most every ``RECHECK`` seconds (for what other workers
gave back): a flood of refused requests costs one message per ``RECHECK``.

If the master does not answer within ``TIMEOUT`` seconds the request is
let through (fail open, as Kong's ``fault_tolerant``) and a warning logged.
Outside a worker (library use, tests in one process) the store is local.
"""

import json
import math
import time

import gevent
from gevent.event import AsyncResult, Event

from kore import ipc, runtime
from kore.log import LOG, LOG_WARNING

from .store import MemoryCounterStore

MSG_TAKE = "gateway.take"
MSG_GRANT = "gateway.grant"
MSG_RETURN = "gateway.return"
MAX_LEASE = 100
TIMEOUT = 2.0
IDLE = 0.5        # seconds a lease may sit unused before it is given back
RECHECK = 0.25    # seconds between asks of a worker the master refused


class Lease:
    __slots__ = ("index", "tokens", "left", "pending", "used_at", "asked_at")

    def __init__(self, index):
        self.index = index
        self.tokens = 0       # requests this worker may still admit
        self.left = None      # what the master had left at the last grant
        self.pending = None   # AsyncResult of an outstanding take
        self.used_at = 0.0    # monotonic time of the last grant or admission
        self.asked_at = 0.0   # monotonic time of the last answer


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
        self.returner = None   # the greenlet giving idle leases back

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
                lease.used_at = time.monotonic()
                return Decision(True, rate.limit, lease.tokens + (lease.left or 0), reset)
            if lease.left == 0 and time.monotonic() - lease.asked_at < RECHECK:
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
            lease.asked_at = time.monotonic()
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
            granted = int(reply["granted"])
            if granted and lease.index < self._index(rate):
                # the window ended while the master answered: a lease of a
                # window no request will draw on goes straight back
                self._give_back(w, key, lease.index, granted)
                granted = 0
            lease.tokens += granted
            lease.left = int(reply["left"])
            lease.used_at = lease.asked_at = time.monotonic()
            if lease.tokens and self.returner is None:
                self.returner = gevent.spawn(self._return_idle, w)
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

    def _index(self, rate):
        return int(self.clock() // rate.window)

    def _give_back(self, w, key, index, n):
        payload = json.dumps({"key": key, "index": index, "n": n})
        try:
            w.send(ipc.Message(MSG_RETURN, payload.encode("utf-8")))
        except ipc.ChannelClosed:
            pass

    def _return_idle(self, w):
        """Give back leases not drawn on for IDLE seconds; ends when this
        worker holds no lease."""
        try:
            while True:
                gevent.sleep(IDLE / 2)
                now = time.monotonic()
                holding = False
                for key, lease in list(self.leases.items()):
                    if lease.tokens <= 0 or lease.pending is not None:
                        continue
                    if now - lease.used_at < IDLE:
                        holding = True
                        continue
                    n, lease.tokens = lease.tokens, 0
                    lease.left = None          # the next request asks again
                    self._give_back(w, key, lease.index, n)
                if not holding:
                    return
        finally:
            self.returner = None

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
        self.last_left = {}     # key -> (window index, left, the store that granted)

    def _take(self, key, want, limit, window, index):
        """(granted, left, the store that granted them)."""
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
                return result[0], result[1], shared
        return self.store.take(key, want, limit, window, index) + (self.store,)

    def take(self, arbiter, msg):
        req = json.loads(msg.payload)
        key = req["key"]
        limit = int(req["limit"])
        index = int(req["index"])
        workers = max(1, int(getattr(arbiter, "num_workers", 1) or 1))
        last = self.last_left.get(key)
        left = last[1] if last is not None and last[0] == index else limit
        want = max(1, min(MAX_LEASE, left // (2 * workers)))
        granted, left, store = self._take(key, want, limit, int(req["window"]), index)
        if len(self.last_left) > 100000:
            self.last_left.clear()
        self.last_left[key] = (index, left, store)
        reply = json.dumps({"id": req["id"], "granted": granted, "left": left})
        arbiter.route(ipc.Message(MSG_GRANT, reply.encode("utf-8"), dst=msg.src))

    def give_back(self, msg):
        """``gateway.return``: a worker's unused lease goes back into the
        count of its window (a shared store without ``give_back`` keeps it
        spent until the window ends)."""
        req = json.loads(msg.payload)
        key, index, n = req["key"], int(req["index"]), int(req["n"])
        last = self.last_left.get(key)
        if n <= 0 or last is None or last[0] != index:
            return          # a window already over: nothing to give back to
        store = last[2]     # where the window's leases came from
        back = getattr(store, "give_back", None)
        if back is None:
            return
        try:
            back(key, n, index)
        except Exception:
            return          # the shared store is down: the lease expires with it
        self.last_left[key] = (index, last[1] + n, store)

"""The worker side: request and connection counts, snapshots to the master,
``--max-requests`` recycling and the state ``/healthz`` and ``/readyz`` read."""

import os
import random
import time
from bisect import bisect_left

import gevent
from gevent.event import Event
from kore import ipc, runtime
from kore.log import error, notice

from .store import DURATION_BUCKETS, METHODS, Samples

MSG_SNAPSHOT = "metrics.snapshot"   # worker -> master: "pid pull\n" + Samples.dump()
MSG_PULL = "metrics.pull"           # master -> workers: b"<pull>": send a snapshot now
MSG_RECYCLE = "metrics.recycle"     # worker -> master: "pid reason": I am leaving
MSG_CLUSTER = "metrics.cluster"     # master -> workers: b"1" all workers ready, b"0" not
MSG_HELLO = "metrics.hello"         # worker -> master: send me the cluster state
MSG_FINAL = "metrics.final"         # worker -> master: last snapshot, acknowledge it
MSG_ACK = "metrics.ack"             # master -> worker: the final snapshot is counted

REQUESTS = "kore_http_server_requests_total"
DURATION = "kore_http_server_request_duration_seconds"
ACTIVE = "kore_http_server_active_connections"
CONNS = "kore_http_server_connections_total"


class State:
    """One worker's metrics state (made again after each fork)."""

    def __init__(self, worker=None):
        self.worker = worker
        self.samples = s = Samples()
        s.family(REQUESTS, "counter", "HTTP requests answered, by route template, "
                 "method and status")
        s.family(DURATION, "histogram", "Duration of HTTP server requests "
                 "(OpenTelemetry http.server.request.duration)", DURATION_BUCKETS)
        s.family(ACTIVE, "gauge", "Open client connections")
        s.family(CONNS, "counter", "Client connections accepted")
        self.active = 0
        self.requests = 0
        self.limit = 0
        self.draining = False
        self.all_ready = False
        self.recycling = False
        self.last_tick = time.monotonic()
        self.max_block = 0.0
        self.greenlets = []
        self.acked = Event()
        self.cache = {}         # (route, method, status) -> histogram
        self.counters = {}      # counter key -> the histogram counting it


STATE = State()


def init(worker):
    global STATE
    STATE = State(worker)
    mr = runtime.option("max_requests")
    if mr:
        STATE.limit = mr + random.randint(0, runtime.option("max_requests_jitter"))


def serve(worker):
    STATE.greenlets = [gevent.spawn(_push_loop), gevent.spawn(_tick_loop)]
    try:
        worker.send(ipc.Message(MSG_HELLO, b"", ipc.MASTER))
    except ipc.ChannelClosed:
        pass


def _tick_loop():
    """Notes how late the loop wakes this greenlet (a blocked loop)."""
    step = 0.1
    while True:
        before = time.monotonic()
        gevent.sleep(step)
        now = time.monotonic()
        STATE.max_block = max(0.0, now - before - step)
        STATE.last_tick = now


def loop_blocked():
    """Seconds the loop was blocked at the last tick, or since it (if longer)."""
    since = time.monotonic() - STATE.last_tick - 0.1
    return max(STATE.max_block, since)


def _push_loop():
    interval = runtime.option("metrics_interval")
    while True:
        gevent.sleep(interval)
        push()


def push(kind=MSG_SNAPSHOT, pull=0):
    """Send this worker's snapshot to the master; ``pull`` is the number of
    the master's request it answers (0: a periodic one), so a scrape waits
    for the answer to its own request, not for a periodic snapshot taken
    before it."""
    w = STATE.worker
    if w is None:
        return
    s = STATE.samples
    s.set(ACTIVE, (), STATE.active)
    sync_counters()
    try:
        runtime.notify("kore_metrics_collect", where="kore_metrics_collect hook",
                       samples=s)
    except Exception as exc:        # notify reports; never lose the snapshot
        error("kore_metrics_collect: %s" % exc)
    try:
        w.send(ipc.Message(kind, "%d %d\n%s" % (os.getpid(), pull, s.dump()), ipc.MASTER))
    except ipc.ChannelClosed:
        pass


def request_done(req, status, duration):
    """Count one answered request (``kore_request_done``): one dict look-up
    for the histogram of the label set, then in-place additions.  The
    request counter of a label set is its histogram's count, copied into
    the snapshot when it is sent (``push``)."""
    st = STATE
    h = st.cache.get((req.route, req._meth, status))
    if h is None:
        h = _entry(req, status)
    h[bisect_left(DURATION_BUCKETS, duration)] += 1
    h[-2] += duration
    h[-1] += 1
    if st.limit:
        st.requests += 1
        if st.requests >= st.limit and not st.recycling:
            recycle("max_requests", "%d requests" % st.requests)


def _entry(req, status):
    route = req.route
    meth = req._meth
    labels = (("http_request_method", meth if meth in METHODS else "_OTHER"),
              ("http_response_status_code", str(status)),
              ("http_route", route.path if route is not None else "_OTHER"))
    st = STATE
    values = st.samples.values
    hk = (DURATION, labels)
    h = values.get(hk)
    if h is None:
        h = values[hk] = [0] * (len(DURATION_BUCKETS) + 3)
    ck = (REQUESTS, labels)
    if ck not in st.counters:
        # a label set's counter: its histogram's count (synced in push)
        st.counters[ck] = h
        values.setdefault(ck, 0)
    if len(st.cache) > 10000:       # bounded: label sets are bounded anyway
        st.cache.clear()
    st.cache[(route, meth, status)] = h
    return h


def sync_counters():
    """Copy each label set's request count (its histogram's count) into
    its counter before a snapshot is taken."""
    values = STATE.samples.values
    for ck, h in STATE.counters.items():
        values[ck] = h[-1]


def recycle(reason, detail):
    """Leave gracefully (in-flight requests finish); the master starts a new
    worker in this slot and counts the respawn under ``reason``."""
    w = STATE.worker
    if w is None or STATE.recycling:
        return
    STATE.recycling = True
    notice("worker %d (pid %d) recycled: %s (%s)" % (w.id, os.getpid(), reason, detail))
    try:
        w.send(ipc.Message(MSG_RECYCLE, "%d %s" % (os.getpid(), reason), ipc.MASTER))
    except ipc.ChannelClosed:
        pass
    gevent.spawn(w.stop, True)


def connection_open(conn):
    STATE.active += 1
    STATE.samples.inc(CONNS)


def connection_close(conn):
    STATE.active -= 1


def message(worker, msg):
    if msg.kind == MSG_PULL:
        try:
            pull = int(msg.payload or b"0")
        except ValueError:
            pull = 0
        push(pull=pull)
        return True
    if msg.kind == MSG_ACK:
        STATE.acked.set()
        return True
    if msg.kind == MSG_CLUSTER:
        STATE.all_ready = msg.payload == b"1"
        return True
    return None


def stop_accepting(worker):
    STATE.draining = True


def shutdown(worker):
    STATE.draining = True
    for g in STATE.greenlets:
        g.kill(block=False)
    # the master may reap this process and close its channel before it read
    # what is still in the socket: wait (at most 2 s) until the last
    # snapshot is counted
    push(MSG_FINAL)
    STATE.acked.wait(2.0)

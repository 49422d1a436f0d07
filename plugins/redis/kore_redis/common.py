"""What both Redis drivers share: connections, the writer, the health check,
dispatching envelopes to the worker's PubSub, the lock.

Every worker holds its own two connections (one reading: SUBSCRIBE or
XREAD BLOCK; one writing: pipelined PUBLISH / XADD, and the lock commands).
The workers of one server still reach each other through the master (the
``local`` relay, which this class extends), so a worker skips on Redis what
its own server instance published: a message reaches every client once, and
one server goes on delivering among its own workers while Redis is down.

A publisher never waits for Redis: ``publish`` appends to a queue that one
writer greenlet sends in order (pipelined batches), so messages of one
publisher arrive in order and local delivery never blocks on the network.
"""

import collections
import json
import logging
import os
import time

import gevent
from gevent.event import Event

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from kore import ConfigError, runtime
from kore_websocket.backplane import INSTANCE_ID, LocalBackplane, check_lock_args

from . import envelope as E

log = logging.getLogger("kore.backplane")

RECONNECT_DELAY = 0.2       # seconds between connection attempts
BATCH = 500                 # envelopes per pipelined write

_RELEASE = ("if redis.call('get', KEYS[1]) == ARGV[1] then "
            "return redis.call('del', KEYS[1]) else return 0 end")


def check_url(url):
    """ConfigError unless ``url`` is a Redis URL redis-py understands."""
    if not url:
        raise ConfigError("option 'backplane': the Redis drivers need a URL, e.g. "
                          "redis://127.0.0.1:6379/0 or rediss://:password@host:6380/0")
    try:
        redis.connection.parse_url(url)
    except ValueError as e:
        raise ConfigError("bad value %r for option 'backplane': %s (expected "
                          "redis://[[user]:password@]host[:port][/db], rediss://... or "
                          "unix:///path)" % (url, e)) from None


class RedisDriver(LocalBackplane):
    """The part of both Redis drivers that does not depend on pub/sub or
    Streams; subclasses implement ``_write``, ``_read`` and the policy for
    what cannot be sent."""

    name = "redis"
    check_url = staticmethod(check_url)

    def __init__(self, sink, settings, url):
        LocalBackplane.__init__(self, sink, settings, url)
        check_url(url)
        s = settings
        self.interval = s.health_interval
        self.max_message = s.max_message
        self.buffer = s.buffer
        self.key = s.prefix + ":backplane"
        self.lock_prefix = s.prefix + ":lock:"
        w = runtime.worker()
        self.origin = "%s:%s:%d" % (INSTANCE_ID, w.id if w is not None else 0, os.getpid())
        self.mine = INSTANCE_ID + ":"
        self.seq = 0
        self.queue = collections.deque()
        self.wake = Event()
        self.running = False
        self.greenlets = []
        self.reader_up = self.writer_up = False
        self.offline = False        # the writer lost Redis (not: has not connected yet)
        self.dropped = 0            # frames lost: not sent, or gaps seen on receipt
        self.reconnects = 0
        self.last_error = None
        self.seen = {}              # origin -> last seq received
        self.alive = {}             # counter -> monotonic time of its last message
        self.heartbeat = 5 * self.interval  # an idle worker says ALIVE this often
        self.swept = time.monotonic()
        self.client = self._client()

    def _client(self, timeout=None):
        if timeout is None:
            timeout = max(2.0, 2 * self.interval)
        return redis.Redis.from_url(self.url, socket_timeout=timeout,
                                    socket_connect_timeout=max(1.0, self.interval),
                                    socket_keepalive=True, retry=Retry(NoBackoff(), 0),
                                    health_check_interval=0)

    # -- the driver interface -----------------------------------------------------

    def start(self):
        LocalBackplane.start(self)
        self.running = True
        self.greenlets = [gevent.spawn(self._writer), gevent.spawn(self._reader)]

    def stop(self, timeout=1.0):
        deadline = time.monotonic() + timeout
        while self.queue and self.writer_up and time.monotonic() < deadline:
            gevent.sleep(0.01)
        self.running = False
        self.wake.set()
        gevent.killall(self.greenlets, block=True, timeout=1.0)

    def publish(self, topic, frame):
        LocalBackplane.publish(self, topic, frame)
        if topic is None:
            self._emit(E.BROADCAST, frame)
        else:
            self._emit(E.PUBLISH, frame, topic)

    def subscribe(self, topic, count):
        LocalBackplane.subscribe(self, topic, count)
        self._emit(E.SUBS, E.COUNT.pack(count), topic)

    def status(self):
        up = self.reader_up and self.writer_up
        return {"driver": self.name, "state": "ok" if up else "degraded",
                "connected": up, "dropped": self.dropped, "queued": len(self.queue),
                "reconnects": self.reconnects, "last_error": self.last_error,
                "instance": INSTANCE_ID}

    def claim(self, key, ttl):
        """SET key token NX PX ttl on Redis: the token, or None if another
        process of any host holds the lock or Redis cannot be reached (a
        job guarded by it then does not run: never twice)."""
        check_lock_args(key, ttl)
        token = os.urandom(12).hex()
        try:
            ok = self.client.set(self.lock_prefix + key, token, nx=True,
                                 px=max(1, int(ttl * 1000)))
        except redis.RedisError as e:
            self._error("claim %r: %s" % (key, e))
            return None
        return token if ok else None

    def release(self, key, token):
        """Delete the lock if ``token`` still holds it (compare-and-delete)."""
        try:
            return bool(self.client.eval(_RELEASE, 1, self.lock_prefix + key, token))
        except redis.RedisError as e:
            self._error("release %r: %s" % (key, e))
            return False

    # -- sending ---------------------------------------------------------------------

    def _emit(self, kind, payload=b"", topic=None, dst=""):
        if not self.running:
            return
        self.seq += 1
        data = E.encode(kind, self.origin, self.seq, payload, topic, dst)
        if self.offline and not self.keeps_offline:
            self.dropped += 1
            return
        if len(self.queue) >= self.buffer:
            self.dropped += 1
            return
        self.queue.append(data)
        self.wake.set()

    keeps_offline = False   # Streams: queue while disconnected, send on reconnect

    def _writer(self):
        queue = self.queue
        while self.running:
            try:
                self.client.ping()
            except redis.RedisError as e:
                self._down("writer", e)
                self._offline()
                gevent.sleep(RECONNECT_DELAY)
                continue
            self.writer_up = True
            self.offline = False
            said = time.monotonic()
            try:
                while self.running:
                    if not queue:
                        self.wake.clear()
                        self.wake.wait(self.interval)
                        if not queue:
                            self.client.ping()      # the health check of this side
                            if time.monotonic() - said >= self.heartbeat:
                                self._emit(E.ALIVE)
                            continue
                    said = time.monotonic()
                    n = min(len(queue), BATCH)
                    batch = [queue[i] for i in range(n)]
                    self._write(batch)
                    for _ in range(n):
                        queue.popleft()
            except redis.RedisError as e:
                self.writer_up = False
                self._down("writer", e)
                self._offline()

    def _offline(self):
        self.offline = True
        if not self.keeps_offline:
            self.dropped += len(self.queue)
            self.queue.clear()

    # -- receiving -------------------------------------------------------------------

    def _reader(self):
        while self.running:
            try:
                self._read()
            except (redis.RedisError, OSError) as e:
                self._down("reader", e)
            except Exception as e:      # a bug must not end cross-host delivery
                log.exception("backplane %s: reader failed", self.name)
                self._down("reader", e)
            self.reader_up = False
            if self.running:
                gevent.sleep(RECONNECT_DELAY)

    def _connected(self):
        """The reader is (again) receiving: say hello, for the counts."""
        if not self.reader_up:
            self.reader_up = True
            now = time.monotonic()      # silence while we were away proves nothing
            for counter in self.alive:
                self.alive[counter] = now
            if self.last_error is not None:
                log.warning("backplane %s: connected again to %s", self.name,
                            _safe(self.url))
            self._emit(E.HELLO)
            mine = self.sink.local_counts()
            if mine:        # what others missed of ours while we were away
                self._emit(E.COUNTS, json.dumps(mine).encode("utf-8"))

    def dispatch(self, data):
        """One envelope from Redis to the sink."""
        try:
            env = E.decode(data)
        except ValueError as e:
            log.warning("backplane %s: %s", self.name, e)
            return
        origin = env.origin
        now = time.monotonic()
        if now - self.swept > self.heartbeat:
            self.sweep(now)
        if origin.startswith(self.mine):
            return          # our own server instance: the local relay carried it
        last = self.seen.get(origin)
        if last is not None:
            if env.seq <= last:
                return      # a repeat (a retried write)
            if env.seq > last + 1:
                self.dropped += env.seq - last - 1
        self.seen[origin] = env.seq
        self.alive[env.counter] = now
        kind = env.kind
        sink = self.sink
        if kind == E.PUBLISH:
            sink.deliver(env.topic, env.payload)
        elif kind == E.BROADCAST:
            sink.deliver(None, env.payload)
        elif kind == E.SUBS:
            sink.remote_count(env.topic, env.counter, E.COUNT.unpack_from(env.payload)[0])
        elif kind == E.HELLO:
            sink.forget(env.counter)
            mine = sink.local_counts()
            if mine:
                self._emit(E.COUNTS, json.dumps(mine).encode("utf-8"), dst=origin)
        elif kind == E.COUNTS:
            if not env.dst or env.dst == self.origin:
                for topic, count in json.loads(env.payload.decode("utf-8")).items():
                    sink.remote_count(topic, env.counter, count)

    def sweep(self, now):
        """Forget the subscriber counts of workers silent for 4 heartbeats (a
        host that died without a word) while we are receiving."""
        self.swept = now
        limit = now - 4 * self.heartbeat
        for counter, t in list(self.alive.items()):
            if t < limit:
                del self.alive[counter]
                self.sink.forget(counter)
                for origin in [o for o in self.seen if o.rsplit(":", 1)[0] == counter]:
                    del self.seen[origin]

    # -- errors ----------------------------------------------------------------------

    def _down(self, side, exc):
        msg = "%s: %s" % (side, exc or type(exc).__name__)
        if msg != self.last_error:
            log.warning("backplane %s: %s lost connection to %s (%s); reconnecting",
                        self.name, side, _safe(self.url), exc)
        self.last_error = msg
        self.reconnects += 1

    def _error(self, msg):
        self.last_error = msg
        log.warning("backplane %s: %s", self.name, msg)


def _safe(url):
    """The URL without its password, for logs."""
    if "@" in url:
        scheme, rest = url.split("://", 1)
        return scheme + "://***@" + rest.rsplit("@", 1)[1]
    return url

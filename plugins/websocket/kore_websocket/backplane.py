"""Backplanes: how topic messages and GLOBAL broadcasts reach the other workers.

A backplane driver is built with the worker's ``pubsub.PubSub`` as its
*sink* and the worker's ``service.Settings``.  The interface, in both
directions:

to the driver
    ``start()`` when the worker starts; ``publish(topic, frame)`` sends an
    encoded frame to the subscribers of ``topic`` in the other workers
    (``topic`` None: to every websocket client of the other workers);
    ``subscribe(topic, count)`` says this worker now has ``count``
    subscribers of ``topic`` (0: none left); ``handle(worker, msg)`` gets
    the worker's kernel IPC messages (True if it was the driver's).

from the driver (the sink's callbacks)
    ``deliver(topic, frame)`` a frame published in another worker;
    ``remote_count(topic, origin, count)`` another worker's subscriber
    count; ``forget(origin)`` a worker (re)started with no subscribers;
    ``local_counts()`` this worker's counts, for a worker that asks.

for other plugins
    ``status()`` the driver's health (``health()`` here: the running
    worker's); ``claim(key, ttl)`` / ``release(key, token)`` a lock shared by
    every process the backplane reaches (one host for ``local``, every host
    for ``redis``), for jobs that must run once (cron).

Drivers are found by name in the entry-point group ``kore.websocket.backplane``
(``load_driver``): ``local`` relays through the master over the kernel's
IPC; kore-plugin-redis adds ``redis`` and ``redis-streams``.  The
``backplane`` option names a driver or gives a URL (``spec.py``).
"""

import json
import os
import shutil
import struct
import tempfile
import time
import uuid

from kore import ConfigError, ipc, runtime

try:
    import fcntl
except ImportError:         # pragma: no cover - not POSIX
    fcntl = None

GROUP = "kore.websocket.backplane"

# One id per server instance (a korectl run): made in the master at import,
# inherited by the workers it forks; a networked driver skips what its own
# instance published (the local relay carried it already).
INSTANCE_ID = uuid.uuid4().hex[:16]

MSG_BROADCAST = "websocket.broadcast"
MSG_PUBLISH = "websocket.publish"
MSG_SUBS = "websocket.subs"          # one topic's subscriber count in a worker
MSG_HELLO = "websocket.hello"        # a (re)started worker asks for counts
MSG_SUBSALL = "websocket.subsall"    # every topic count of a worker (JSON)

_TOPIC_LEN = struct.Struct("!H")
_COUNT = struct.Struct("!I")


class Backplane:
    """The driver interface, and the backplane of a worker alone: nothing to
    carry (one worker, library use)."""

    name = "none"
    max_message = None      # largest frame the driver carries (None: no limit)

    def __init__(self, sink, settings=None, url=None):
        self.sink = sink
        self.settings = settings
        self.url = url

    def start(self):
        pass

    def stop(self):
        pass

    def status(self):
        """{"driver", "state": "ok" | "degraded", ...}: what /readyz shows."""
        return {"driver": self.name, "state": "ok"}

    def claim(self, key, ttl):
        """Take the lock ``key`` for ``ttl`` seconds: a token, or None when
        another process holds it (see ``FileLocks``)."""
        return _LOCKS.claim(key, ttl)

    def release(self, key, token):
        """Give the lock back early (only with the token ``claim`` gave)."""
        return _LOCKS.release(key, token)

    def publish(self, topic, frame):
        pass

    def subscribe(self, topic, count):
        pass

    def handle(self, worker, msg):
        return None


class LocalBackplane(Backplane):
    """The workers of one server, through the master.

    The master routes ``ALL_WORKERS`` messages to every worker, the sender
    included: the sender skips its own message because it delivered locally
    already, so every client gets a message exactly once.  Every worker
    announces its count of a topic whenever it changes; a (re)started worker
    says hello and the others answer with all their counts.
    """

    name = "local"

    def start(self):
        if self.settings.multi:
            self._send(ipc.Message(MSG_HELLO, b"", ipc.ALL_WORKERS))

    def publish(self, topic, frame):
        if not self.settings.multi:
            return
        if topic is None:
            self._send(ipc.Message(MSG_BROADCAST, frame, ipc.ALL_WORKERS))
        else:
            t = topic.encode("utf-8")
            self._send(ipc.Message(MSG_PUBLISH, _TOPIC_LEN.pack(len(t)) + t + frame,
                                   ipc.ALL_WORKERS))

    def subscribe(self, topic, count):
        if self.settings.multi:
            self._send(ipc.Message(MSG_SUBS, _COUNT.pack(count) + topic.encode("utf-8"),
                                   ipc.ALL_WORKERS))

    def handle(self, worker, msg):
        kind = msg.kind
        if not kind.startswith("websocket."):
            return None
        if msg.src == worker.id:
            return True          # our own ALL_WORKERS message: delivered already
        sink = self.sink
        p = msg.payload
        if kind == MSG_BROADCAST:
            sink.deliver(None, p)
        elif kind == MSG_PUBLISH:
            n = _TOPIC_LEN.unpack_from(p)[0]
            sink.deliver(p[2:2 + n].decode("utf-8"), p[2 + n:])
        elif kind == MSG_SUBS:
            sink.remote_count(p[4:].decode("utf-8"), msg.src, _COUNT.unpack_from(p)[0])
        elif kind == MSG_HELLO:
            sink.forget(msg.src)
            mine = sink.local_counts()
            if mine:
                self._send(ipc.Message(MSG_SUBSALL, json.dumps(mine).encode("utf-8"),
                                       msg.src))
        elif kind == MSG_SUBSALL:
            for topic, count in json.loads(p.decode("utf-8")).items():
                sink.remote_count(topic, msg.src, count)
        else:
            return None
        return True

    @staticmethod
    def _send(msg):
        w = runtime.worker()
        if w is None:
            return
        try:
            w.send(msg)
        except ipc.ChannelClosed:
            pass


class FileLocks:
    """Locks shared by the processes of one host: a file per key under a
    directory of this server instance, ``flock`` while it is read and
    written, holding the owner's token and expiry."""

    def __init__(self, directory=None):
        self.directory = directory

    def _dir(self):
        if self.directory is None:
            self.directory = os.path.join(
                tempfile.gettempdir(), "kore-locks-%d-%s" % (os.getuid(), INSTANCE_ID))
        return self.directory

    def remove(self):
        """The server stops: its lock files go."""
        shutil.rmtree(self._dir(), ignore_errors=True)

    def _path(self, key):
        d = self._dir()
        os.makedirs(d, mode=0o700, exist_ok=True)
        return os.path.join(d, uuid.uuid5(uuid.NAMESPACE_URL, key).hex)

    def _locked(self, key, fn):
        fd = os.open(self._path(key), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.pread(fd, 200, 0).decode("ascii", "replace").split()
            token, expiry = (raw[0], float(raw[1])) if len(raw) == 2 else (None, 0.0)
            new = fn(token if expiry > time.time() else None)
            if new is not None:
                data = ("%s %.3f" % new).encode("ascii")
                os.ftruncate(fd, 0)
                os.pwrite(fd, data, 0)
            return new
        finally:
            os.close(fd)

    def claim(self, key, ttl):
        check_lock_args(key, ttl)
        token = uuid.uuid4().hex
        got = self._locked(key, lambda held: None if held else (token, time.time() + ttl))
        return token if got else None

    def release(self, key, token):
        done = []

        def fn(held):
            if held == token:
                done.append(1)
                return ("-", 0.0)
            return None
        self._locked(key, fn)
        return bool(done)


def check_lock_args(key, ttl):
    if not isinstance(key, str) or not key:
        raise TypeError("claim: key must be a non-empty str")
    if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or ttl <= 0:
        raise ValueError("claim: ttl must be a number of seconds > 0")


_LOCKS = FileLocks()

DRIVERS = {"local": LocalBackplane}     # built in: found without entry points


def installed():
    """Names of the installed backplane drivers."""
    from importlib.metadata import entry_points
    try:
        eps = entry_points(group=GROUP)
    except TypeError:       # pragma: no cover - Python < 3.10
        eps = entry_points().get(GROUP, ())
    return sorted(set(DRIVERS) | {ep.name for ep in eps})


def load_driver(name):
    """The driver class registered as ``name`` in the entry-point group
    ``kore.websocket.backplane``, through the kernel's driver facade
    (``kore.drivers``, stevedore)."""
    if name in DRIVERS:
        return DRIVERS[name]
    from kore import drivers
    try:
        return drivers.load("websocket", "backplane", name, option="backplane",
                            packages={"redis": "kore-plugin-redis",
                                      "redis-streams": "kore-plugin-redis"})
    except drivers.DriverNotFound:
        raise ConfigError("unknown websocket backplane driver %r (option 'backplane'): "
                          "installed drivers: %s; a URL's scheme names its driver, "
                          "e.g. redis://127.0.0.1:6379/0 (pip install kore-plugin-redis)"
                          % (name, ", ".join(installed()))) from None


def create(spec, sink, settings):
    """The backplane driver ``spec`` (the ``backplane`` option) for ``sink``."""
    from .spec import parse
    name, url = parse(spec)
    return load_driver(name)(sink, settings, url)


_CURRENT = []


def current():
    """The running worker's backplane driver, or None."""
    return _CURRENT[0] if _CURRENT else None


def health():
    """The backplane's health in this worker, for /readyz and status pages:
    {"driver": name, "state": "ok" | "degraded", ...}; "degraded" means
    cross-host delivery is interrupted while local delivery goes on."""
    bp = current()
    if bp is None:
        return {"driver": "none", "state": "ok"}
    return bp.status()


def claim(key, ttl):
    """Lock ``key`` for ``ttl`` seconds across every process this worker's
    backplane reaches; the token, or None if someone else holds it."""
    bp = current()
    return (bp or Backplane(None)).claim(key, ttl)


def release(key, token):
    bp = current()
    return (bp or Backplane(None)).release(key, token)

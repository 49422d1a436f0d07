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

Drivers are chosen by name from ``DRIVERS``.  ``local`` relays through the
master over the kernel's IPC; a networked one (Redis) would map topics to
channels and counts to a shared hash behind the same five calls.
"""

import json
import struct

from kore import ConfigError, ipc, runtime

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

    def __init__(self, sink, settings=None):
        self.sink = sink
        self.settings = settings

    def start(self):
        pass

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


DRIVERS = {"local": LocalBackplane}


def create(name, sink, settings):
    """The backplane driver ``name`` for ``sink`` (a PubSub)."""
    cls = DRIVERS.get(name)
    if cls is None:
        raise ConfigError("unknown websocket backplane %r: expected one of %s"
                          % (name, ", ".join(sorted(DRIVERS))))
    return cls(sink, settings)

"""Broadcast and socketify-style topics: ``kore.websocket_broadcast``,
``kore.publish``, ``kore.num_subscribers`` and ``c.subscribe``.

``PubSub`` holds this worker's side: the subscribers of every topic and the
other workers' subscriber counts.  It delivers to its own clients itself and
hands the same frame to its backplane (``backplane.py``), which carries it
to the other workers; what the backplane brings from them comes back through
``deliver`` and ``remote_count``.  A frame is encoded once: a server frame is
the same bytes for every client (uncompressed, which permessage-deflate
allows).
"""

from .backplane import Backplane
from .frames import OP_BINARY, OP_TEXT, encode
from .transport import OPEN, SEND_FLAGS

BROADCAST_LOCAL = 1
BROADCAST_GLOBAL = 2


def fanout(conns, frame, exclude=None):
    """Write ``frame`` to every open connection in ``conns`` but ``exclude``;
    the number of connections it went to.

    Plain TCP with nothing queued: one non-blocking send straight from here
    (no method call per client; the twin of ``Transport.write``, inlined on
    purpose: measured in commit 403c533).  What the socket does not take is
    queued, and a connection with a queue (or TLS) goes through
    ``Transport.write``, so frames on one connection never interleave or
    reorder.
    """
    n = 0
    size = len(frame)
    flags = SEND_FLAGS
    for ws in list(conns):
        t = ws.transport
        if t.state != OPEN or ws is exclude:
            continue
        n += 1
        raw = t.raw
        if raw is None or t.queue is not None:
            t.write(frame)
            continue
        try:
            k = raw.send(frame, flags)
        except BlockingIOError:
            k = 0
        except OSError:
            t.abort()
            continue
        if k != size:
            t.enqueue(frame[k:] if k else frame)
    return n


def topic_name(topic):
    if isinstance(topic, bytes):
        topic = topic.decode("utf-8")
    if not isinstance(topic, str):
        raise TypeError("topic must be str")
    return topic


def _payload(data):
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    raise TypeError("data must be bytes or str")


class PubSub:
    """This worker's topics; ``connections`` is the set of its open
    websockets (what a broadcast reaches)."""

    def __init__(self, connections):
        self.connections = connections
        self.topics = {}            # topic -> set of local connection.WebSocket
        self.remote = {}            # topic -> {worker id: subscriber count}
        self.backplane = Backplane(self)    # no other workers until start()

    def start(self, backplane):
        self.backplane = backplane
        backplane.start()

    # -- the Kore / socketify API -------------------------------------------------

    def websocket_broadcast(self, src, op, data, scope):
        """kore.websocket_broadcast(src, op, data, scope): every websocket
        client but ``src`` gets the message once; GLOBAL reaches every
        worker."""
        if op not in (OP_TEXT, OP_BINARY):
            raise ValueError("websocket_broadcast: op must be WEBSOCKET_OP_TEXT or _BINARY")
        if scope not in (BROADCAST_LOCAL, BROADCAST_GLOBAL):
            raise ValueError("websocket_broadcast: scope must be WEBSOCKET_BROADCAST_LOCAL "
                             "or _GLOBAL")
        frame = encode(op, _payload(data))
        if scope == BROADCAST_GLOBAL:
            self._check_size(frame)
        fanout(self.connections, frame, src)
        if scope == BROADCAST_GLOBAL:
            self.backplane.publish(None, frame)
        return True

    def publish(self, topic, data, op=None, exclude=None, opcode=None, compress=False):
        """kore.publish(topic, data, op=None): send to every subscriber of
        ``topic`` in every worker.  ``op`` (socketify's ``opcode=``) defaults
        to TEXT for str and BINARY for bytes; ``compress`` is accepted for
        socketify and ignored (broadcasts go uncompressed, as documented)."""
        if op is None:
            op = opcode
        topic = topic_name(topic)
        if op is None:
            op = OP_TEXT if isinstance(data, str) else OP_BINARY
        elif op not in (OP_TEXT, OP_BINARY):
            raise ValueError("publish: op must be WEBSOCKET_OP_TEXT or _BINARY")
        frame = encode(op, _payload(data))
        self._check_size(frame)
        subs = self.topics.get(topic)
        if subs:
            fanout(subs, frame, exclude)
        self.backplane.publish(topic, frame)
        return True

    def _check_size(self, frame):
        limit = self.backplane.max_message
        if limit is not None and len(frame) > limit:
            raise ValueError("message of %d bytes is larger than backplane_max_message "
                             "(%d)" % (len(frame), limit))

    def num_subscribers(self, topic):
        """Subscribers of ``topic`` in all workers (the other workers' counts
        arrive through the backplane: eventually consistent)."""
        topic = topic_name(topic)
        n = len(self.topics.get(topic, ()))
        r = self.remote.get(topic)
        if r:
            n += sum(r.values())
        return n

    def subscribe(self, ws, topic):
        topic = topic_name(topic)
        if ws.topics is None:
            ws.topics = set()
        if topic in ws.topics:
            return True
        ws.topics.add(topic)
        subs = self.topics.get(topic)
        if subs is None:
            subs = self.topics[topic] = set()
        subs.add(ws)
        self.backplane.subscribe(topic, len(subs))
        return True

    def unsubscribe(self, ws, topic):
        topic = topic_name(topic)
        if not ws.topics or topic not in ws.topics:
            return False
        ws.topics.discard(topic)
        subs = self.topics.get(topic)
        count = 0
        if subs is not None:
            subs.discard(ws)
            count = len(subs)
            if not subs:
                del self.topics[topic]
        self.backplane.subscribe(topic, count)
        return True

    def unsubscribe_all(self, ws):
        for topic in list(ws.topics or ()):
            self.unsubscribe(ws, topic)

    def is_subscribed(self, ws, topic):
        return bool(ws.topics) and topic_name(topic) in ws.topics

    # -- what the backplane brings from the other workers ---------------------------

    def deliver(self, topic, frame):
        """A frame published in another worker: to the local subscribers of
        ``topic``, or to every local client for a GLOBAL broadcast (None)."""
        if topic is None:
            fanout(self.connections, frame)
            return
        subs = self.topics.get(topic)
        if subs:
            fanout(subs, frame)

    def remote_count(self, topic, origin, count):
        """Worker ``origin`` has ``count`` subscribers of ``topic``."""
        counts = self.remote.get(topic)
        if count:
            if counts is None:
                counts = self.remote[topic] = {}
            counts[origin] = count
        elif counts is not None:
            counts.pop(origin, None)
            if not counts:
                del self.remote[topic]

    def forget(self, origin):
        """Worker ``origin`` (re)started with no subscribers."""
        for topic, counts in list(self.remote.items()):
            counts.pop(origin, None)
            if not counts:
                del self.remote[topic]

    def local_counts(self):
        """{topic: subscribers in this worker}."""
        return {t: len(s) for t, s in self.topics.items()}

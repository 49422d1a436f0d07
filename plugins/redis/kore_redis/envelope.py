"""What a worker puts on Redis: one binary envelope per message.

::

    version 1 byte | kind 1 byte | origin length 1 byte | origin
    | seq 8 bytes | dst length 1 byte | dst | topic length 2 bytes | topic
    | payload

``origin`` is ``<instance id>:<worker id>:<pid>`` (one per process);
``seq`` counts the messages of one origin from 1, so a receiver sees gaps
(pub/sub: dropped) and repeats (Streams after a retried XADD: skipped).
``dst`` is empty (everyone) or one origin (an answer to a hello).
"""

import struct

VERSION = 1
BROADCAST = b"B"    # payload: a websocket frame for every client
PUBLISH = b"P"      # payload: a frame for the subscribers of topic
SUBS = b"S"         # payload: 4-byte subscriber count of topic in origin
HELLO = b"H"        # origin (re)connected: forget it, answer with your counts
COUNTS = b"A"       # payload: JSON {topic: count} for dst
ALIVE = b"K"        # an idle worker is still there (its counts stay valid)

_SEQ = struct.Struct("!Q")
_TOPIC = struct.Struct("!H")
COUNT = struct.Struct("!I")


class Envelope:
    __slots__ = ("kind", "origin", "seq", "dst", "topic", "payload")

    def __init__(self, kind, origin, seq, dst, topic, payload):
        self.kind = kind
        self.origin = origin
        self.seq = seq
        self.dst = dst
        self.topic = topic
        self.payload = payload

    @property
    def counter(self):
        """The origin without its pid: the key of its subscriber counts (a
        restarted worker replaces its predecessor's counts)."""
        return self.origin.rsplit(":", 1)[0]


def encode(kind, origin, seq, payload=b"", topic=None, dst=""):
    o = origin.encode("utf-8")
    d = dst.encode("utf-8")
    t = b"" if topic is None else topic.encode("utf-8")
    if len(o) > 255 or len(d) > 255 or len(t) > 65535:
        raise ValueError("backplane envelope: origin, dst or topic too long")
    return b"".join((bytes((VERSION,)), kind, bytes((len(o),)), o, _SEQ.pack(seq),
                     bytes((len(d),)), d, _TOPIC.pack(len(t)), t, payload))


def decode(data):
    """The Envelope in ``data`` (bytes); ValueError if it is not one."""
    try:
        if data[0] != VERSION:
            raise ValueError("backplane envelope: unknown version %d" % data[0])
        kind = data[1:2]
        n = data[2]
        i = 3 + n
        origin = data[3:i].decode("utf-8")
        seq = _SEQ.unpack_from(data, i)[0]
        i += 8
        n = data[i]
        dst = data[i + 1:i + 1 + n].decode("utf-8")
        i += 1 + n
        n = _TOPIC.unpack_from(data, i)[0]
        i += 2
        topic = data[i:i + n].decode("utf-8")
        payload = data[i + n:]
    except (IndexError, struct.error, UnicodeDecodeError) as e:
        raise ValueError("backplane envelope: truncated or corrupt (%s)" % e) from None
    if kind == BROADCAST:
        topic = None
    return Envelope(kind, origin, seq, dst, topic, payload)

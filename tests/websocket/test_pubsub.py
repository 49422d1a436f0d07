"""pubsub.PubSub and the local backplane in process: the interface a
backplane driver implements, checked with fake sockets and a fake IPC
channel between two "workers"."""

import json

import pytest

from kore import ConfigError, ipc, runtime
from kore_websocket import backplane, pubsub
from kore_websocket.frames import OP_BINARY, OP_TEXT, encode
from kore_websocket.service import Settings
from kore_websocket.transport import CLOSED, Transport


class Raw:
    """The OS socket of a client: keeps what was sent; ``take`` bytes a send."""

    def __init__(self, take=None):
        self.sent = []
        self.take = take

    def send(self, data, flags):
        n = len(data) if self.take is None else min(self.take, len(data))
        self.sent.append(bytes(data[:n]))
        return n


class Client:
    __slots__ = ("transport", "topics")

    def __init__(self, take=None):
        self.transport = Transport(self, 0, False, Settings(), None)
        self.transport.raw = Raw(take)
        self.topics = None

    @property
    def got(self):
        return b"".join(self.transport.raw.sent)


class Recorder(backplane.Backplane):
    def __init__(self, sink):
        backplane.Backplane.__init__(self, sink)
        self.calls = []

    def publish(self, topic, frame):
        self.calls.append(("publish", topic, frame))

    def subscribe(self, topic, count):
        self.calls.append(("subscribe", topic, count))


def make():
    conns = set()
    ps = pubsub.PubSub(conns)
    rec = Recorder(ps)
    ps.start(rec)
    return ps, conns, rec


def test_subscribe_counts_go_to_the_backplane():
    ps, conns, rec = make()
    a, b = Client(), Client()
    assert ps.subscribe(a, "news") and ps.subscribe(b, b"news") and ps.subscribe(a, "news")
    assert ps.is_subscribed(a, "news") and ps.num_subscribers("news") == 2
    assert ps.unsubscribe(a, "news") and not ps.unsubscribe(a, "news")
    ps.unsubscribe_all(b)
    assert rec.calls == [("subscribe", "news", 1), ("subscribe", "news", 2),
                         ("subscribe", "news", 1), ("subscribe", "news", 0)]
    assert ps.topics == {} and ps.num_subscribers("news") == 0
    with pytest.raises(TypeError):
        ps.subscribe(a, 5)


def test_publish_local_except_the_sender_and_once_to_the_backplane():
    ps, conns, rec = make()
    a, b, c = Client(), Client(), Client()
    for x in (a, b):
        ps.subscribe(x, "t")
    ps.publish("t", "hi", exclude=a)
    frame = encode(OP_TEXT, b"hi")
    assert (a.got, b.got, c.got) == (b"", frame, b"")
    assert rec.calls[-1] == ("publish", "t", frame)
    ps.publish("t", b"\x00")                  # bytes: BINARY by default
    assert b.got.endswith(encode(OP_BINARY, b"\x00"))
    with pytest.raises(ValueError):
        ps.publish("t", "x", op=9)


def test_broadcast_scopes():
    ps, conns, rec = make()
    a, b = Client(), Client()
    conns.update((a, b))
    ps.websocket_broadcast(a, OP_TEXT, "L", pubsub.BROADCAST_LOCAL)
    assert a.got == b"" and b.got == encode(OP_TEXT, b"L") and rec.calls == []
    ps.websocket_broadcast(None, OP_TEXT, "G", pubsub.BROADCAST_GLOBAL)
    assert a.got == encode(OP_TEXT, b"G")
    assert rec.calls == [("publish", None, encode(OP_TEXT, b"G"))]
    with pytest.raises(ValueError):
        ps.websocket_broadcast(None, OP_TEXT, "x", 3)


def test_fanout_skips_closed_and_queues_what_the_socket_does_not_take():
    ok, closed, slow = Client(), Client(), Client(take=3)
    closed.transport.state = CLOSED
    frame = encode(OP_BINARY, b"x" * 100)
    assert pubsub.fanout([ok, closed, slow], frame) == 2
    assert ok.got == frame and closed.got == b""
    assert slow.got == frame[:3] and list(slow.transport.queue) == [frame[3:]]
    assert pubsub.fanout([slow], b"next") == 1      # behind the queue, in order
    assert list(slow.transport.queue) == [frame[3:], b"next"]


class Worker:
    """Two workers and the master routing ALL_WORKERS to both (the sender too)."""

    def __init__(self, wid, net):
        self.id = wid
        self.net = net

    def send(self, msg):
        msg.src = self.id
        self.net.append(msg)


def test_local_backplane_between_two_workers(monkeypatch):
    net = []
    settings = Settings(workers=2)
    sides = {}
    for wid in (1, 2):
        conns = set()
        ps = pubsub.PubSub(conns)
        ps.start(backplane.create("local", ps, settings))
        sides[wid] = (Worker(wid, net), ps, conns)

    def on(wid, fn):
        monkeypatch.setattr(runtime, "worker", lambda: sides[wid][0])
        fn(sides[wid][1])

    def route():
        while net:
            msg = net.pop(0)
            for wid, (w, ps, _) in sides.items():
                if msg.dst in (ipc.ALL_WORKERS, wid):
                    monkeypatch.setattr(runtime, "worker", lambda w=w: w)
                    assert ps.backplane.handle(w, msg) is True
    a, b = Client(), Client()
    sides[1][2].add(a)
    sides[2][2].add(b)
    on(1, lambda ps: ps.subscribe(a, "news"))
    on(2, lambda ps: ps.subscribe(b, "news"))
    route()
    assert sides[1][1].num_subscribers("news") == 2 == sides[2][1].num_subscribers("news")

    on(1, lambda ps: ps.publish("news", "one"))
    route()
    assert a.got == b.got == encode(OP_TEXT, b"one")       # exactly once each

    on(2, lambda ps: ps.websocket_broadcast(b, OP_TEXT, "all", pubsub.BROADCAST_GLOBAL))
    route()
    assert a.got.endswith(encode(OP_TEXT, b"all")) and b.got == encode(OP_TEXT, b"one")

    # worker 2 restarts: its hello makes worker 1 forget it and send its counts
    sides[2] = (sides[2][0], pubsub.PubSub(set()), set())
    sides[2][1].backplane = backplane.create("local", sides[2][1], settings)
    on(2, lambda ps: ps.backplane.start())
    kinds = [m.kind for m in net]
    route()
    assert kinds == [backplane.MSG_HELLO]
    assert sides[1][1].num_subscribers("news") == 1
    assert sides[2][1].num_subscribers("news") == 1        # from worker 1's subsall
    assert sides[2][1].remote == {"news": {1: 1}}


def test_local_backplane_ignores_other_messages_and_one_worker_sends_nothing(monkeypatch):
    ps = pubsub.PubSub(set())
    bp = backplane.create("local", ps, Settings(workers=1))
    w = Worker(1, [])
    monkeypatch.setattr(runtime, "worker", lambda: w)
    bp.start()
    bp.publish("t", b"frame")
    bp.subscribe("t", 1)
    assert w.net == []
    assert bp.handle(w, ipc.Message("other.kind", b"", ipc.ALL_WORKERS, src=2)) is None
    msg = ipc.Message(backplane.MSG_SUBSALL, json.dumps({"t": 3}).encode(), 1, src=2)
    assert bp.handle(w, msg) is True and ps.num_subscribers("t") == 3


def test_unknown_driver_is_a_config_error():
    with pytest.raises(ConfigError,
                       match="unknown websocket backplane driver 'nats'.*installed.*local"):
        backplane.create("nats://127.0.0.1:4222", pubsub.PubSub(set()), Settings())

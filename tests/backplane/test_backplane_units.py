"""In-process pieces of the backplane: the option's syntax, loading drivers
by name, the envelope, the Redis driver's dispatching (own instance, gaps,
repeats, counts) and the local lock."""

import json

import pytest

from kore import ConfigError
from kore_testing import wait_for
from kore_redis import envelope as E
from kore_redis.common import RedisDriver, _safe, check_url
from kore_redis.pubsub_driver import RedisBackplane
from kore_redis.streams_driver import RedisStreamsBackplane
from kore_websocket import backplane
from kore_websocket.backplane import INSTANCE_ID, Backplane, FileLocks, LocalBackplane
from kore_websocket.service import Settings
from kore_websocket.spec import parse


@pytest.mark.parametrize("spec,want", [
    ("local", ("local", None)),
    (" local ", ("local", None)),
    ("redis://127.0.0.1:6379/0", ("redis", "redis://127.0.0.1:6379/0")),
    ("rediss://:pw@h:6380/1", ("redis", "rediss://:pw@h:6380/1")),
    ("redis-streams+redis://h/0", ("redis-streams", "redis://h/0")),
    ("redis-streams+rediss://u:p@h/0", ("redis-streams", "rediss://u:p@h/0")),
    ("nats://h:4222", ("nats", "nats://h:4222")),
])
def test_spec(spec, want):
    assert parse(spec) == want


@pytest.mark.parametrize("bad", ["", "  ", "+redis://h", "://h"])
def test_bad_spec(bad):
    with pytest.raises(ConfigError, match="backplane"):
        parse(bad)


def test_drivers_by_name_and_unknown_lists_installed():
    assert backplane.load_driver("local") is LocalBackplane
    assert backplane.load_driver("redis") is RedisBackplane
    assert backplane.load_driver("redis-streams") is RedisStreamsBackplane
    assert {"local", "redis", "redis-streams"} <= set(backplane.installed())
    with pytest.raises(ConfigError) as e:
        backplane.load_driver("nats")
    msg = str(e.value)
    assert "'nats'" in msg and "local, redis, redis-streams" in msg


def test_check_url():
    check_url("redis://127.0.0.1:6379/0")
    check_url("rediss://:secret@example.org:6380/2")
    for bad in (None, "", "http://h/0"):
        with pytest.raises(ConfigError, match="option 'backplane'"):
            check_url(bad)
    assert _safe("rediss://user:secret@h:1/0") == "rediss://***@h:1/0"


def test_envelope_round_trip():
    for kind, topic in ((E.PUBLISH, "news"), (E.PUBLISH, ""), (E.BROADCAST, None),
                        (E.SUBS, "t\u00e9")):
        data = E.encode(kind, "abc:1:99", 2 ** 40, b"\x81\x02hi", topic, dst="x:2:3")
        env = E.decode(data)
        assert (env.kind, env.origin, env.seq, env.dst, env.topic, env.payload) == (
            kind, "abc:1:99", 2 ** 40, "x:2:3", topic, b"\x81\x02hi")
        assert env.counter == "abc:1"
        with pytest.raises(ValueError):
            E.decode(data[:6])
    with pytest.raises(ValueError):
        E.decode(b"\x07" + data[1:])


class Sink:
    def __init__(self):
        self.calls = []
        self.counts = {"mine": 3}

    def deliver(self, topic, frame):
        self.calls.append(("deliver", topic, frame))

    def remote_count(self, topic, origin, count):
        self.calls.append(("count", topic, origin, count))

    def forget(self, origin):
        self.calls.append(("forget", origin))

    def local_counts(self):
        return dict(self.counts)


def driver():
    d = RedisBackplane(Sink(), Settings(workers=1), "redis://127.0.0.1:1/0")
    d.running = True
    return d


def test_dispatch_skips_own_instance_counts_gaps_and_repeats():
    d = driver()
    other = "feedbeef:1:42"
    d.dispatch(E.encode(E.PUBLISH, INSTANCE_ID + ":2:7", 1, b"F", "t"))
    assert d.sink.calls == []                       # our instance: relayed locally
    d.dispatch(E.encode(E.PUBLISH, other, 1, b"F1", "t"))
    d.dispatch(E.encode(E.PUBLISH, other, 1, b"F1", "t"))   # a repeat
    d.dispatch(E.encode(E.BROADCAST, other, 4, b"F4"))      # 2 and 3 lost
    assert d.sink.calls == [("deliver", "t", b"F1"), ("deliver", None, b"F4")]
    assert d.dropped == 2
    d.dispatch(b"\x01garbage")                      # logged, ignored
    assert d.status()["state"] == "degraded" and d.status()["dropped"] == 2


def test_dispatch_counts_hello_answers():
    d = driver()
    other = "feedbeef:1:42"
    d.dispatch(E.encode(E.SUBS, other, 1, E.COUNT.pack(5), "t"))
    d.dispatch(E.encode(E.HELLO, other, 2))
    assert d.sink.calls == [("count", "t", "feedbeef:1", 5), ("forget", "feedbeef:1")]
    answer = E.decode(d.queue[-1])
    assert answer.kind == E.COUNTS and answer.dst == other
    assert json.loads(answer.payload) == {"mine": 3}
    d.dispatch(E.encode(E.COUNTS, other, 3, b'{"x": 2}', dst="someone:else:1"))
    d.dispatch(E.encode(E.COUNTS, other, 4, b'{"x": 2}', dst=d.origin))
    assert d.sink.calls[-1] == ("count", "x", "feedbeef:1", 2)
    d.dispatch(E.encode(E.COUNTS, other, 5, b'{"y": 1}'))     # to everyone
    assert d.sink.calls[-1] == ("count", "y", "feedbeef:1", 1)
    assert len(d.sink.calls) == 4


def test_reconnect_says_hello_with_its_counts():
    d = driver()
    d._connected()
    hello, counts = [E.decode(x) for x in d.queue]
    assert hello.kind == E.HELLO and counts.kind == E.COUNTS and counts.dst == ""
    assert json.loads(counts.payload) == {"mine": 3}


def test_pubsub_drops_while_offline_streams_keep():
    d = driver()
    d.offline = True
    d.publish("t", b"F")
    assert d.dropped == 1 and not d.queue
    s = RedisStreamsBackplane(Sink(), Settings(workers=1, buffer=2), "redis://127.0.0.1:1/0")
    s.running = True
    s.offline = True
    for _ in range(3):
        s.publish("t", b"F")
    assert len(s.queue) == 2 and s.dropped == 1     # beyond backplane_buffer


def test_file_locks(tmp_path):
    a, b = FileLocks(str(tmp_path)), FileLocks(str(tmp_path))
    t = a.claim("job", 30)
    assert t and b.claim("job", 30) is None
    assert not b.release("job", "wrong") and a.release("job", t)
    t2 = b.claim("job", 0.01)
    assert t2
    assert wait_for(lambda: a.claim("job", 30), 5)     # once it expired
    with pytest.raises(ValueError):
        a.claim("job", 0)
    with pytest.raises(TypeError):
        a.claim("", 1)


def test_health_without_a_running_backplane():
    assert backplane.health()["state"] == "ok"


def test_counts_of_a_silent_worker_expire():
    d = driver()
    other = "feedbeef:1:42"
    d.dispatch(E.encode(E.SUBS, other, 1, E.COUNT.pack(5), "t"))
    assert d.sink.calls == [("count", "t", "feedbeef:1", 5)]
    d.alive["feedbeef:1"] -= 4 * d.heartbeat + 1     # silent for 4 heartbeats
    d.swept -= d.heartbeat + 1
    d.dispatch(E.encode(E.ALIVE, INSTANCE_ID + ":1:1", 1))   # any message sweeps
    assert d.sink.calls[-1] == ("forget", "feedbeef:1") and other not in d.seen
    d.dispatch(E.encode(E.ALIVE, "cafe:2:7", 1))
    assert "cafe:2" in d.alive and len(d.sink.calls) == 2


def test_a_third_party_driver_through_the_entry_point_group(tmp_path, monkeypatch):
    (tmp_path / "kore_fake_nats.py").write_text(
        "from kore_websocket.backplane import LocalBackplane\n"
        "class NatsBackplane(LocalBackplane):\n"
        "    name = 'nats'\n")
    info = tmp_path / "kore_fake_nats-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kore-fake-nats\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[kore.websocket.backplane]\nnats = kore_fake_nats:NatsBackplane\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    from stevedore.extension import ExtensionManager
    monkeypatch.setattr(ExtensionManager, "ENTRY_POINT_CACHE", {})  # "installed" now
    assert "nats" in backplane.installed()
    bp = backplane.create("nats://127.0.0.1:4222", Sink(), Settings())
    assert bp.name == "nats" and bp.url == "nats://127.0.0.1:4222"


def test_a_degraded_backplane_is_degraded_in_readyz(monkeypatch):
    from kore_websocket import plugin

    class Down(Backplane):
        name = "redis"

        def status(self):
            return {"driver": "redis", "state": "degraded",
                    "last_error": "reader: Connection refused"}
    monkeypatch.setattr(backplane, "_CURRENT", [])
    assert plugin.kore_ready_degraded() is None             # no backplane yet
    monkeypatch.setattr(backplane, "_CURRENT", [LocalBackplane(Sink(), Settings())])
    assert plugin.kore_ready_degraded() is None
    monkeypatch.setattr(backplane, "_CURRENT", [Down(Sink())])
    assert plugin.kore_ready_degraded() == \
        "backplane redis degraded: reader: Connection refused"


def test_cron_claim_without_redis_runs_nowhere_and_local_runs_here(monkeypatch):
    """kore_cron_claim (kore-plugin-redis, in the master): a Redis backplane
    that cannot be reached skips the tick (False: never twice); the local
    backplane leaves it to this host (None)."""
    import datetime
    import socket
    from kore import runtime
    from kore_redis import plugin as redis_plugin

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    closed = s.getsockname()[1]         # bound, never listening: refused
    options = {"backplane": "redis://127.0.0.1:%d/0" % closed, "backplane_prefix": "kore"}
    monkeypatch.setattr(runtime, "option", lambda name: options[name])

    class Job:
        name = "tick"
    when = datetime.datetime(2026, 5, 4, 9, 0, tzinfo=datetime.timezone.utc)
    try:
        redis_plugin.kore_app_reset()
        assert redis_plugin.kore_cron_claim(Job(), when) is False
        options["backplane"] = "local"
        redis_plugin.kore_app_reset()
        assert redis_plugin.kore_cron_claim(Job(), when) is None
    finally:
        redis_plugin.kore_app_reset()
        s.close()

"""Two kore instances (2 workers each) behind nginx, sharing one real
redis-server through the ``redis`` and ``redis-streams`` backplanes."""

import asyncio
import json
import os
import signal
import time

import pytest
import websockets

from kore_testing import KoreServer
from backplane_services import HalfOpenRelay, Nginx, RedisServer, wait_for

APP = os.path.join(os.path.dirname(__file__), "apps", "bp_app.py")
pytestmark = pytest.mark.timeout(120)


def run(coro, timeout=90):
    return asyncio.run(asyncio.wait_for(coro, timeout))


class Cluster:
    """One redis-server, two instances of 2 workers, nginx in front.  Each
    instance is given the backplane another way: ``a`` with the
    ``--backplane`` flag, ``b`` from application code (``kore.config``);
    ``KORE_BACKPLANE`` is what the other tests of the folder use.  With
    ``relay`` the instances reach Redis through a ``HalfOpenRelay``; with
    ``metrics`` each serves ``/metrics`` (``metrics(host)``)."""

    def __init__(self, tmp, driver="redis", appendonly=False, relay=False, metrics=False,
                 **redis):
        self.redis = RedisServer(tmp, appendonly=appendonly, **redis)
        self.driver = driver
        self.hosts = []
        self.nginx = None
        self.relay = None
        try:
            url = self.redis.url
            if relay:
                self.relay = HalfOpenRelay(self.redis.port)
                url = url.replace(":%d/" % self.redis.port, ":%d/" % self.relay.port)
            spec = url if driver == "redis" else "%s+%s" % (driver, url)
            self.spec = spec
            extra = ["--metrics-bind", "127.0.0.1:0"] if metrics else []
            for name, args, env in (("a", ["--backplane", spec], {}),
                                    ("b", [], {"T_BACKPLANE": spec})):
                d = tmp / name
                d.mkdir()
                k = KoreServer(d, APP, workers=2, args=args + extra, env=env)
                self.hosts.append(k)
                k.wait_ready(2)
            self.nginx = Nginx(tmp, [h.port for h in self.hosts])
        except BaseException:
            self.close()       # what started before the failure is stopped too
            raise
        self.url = "ws://127.0.0.1:%d/ws" % self.nginx.port

    def metrics(self, host):
        """{(name, driver label): value} of the kore_backplane_* samples
        of ``host``'s master (its workers' sum)."""
        import re
        import httpx
        m = re.search(r"metrics on http://127\.0\.0\.1:(\d+)/metrics", host.log())
        assert m, host.log()
        text = httpx.get("http://127.0.0.1:%s/metrics" % m.group(1), timeout=10).text
        return {(n, d): float(v) for n, d, v in re.findall(
            r'^(kore_backplane_\w+)\{driver="([^"]*)"\} (\S+)$', text, re.M)}

    def close(self):
        if self.nginx is not None:
            self.nginx.stop()
        for h in self.hosts:
            h.cleanup()
        if self.relay is not None:
            self.relay.stop()
        self.redis.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = Cluster(tmp_path_factory.mktemp("bp"))
    yield c
    c.close()


async def connect_everywhere(url, per_place=1, limit=400, places=4):
    """Clients (through nginx) until each of the ``places`` (instance,
    worker) pairs has ``per_place``: {(instance, worker): [ws, ...]}.

    Which worker of an instance accepts is the kernel's choice, and on an
    idle machine one worker can win accept after accept; so clients connect
    in concurrent batches (several accepts pending at once spread over the
    workers) and the ones that land on a full place are closed again."""
    by, opened = {}, 0

    async def one():
        ws = await websockets.connect(url, max_size=None)
        await ws.send("where:")
        inst, wid = (await ws.recv()).split()
        return (inst, int(wid)), ws

    def done():
        return len(by) == places and all(len(v) == per_place for v in by.values())

    while not done() and opened < limit:
        batch = await asyncio.gather(*(one() for _ in range(8)))
        opened += len(batch)
        extra = []
        for place, ws in batch:
            if len(by.setdefault(place, [])) < per_place:
                by[place].append(ws)
            else:
                extra.append(ws)
        for ws in extra:
            await ws.close()
    assert done(), {k: len(v) for k, v in by.items()}
    return by


async def drain(ws, wait=0.5, want=0):
    """What ``ws`` receives: ``want`` messages however long they take (up
    to 20 s, a loaded machine), then anything more within ``wait`` s."""
    got = []
    try:
        while len(got) < want:
            got.append(await asyncio.wait_for(ws.recv(), 20))
        while True:
            got.append(await asyncio.wait_for(ws.recv(), wait))
    except asyncio.TimeoutError:
        return got


async def ask(ws, cmd):
    """Send a command, its answer (skipping the end of earlier bursts)."""
    await ws.send(cmd)
    while True:
        m = await asyncio.wait_for(ws.recv(), 10)
        if m != "burst done":
            return m


async def wait_connected(ws, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        st = json.loads(await ask(ws, "status:"))
        if st["state"] == "ok":
            return st
        await asyncio.sleep(0.05)
    raise AssertionError("backplane not connected: %r" % st)


async def close_all(by):
    for v in by.values():
        for ws in v:
            await ws.close()


def broadcast_once(c):
    """A GLOBAL broadcast from a client of each host: every other client of
    both hosts (2 per worker) gets it once, the sender never."""
    async def go():
        by = await connect_everywhere(c.url, per_place=2)
        everyone = [ws for v in by.values() for ws in v]
        for ws in everyone:
            st = await wait_connected(ws)
            # the flag (host a) and kore.config (host b) both chose the driver
            assert st["driver"] == c.driver and st["instance"] == (
                await ask(ws, "where:")).split()[0]
        senders = {}
        for (instance, _worker), v in by.items():
            senders.setdefault(instance, v[0])      # one client of each host
        assert len(senders) == 2
        for sender in senders.values():
            await sender.send("bcast-global:G")
            for ws in everyone:
                if ws is not sender:
                    assert await drain(ws, 0.3, want=1) == ["G"]
            assert await drain(sender, 0.3) == []
        await close_all(by)
    run(go())


def test_global_broadcast_every_other_client_on_both_hosts_once(cluster):
    broadcast_once(cluster)


def test_publish_every_subscriber_on_both_hosts_once_and_counts(cluster):
    async def go():
        by = await connect_everywhere(cluster.url)
        subs = [v[0] for v in by.values()]
        for ws in subs:
            assert await ask(ws, "sub:news") == "subscribed news"
        other = await websockets.connect(cluster.url)   # not subscribed

        async def count_is(ws, n):
            for _ in range(100):
                if int(await ask(ws, "count:news")) == n:
                    return True
                await asyncio.sleep(0.05)
            return False
        for ws in subs:
            assert await count_is(ws, 4)        # subscribers of both hosts
        await subs[0].send("pub:news:hello")
        for ws in subs:
            assert await drain(ws, 0.3, want=1) == ["hello"]
        assert await drain(other, 0.2) == []
        await other.close()
        await close_all(by)
    run(go())


def test_order_of_10000_messages_from_one_publisher(cluster):
    async def go():
        by = await connect_everywhere(cluster.url)
        subs = [v[0] for v in by.values()]
        for ws in subs:
            await ask(ws, "sub:seq")
        pub = subs[0]
        n = 10000
        first = 0
        while first < n:
            await pub.send("burst:seq:%d:1000" % first)
            first += 1000

        async def collect(ws):
            got = []
            while len(got) < n:
                m = await asyncio.wait_for(ws.recv(), 30)
                if m != "burst done":
                    got.append(int(m))
            return got
        for ws in subs:
            assert await collect(ws) == list(range(n))
        for ws in subs:
            assert [m for m in await drain(ws, 0.3) if m != "burst done"] == []
        await close_all(by)
    run(go(), timeout=110)


def test_message_size_limit(cluster):
    async def go():
        ws = await websockets.connect(cluster.url, max_size=None)
        assert (await ask(ws, "big:2000000")).startswith("ValueError: message of")
        assert await ask(ws, "big:1000") == "sent"
        await ws.close()
    run(go())


def test_a_bad_url_stops_start_up_naming_the_option(tmp_path):
    k = KoreServer(tmp_path, APP, workers=1, args=["--backplane", "redis://:x@[bad"],
                   wait=False)
    assert k.proc.wait(30) == 2
    assert "option 'backplane'" in k.log()
    k2 = KoreServer(tmp_path, APP, workers=1, env={"KORE_BACKPLANE": "nats://127.0.0.1:1"},
                    wait=False)
    assert k2.proc.wait(30) == 2
    log = k2.log()
    assert "unknown websocket backplane driver 'nats'" in log
    assert "local" in log and "redis-streams" in log


NATS_DRIVER = """
from kore import ConfigError
from kore_websocket.backplane import LocalBackplane


class NatsBackplane(LocalBackplane):
    name = "nats"

    @staticmethod
    def check_url(url):
        if not url or not url.startswith("nats://"):
            raise ConfigError("option 'backplane': the nats driver needs nats://host:port")

    def status(self):
        return {"driver": self.name, "state": "ok", "url": self.url}
"""


def test_a_third_party_driver_is_found_through_the_entry_point_group(tmp_path):
    """A distribution that only declares an entry point in
    kore.websocket.backplane (as docs/writing-plugins.md shows) is loaded
    by korectl: by the URL's scheme, its check_url run at start-up."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "kore_backplane_nats.py").write_text(NATS_DRIVER)
    info = site / "kore_backplane_nats-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: kore-backplane-nats\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[kore.websocket.backplane]\nnats = kore_backplane_nats:NatsBackplane\n")
    env = {"PYTHONPATH": os.pathsep.join(
        [str(site)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))}
    bad = KoreServer(tmp_path, APP, workers=1, args=["--backplane", "nats"], env=env,
                     wait=False)
    assert bad.proc.wait(30) == 2
    assert "the nats driver needs nats://host:port" in bad.log()
    k = KoreServer(tmp_path, APP, workers=1, args=["--backplane", "nats://127.0.0.1:4222"],
                   env=env)
    try:
        k.wait_ready(1)

        async def go():
            ws = await websockets.connect("ws://127.0.0.1:%d/ws" % k.port)
            st = json.loads(await ask(ws, "status:"))
            await ws.close()
            return st
        assert run(go()) == {"driver": "nats", "state": "ok", "url": "nats://127.0.0.1:4222"}
    finally:
        k.cleanup()


def test_lock_across_hosts_one_holder(cluster):
    async def go():
        by = await connect_everywhere(cluster.url)
        answers = []
        for ws in (v[0] for v in by.values()):
            answers.append(await ask(ws, "claim:tick-1:5"))
        won = [a for a in answers if a != "claim None"]
        assert len(won) == 1, answers
        token = won[0].split()[1]
        anyone = next(iter(by.values()))[0]
        assert await ask(anyone, "release:tick-1:wrong") == "release False"
        assert await ask(anyone, "release:tick-1:%s" % token) == "release True"
        assert (await ask(anyone, "claim:tick-1:5")) != "claim None"
        await close_all(by)
    run(go())

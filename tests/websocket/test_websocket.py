"""kore-plugin-websocket against real korectl servers and real clients (the
``websockets`` package, and a raw client for bad frames)."""

import asyncio
import os
import signal
import struct
import time

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from ws_raw import RawWS, frame, start_server

APPS = os.path.join(os.path.dirname(__file__), "apps")
APP = os.path.join(APPS, "ws_app.py")

pytestmark = pytest.mark.timeout(60)


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory, APP, workers=1)
    yield s
    s.cleanup()


@pytest.fixture(scope="module")
def srv2(tmp_path_factory):
    s = start_server(tmp_path_factory, APP, workers=2, name="ws2")
    s.wait_ready(2)
    yield s
    s.cleanup()


def url(s, path="/ws"):
    return "ws://127.0.0.1:%d%s" % (s.port, path)


async def close_code(ws):
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 5)
    except ConnectionClosed as exc:
        return exc.rcvd.code if exc.rcvd else None


# ---------------------------------------------------------------------------
# handshake and callbacks
# ---------------------------------------------------------------------------

def test_echo_text_is_str_binary_is_bytes(srv):
    async def go():
        async with websockets.connect(url(srv)) as ws:
            assert await ws.recv() == "hello 1"
            await ws.send("echo:héllo")
            assert await ws.recv() == "héllo"
            await ws.send("type:x")
            assert await ws.recv() == "str"
            await ws.send(b"\x00\x01bin")
            assert await ws.recv() == b"\x00\x01bin"
            await ws.send(["frag", "mented ", "tëxt"])      # fragmented message
            assert await ws.recv() == "fragmented tëxt"
            await ws.send("big:200000")
            assert await ws.recv() == b"x" * 200000
    run(go())


def test_callbacks_by_name_and_coroutines(srv):
    async def go():
        async with websockets.connect(url(srv, "/ws-names")) as ws:
            assert await ws.recv() == "hello 1"
            await ws.send("echo:named")
            assert await ws.recv() == "named"
        async with websockets.connect(url(srv, "/ws-async")) as ws:
            assert await ws.recv() == "async hello"
            await ws.send("a")
            assert await ws.recv() == "a"
    run(go())


@pytest.mark.parametrize("headers", [
    {"Sec-WebSocket-Key": None},
    {"Sec-WebSocket-Key": "c2hvcnQ="},                   # not 16 bytes
    {"Sec-WebSocket-Key": "!!notbase64!!"},
    {"Sec-WebSocket-Version": "12"},
    {"Sec-WebSocket-Version": None},
    {"Upgrade": None},
    {"Upgrade": "h2c"},
    {"Connection": "keep-alive"},
])
def test_bad_handshake_400_and_no_callback(kore_server, headers):
    s = kore_server(APP)
    c = RawWS(s.port, headers=headers)
    assert c.status == 400, c.head
    if headers.get("Sec-WebSocket-Version") == "12":
        assert "sec-websocket-version: 13" in c.head.lower()
    c.close()
    c = RawWS(s.port)                     # a good one afterwards works
    assert c.status == 101
    assert c.recv_data() == (1, b"hello 1")
    c.close()
    assert s.log().count("ws-connect") == 1


def test_accept_header(srv):
    c = RawWS(srv.port, headers={"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
    assert c.status == 101
    assert "sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=" in c.head.lower()
    c.close()


def test_callback_exceptions_close_1011_worker_lives(kore_server):
    s = kore_server(APP)
    s.wait_ready(1)
    pids = s.children()

    async def go():
        async with websockets.connect(url(s)) as ws:
            await ws.recv()
            await ws.send("boom:x")
            assert await close_code(ws) == 1011
        async with websockets.connect(url(s, "/ws-connect-raise")) as ws:
            assert await close_code(ws) == 1011
        async with websockets.connect(url(s, "/ws-async")) as ws:
            await ws.recv()
            await ws.send("boom")
            assert await close_code(ws) == 1011
        async with websockets.connect(url(s)) as ws:
            assert await ws.recv() == "hello 1"
    run(go())
    log = s.log()
    assert "boom in onmsg" in log and "boom in onconnect" in log
    assert "boom in async onmsg" in log and "Traceback" in log
    assert s.children() == pids
    # ondisconnect ran for every connection whose onconnect ran
    assert s.wait_log("ws-disconnect", 5)


def test_disconnect_closes_1000_and_ondisconnect(srv):
    async def go():
        async with websockets.connect(url(srv)) as ws:
            await ws.recv()
            await ws.send("close:")
            assert await close_code(ws) == 1000
    before = srv.log().count("ws-disconnect")
    run(go())
    deadline = time.monotonic() + 5
    while srv.log().count("ws-disconnect") == before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.log().count("ws-disconnect") == before + 1


# ---------------------------------------------------------------------------
# protocol (raw frames)
# ---------------------------------------------------------------------------

def test_fragments_with_ping_between_and_pong(srv):
    c = RawWS(srv.port)
    assert c.recv_data() == (1, b"hello 1")
    c.send(frame(9, b"ping-1"))
    assert c.recv_frame()[2:] == (10, b"ping-1")
    c.send(frame(1, b"echo:ab", fin=False) + frame(9, b"mid") + frame(0, b"cd", fin=False)
           + frame(0, b"ef"))
    assert c.recv_frame()[2:] == (10, b"mid")
    assert c.recv_data() == (1, b"abcdef")
    c.send(frame(8, struct.pack("!H", 1000) + b"bye"))
    assert c.expect_close() == 1000
    assert c.closed()


@pytest.mark.parametrize("data, code", [
    (frame(1, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"), 1007),
    (frame(1, b"ok \xf0\x90", fin=False) + frame(0, b"\x80\x28"), 1007),
    (frame(0, b"stray continuation"), 1002),
    (frame(1, b"a", fin=False) + frame(1, b"b"), 1002),
    (frame(3, b"reserved op"), 1002),
    (frame(1, b"rsv", rsv=0x20), 1002),
    (frame(2, b"unmasked", mask=False), 1002),
    (frame(9, b"x" * 126), 1002),
    (frame(9, b"frag", fin=False), 1002),
    (frame(8, b"\x03"), 1002),                               # 1-byte close payload
    (frame(8, struct.pack("!H", 1005)), 1002),               # reserved code
    (frame(8, struct.pack("!H", 2999)), 1002),
    (frame(8, struct.pack("!H", 1000) + b"\xff"), 1007),     # reason not UTF-8
    (frame(8, struct.pack("!H", 4000)), 4000),               # echoed
    (frame(8, b""), None),
], ids=["bad-utf8", "bad-utf8-across-fragments", "stray-continuation", "text-inside-text",
        "reserved-opcode", "rsv-bit", "unmasked", "long-ping", "fragmented-ping",
        "one-byte-close", "close-1005", "close-2999", "close-reason-not-utf8",
        "close-4000-echoed", "empty-close"])
def test_close_codes(srv, data, code):
    c = RawWS(srv.port)
    c.recv_data()
    c.send(data)
    assert c.expect_close() == code
    assert c.closed()


def test_maxframe_1009(tmp_path_factory):
    s = start_server(tmp_path_factory, APP, env={"KORE_WEBSOCKET_MAXFRAME": "1024"},
                     name="maxframe")
    try:
        c = RawWS(s.port)
        c.recv_data()
        c.send(frame(2, b"x" * 1024))
        assert c.recv_data() == (2, b"x" * 1024)
        c.send(frame(2, b"x" * 1025))
        assert c.expect_close() == 1009
        c = RawWS(s.port)
        c.recv_data()
        # fragments of allowed frames that add up to more than the limit
        c.send(frame(2, b"x" * 600, fin=False) + frame(0, b"x" * 600))
        assert c.expect_close() == 1009
    finally:
        s.cleanup()


def test_timeout_pings_then_closes_idle(tmp_path_factory):
    s = start_server(tmp_path_factory, APP, env={"KORE_WEBSOCKET_TIMEOUT": "2"},
                     name="timeout")
    try:
        c = RawWS(s.port, timeout=6)
        t0 = time.monotonic()
        c.recv_data()
        fin, rsv, op, payload = c.recv_frame()
        assert op == 9 and 0.7 < time.monotonic() - t0 < 2.5     # ping after ~1 s
        assert c.expect_close() == 1001                          # silent: closed at ~2 s
        assert 1.5 < time.monotonic() - t0 < 4.5

        async def alive():          # a client that answers pings stays
            async with websockets.connect(url(s), ping_interval=None) as ws:
                await ws.recv()
                await asyncio.sleep(4.5)
                await ws.send("echo:still here")
                assert await ws.recv() == "still here"
        run(alive())
    finally:
        s.cleanup()


def test_permessage_deflate(srv):
    async def go():
        async with websockets.connect(url(srv)) as ws:
            ext = ws.response.headers.get("Sec-WebSocket-Extensions", "")
            assert "permessage-deflate" in ext
            await ws.recv()
            text = "compress me " * 1300      # under websocket_maxframe (16384)
            await ws.send("echo:" + text)
            assert await ws.recv() == text
            await ws.send(b"\x00" * 16384)
            assert await ws.recv() == b"\x00" * 16384
            await ws.send(b"\x00" * 16385)      # a few bytes on the wire, too big inflated
            assert await close_code(ws) == 1009
        async with websockets.connect(url(srv), compression=None) as ws:
            assert "Sec-WebSocket-Extensions" not in ws.response.headers
            await ws.recv()
            await ws.send("echo:plain")
            assert await ws.recv() == "plain"
    run(go())


def test_deflate_negotiation_raw(srv):
    c = RawWS(srv.port, headers={"Sec-WebSocket-Extensions":
                                 "x-unknown, permessage-deflate; foo=1, "
                                 "permessage-deflate; server_max_window_bits=10; "
                                 "client_no_context_takeover"})
    assert c.status == 101
    assert ("sec-websocket-extensions: permessage-deflate; client_no_context_takeover; "
            "server_max_window_bits=10") in c.head.lower()
    c.close()


# ---------------------------------------------------------------------------
# broadcast and topics across workers
# ---------------------------------------------------------------------------

async def clients_on_both_workers(s, per_worker=2, path="/ws"):
    """Connect until ``per_worker`` clients sit on each of the 2 workers."""
    by = {1: [], 2: []}
    extra = []
    for _ in range(10):
        if all(len(v) >= per_worker for v in by.values()):
            break
        conns = await asyncio.gather(*[websockets.connect(url(s, path)) for _ in range(6)])
        for ws in conns:
            wid = int((await ws.recv()).split()[1])
            (by[wid] if len(by[wid]) < per_worker else extra).append(ws)
    for ws in extra:
        await ws.close()
    assert all(len(v) >= per_worker for v in by.values()), "could not reach both workers"
    return by


async def drain(ws, wait=0.4):
    got = []
    try:
        while True:
            got.append(await asyncio.wait_for(ws.recv(), wait))
    except asyncio.TimeoutError:
        return got


def test_broadcast_local_and_global_exactly_once(srv2):
    async def go():
        by = await clients_on_both_workers(srv2)
        a1, a2 = by[1]
        b1, b2 = by[2]
        everyone = [a1, a2, b1, b2]

        await a1.send("bcast-local:L")
        assert await drain(a1) == []
        assert await drain(a2) == ["L"]
        assert await drain(b1) == [] and await drain(b2) == []

        await a1.send("bcast-global:G")
        assert await drain(a1) == []
        for ws in (a2, b1, b2):
            assert await drain(ws) == ["G"]

        await b2.send("bcast-all:E")                   # src=None: the sender too
        for ws in everyone:
            assert await drain(ws) == ["E"]
        for ws in everyone:
            await ws.close()
    run(go())


def test_topics_across_workers(srv2):
    async def go():
        by = await clients_on_both_workers(srv2, per_worker=1)
        a, b = by[1][0], by[2][0]
        for ws in (a, b):
            await ws.send("sub:news")
            assert await ws.recv() == "subscribed news True"

        async def count(ws, want):
            for _ in range(50):
                await ws.send("count:news")
                n = int(await ws.recv())
                if n == want:
                    return n
                await asyncio.sleep(0.05)
            return n
        assert await count(a, 2) == 2 and await count(b, 2) == 2

        await a.send("pub:news:hello topic")
        assert await drain(a) == ["hello topic"]
        assert await drain(b) == ["hello topic"]
        await a.send("pub:other:nobody")
        assert await drain(a) == [] and await drain(b) == []

        await b.send("unsub:news")
        assert await b.recv() == "unsubscribed news False"
        assert await count(a, 1) == 1
        await a.send("pub:news:again")
        assert await drain(a) == ["again"] and await drain(b) == []

        await a.close()                  # a disconnect unsubscribes
        await b.send("sub:news")
        await b.recv()
        assert await count(b, 1) == 1
        await b.close()
    run(go())


def test_slow_client_does_not_hold_back_fanout_and_keeps_order(srv):
    """A subscriber that reads nothing: once its socket buffers are full,
    publishes and broadcasts queue for it, the others get every message at
    once, and the slow one later gets all of them intact and in order, with
    a direct send behind them."""
    n, pad = 700, "y" * 12000          # 8.4 MB: more than both socket buffers hold
    slow = RawWS(srv.port)
    assert slow.recv_data() == (1, b"hello 1")
    slow.send(frame(1, b"sub:fan"))
    assert slow.recv_data() == (1, b"subscribed fan True")
    want = ["%05d:%s" % (i, pad) for i in range(n)]

    async def go():
        async with websockets.connect(url(srv)) as ws:
            assert (await ws.recv()).startswith("hello ")
            await ws.send("sub:fan")
            assert await ws.recv() == "subscribed fan True"
            t0 = time.monotonic()
            for i, m in enumerate(want):
                # topics and broadcasts share the per-connection queue
                await ws.send(("pub:fan:" if i % 2 else "bcast-all:") + m)
                assert await asyncio.wait_for(ws.recv(), 5) == m
            return time.monotonic() - t0
    assert run(go(), 40) < 20
    slow.send(frame(1, b"echo:last"))          # queued behind the fan-out
    for m in want:
        assert slow.recv_data() == (1, m.encode())
    assert slow.recv_data() == (1, b"last")
    slow.close()


def test_term_closes_websockets_1001(kore_server):
    s = kore_server(APP, workers=1)

    async def go():
        async with websockets.connect(url(s)) as ws:
            await ws.recv()
            t0 = time.monotonic()
            s.send_signal(signal.SIGTERM)
            assert await close_code(ws) == 1001
            return time.monotonic() - t0
    elapsed = run(go())
    assert elapsed < 10     # at once, not after the 30 s graceful timeout
    assert s.proc.wait(10) == 0

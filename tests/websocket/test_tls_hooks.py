"""Websockets over TLS (the TLS read loop: messages, fragments, deflate,
protocol errors, the idle timeout) and the kore_websocket_connect /
kore_websocket_disconnect hooks, against one real korectl server."""

import asyncio
import os
import ssl
import struct
import subprocess
import time

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from kore_testing import KoreServer, wait_for
from ws_raw import RawWS, frame

APP = os.path.join(os.path.dirname(__file__), "apps", "ws_tls_app.py")

pytestmark = pytest.mark.timeout(60)


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    d = tmp_path_factory.mktemp("wss")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    "key.pem", "-out", "cert.pem", "-days", "2", "-subj", "/CN=localhost"],
                   cwd=d, check=True, capture_output=True, timeout=60)
    s = KoreServer(d, APP, bind=False, wait=False,
                   env={"PORT": "0", "CERT": str(d / "cert.pem"),
                        "KEY": str(d / "key.pem"), "KORE_WEBSOCKET_TIMEOUT": "2"})
    try:
        s.port = s.listen_port("default")
        yield s
    finally:
        s.cleanup()


def run(coro, timeout=30):
    return asyncio.run(asyncio.wait_for(coro, timeout))


def url(s):
    return "wss://127.0.0.1:%d/ws" % s.port


def test_wss_messages_fragments_and_deflate(srv):
    async def go():
        async with websockets.connect(url(srv), ssl=client_context()) as ws:
            assert "permessage-deflate" in ws.response.headers.get(
                "Sec-WebSocket-Extensions", "")
            assert await ws.recv() == "hello 127.0.0.1"
            await ws.send("héllo")
            assert await ws.recv() == "héllo"
            await ws.send(b"\x00\x01bin")
            assert await ws.recv() == b"\x00\x01bin"
            await ws.send(["frag", "mented ", "tëxt"])
            assert await ws.recv() == "fragmented tëxt"
            text = "compress me " * 1300
            await ws.send(text)
            assert await ws.recv() == text
            await ws.send("big:200000")          # more than one TLS record and read
            assert await ws.recv() == b"x" * 200000
            await ws.send("x509")
            assert await ws.recv() == "None"     # no client certificate
            await ws.send("close")
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except ConnectionClosed as exc:
                return exc.rcvd.code
    assert run(go()) == 1000


def test_wss_protocol_error_and_close_echo(srv):
    c = RawWS(srv.port, ssl_context=client_context())
    assert c.status == 101
    assert c.recv_data() == (1, b"hello 127.0.0.1")
    c.send(frame(1, b"ab", fin=False) + frame(9, b"mid") + frame(0, b"\xce", fin=False)
           + frame(0, b"\xba"))                  # a UTF-8 sequence split over fragments
    assert c.recv_frame()[2:] == (10, b"mid")
    assert c.recv_data() == (1, "abκ".encode())
    c.send(frame(1, b"\xff"))
    assert c.expect_close() == 1007
    assert c.closed()
    c = RawWS(srv.port, ssl_context=client_context())
    c.recv_data()
    c.send(frame(8, struct.pack("!H", 4001)))
    assert c.expect_close() == 4001
    assert c.closed()


def test_wss_idle_ping_then_1001(srv):
    c = RawWS(srv.port, ssl_context=client_context(), timeout=6)
    t0 = time.monotonic()
    c.recv_data()
    fin, rsv, op, payload = c.recv_frame()
    assert op == 9 and 0.7 < time.monotonic() - t0 < 2.5     # ping after ~1 s
    assert c.expect_close() == 1001                          # silent: closed at ~2 s
    assert 1.5 < time.monotonic() - t0 < 4.5


EVENTS = ("hook-connect", "ws-connect", "ws-disconnect", "hook-disconnect")


def events(s):
    return [next(k for k in EVENTS if k in ln) for ln in s.log().splitlines()
            if any(k in ln for k in EVENTS)]


def test_hooks_around_the_callbacks(srv):
    """Per connection: the connect hook, onconnect, ..., ondisconnect, the
    disconnect hook (sending is over by then); the disconnect hook raises:
    reported, and the worker serves the next client."""
    async def go():
        async with websockets.connect(url(srv), ssl=client_context()) as ws:
            await ws.recv()
            await ws.send("close")
            try:
                await asyncio.wait_for(ws.recv(), 5)
            except ConnectionClosed:
                pass
        async with websockets.connect(url(srv), ssl=client_context()) as ws:
            assert await ws.recv() == "hello 127.0.0.1"
    # the other tests' connections have ended
    assert wait_for(lambda: events(srv).count("hook-connect")
                    == events(srv).count("hook-disconnect"), 10), events(srv)
    before = len(events(srv))
    run(go())
    assert wait_for(lambda: len(events(srv)) >= before + 8, 10), events(srv)
    assert events(srv)[before:] == list(EVENTS) * 2
    log = srv.log()
    assert "sent=False" in log and "sent=True" not in log
    assert log.count("boom in the disconnect hook") >= 2
    assert "kore_websocket_disconnect hook" in log

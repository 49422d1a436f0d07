"""socketify's res.pause() / res.resume() and write offsets, and
http_request_ms: a connection with many pipelined requests lets the others
have a turn.  Pausing, write offsets and cancellation after resume also over
HTTP/2 (h2c)."""

import json
import os
import socket
import threading
import time

import pytest

from kh_proto import H2C_ENV, H2Client, Session, http1_only, raw
from kh_util import Conn, Response, start_module_server, wait_for
from kore_testing import file_text

pytestmark = pytest.mark.timeout(60)

APP = """
import time
import gevent
import kore


@kore.route("/", methods=["get"])
def index(req):
    req.response(200, b"index")


@kore.route("/busy", methods=["get"])
def busy(req):
    end = time.perf_counter() + 0.002
    while time.perf_counter() < end:
        pass
    req.response(200, b"busy")


def _pausing_chunk(req, data):
    st = req.__dict__.setdefault("st", {"chunks": 0, "size": 0})
    st["chunks"] += 1
    st["size"] += len(data)
    if st["chunks"] == 1:
        req.pause()
        st["paused"] = req.paused
        if req.get_header("x-paused-marker"):
            open(req.get_header("x-paused-marker"), "w").close()
        t0 = time.monotonic()

        def later():
            st["paused_for"] = round(time.monotonic() - t0, 2)
            req.resume()
        gevent.spawn_later(float(req.get_header("x-pause")), later)
    return True


@kore.route("/upload", methods=["post"], hooks={"on_body_chunk": _pausing_chunk})
def upload(req):
    st = req.st
    req.send({"size": st["size"], "paused": st["paused"],
              "paused_for": st["paused_for"], "now": req.paused})


@kore.route("/offset", methods=["get"])
def offset(req):
    out = []
    req.write("abc")
    out.append(req.get_write_offset())
    req.write(b"de")
    out.append(req.get_write_offset())
    req.write_offset(100)
    out.append(req.get_write_offset())
    try:
        req.write_offset(-1)
    except ValueError:
        out.append("ValueError")
    req.end(" " + ",".join(map(str, out)))


@kore.route("/offset-send", methods=["get"])
def offset_send(req):
    before = req.get_write_offset()
    req.send("hello")
    req.response_header  # still a request object
    with open(req.get_query("out"), "w") as f:
        f.write("%d %d" % (before, req.get_write_offset()))


@kore.route("/paused-hang", methods=["get"])
async def paused_hang(req):
    marker = req.get_query("marker")
    req.pause()
    open(marker + ".paused", "w").close()
    try:
        await kore.suspend(800)          # the client leaves meanwhile
        with open(marker + ".after-pause", "w") as f:
            f.write("not cancelled while paused")
        req.resume()
        await kore.suspend(30000)
        req.response(200, b"done")
    finally:
        with open(marker, "w") as f:
            f.write("finally")
"""


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_module_server(tmp_path_factory, APP,
                            env=dict(H2C_ENV, KORE_HTTP_BODY_TIMEOUT="1",
                                     KORE_HTTP_REQUEST_MS="10"))
    yield s
    s.cleanup()


def test_pause_holds_body_reading_without_timing_out(srv, proto, tmp_path):
    body = b"x" * 3000
    paused = tmp_path / "paused"
    if proto == "h1":
        c = Conn(srv.port)
        c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nX-Pause: 1.6\r\nX-Paused-Marker: %s\r\n"
               b"Content-Length: %d\r\n\r\n" % (str(paused).encode(), len(body)) + body[:1000])
        # the first chunk paused the request: the rest arrives while paused
        assert wait_for(paused.exists, 5)
        c.send(body[1000:])
        t0 = time.monotonic()
        r = c.read_response()
    else:
        s = Session(srv.port, proto)
        h = s.conn
        sid = h.request("/upload", "POST", headers=[("x-pause", "1.6"),
                                                      ("x-paused-marker", str(paused)),
                                                      ("content-length", "3000")], end=False)
        h.send_body(sid, body[:1000], end=False)
        assert wait_for(paused.exists, 5)
        h.send_body(sid, body[1000:], end=True)
        t0 = time.monotonic()
        status, hs, data = h.response(sid)
        r = Response(status, "", list(hs.items()), data, b"")
    took = time.monotonic() - t0
    assert r.status == 200, r        # the 1 s body timeout did not count the pause
    got = json.loads(r.body)
    assert got == {"size": 3000, "paused": True, "paused_for": got["paused_for"],
                   "now": False}
    # paused as long as asked (1.6 s); the upper bound only catches a hang
    assert 1.5 <= got["paused_for"] < 6 and took > 1.0
    # the connection goes on
    if proto == "h1":
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.read_response().body == b"index"
    else:
        assert s.send("GET", "/").body == b"index"
        s.close()


def test_body_timeout_still_applies_after_resume(srv, proto):
    if proto == "h1":
        c = Conn(srv.port)
        c.send(b"POST /upload HTTP/1.1\r\nHost: x\r\nX-Pause: 0.2\r\nContent-Length: 10\r\n\r\nab")
        r = c.read_response()
    else:
        c = Session(srv.port, proto)
        r = c.send("POST", "/upload", [("X-Pause", "0.2"), ("Content-Length", "10")],
                   body=b"ab", length=False, end=False)
    assert r.status == 408
    if proto == "h1":
        assert c.closed()
    else:                   # the stream only: the connection serves the next one
        assert c.send("GET", "/").body == b"index"
        c.close()


def test_write_offset(srv, proto):
    r = raw(srv.port, proto, "GET", "/offset")
    assert r.status == 200
    if proto == "h1":
        assert r.header("transfer-encoding") == "chunked"
    assert r.body == b"abcde 3,5,100,ValueError"


def test_write_offset_after_send(srv, tmp_path, proto):
    out = tmp_path / "off"
    r = raw(srv.port, proto, "GET", "/offset-send?out=%s" % out)
    assert r.body == b"hello"
    # the handler writes the file after its response: wait for its content
    assert wait_for(lambda: out.exists() and out.read_text() != "", 5)
    assert out.read_text() == "0 5"


def test_paused_request_is_not_cancelled_until_resumed(srv, tmp_path, proto):
    marker = str(tmp_path / "m")
    if proto == "h1":
        c = Conn(srv.port)
        c.send(b"GET /paused-hang?marker=%s HTTP/1.1\r\nHost: x\r\n\r\n" % marker.encode())
    else:
        c = H2Client(srv.port)
        sid = c.request("/paused-hang?marker=%s" % marker)
    assert wait_for(lambda: os.path.exists(marker + ".paused"), 5)    # paused now
    if proto == "h1":
        c.sock.shutdown(socket.SHUT_WR)
        c.close()
    else:                   # RST_STREAM(CANCEL) while paused
        c.reset(sid, 8)
    assert wait_for(lambda: os.path.exists(marker + ".after-pause"), 5)
    # resumed: the disconnect is seen and the handler cancelled
    assert wait_for(lambda: file_text(marker) == "finally", 5), (file_text(marker), srv.log())
    if proto != "h1":
        c.close()


@http1_only
def test_pipelined_flood_leaves_room_for_others(srv):
    """500 pipelined 2 ms requests on one connection (1 s of work): another
    client is answered within a few http_request_ms slices, not after the
    whole batch."""
    flood = Conn(srv.port, timeout=30)
    n = 500
    got = {}

    def reader():
        data = b""
        while data.count(b"busy") < n:
            chunk = flood.sock.recv(65536)
            if not chunk:
                break
            data += chunk
            got["answers"] = data.count(b"busy")
        got["flood_done"] = time.monotonic()

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    flood.send(b"GET /busy HTTP/1.1\r\nHost: x\r\n\r\n" * n)
    # the worker is busy with the batch
    assert wait_for(lambda: got.get("answers", 0) >= 10, 10, step=0.005)
    t0 = time.monotonic()
    other = Conn(srv.port)
    other.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    r = other.read_response()
    answered = time.monotonic()
    other.close()
    assert r.body == b"index"
    th.join(30)
    assert "flood_done" in got
    assert answered - t0 < 1.0, answered - t0     # ~0.04 s on an idle machine
    assert answered < got["flood_done"] - 0.3      # well before the batch ended
    flood.close()


def test_upload_throttle_example(kore_server):
    from kore_testing import ROOT
    import httpx
    srv = kore_server(os.path.join(ROOT, "examples", "upload-throttle", "app.py"))
    body = os.urandom(400000)                    # 0.4 s at the example's 1 MB/s
    t0 = time.monotonic()
    r = httpx.post(srv.url + "/upload", content=body, timeout=20)
    took = time.monotonic() - t0
    assert r.status_code == 200 and r.json() == {"received": len(body)}
    assert took >= 0.3, took

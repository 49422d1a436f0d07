"""Concurrency and flow control: many large streams on one connection, the
client's default 65,535-byte window, big uploads, frame sizes, a client that
stops reading, and RST_STREAM cancelling one handler only."""

import hashlib
import os
import re
import subprocess
import time

import httpx
import pytest

from h2client import H2Client
from kore_testing import wait_for

pytestmark = pytest.mark.timeout(120)
MIB = 1 << 20


def h2load(*args):
    r = subprocess.run(["h2load"] + list(args), capture_output=True, text=True, timeout=90)
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored", r.stdout)
    assert m, r.stdout + r.stderr
    return [int(x) for x in m.groups()], r.stdout


@pytest.mark.parametrize("tls", [False, True])
def test_100_concurrent_1mib_responses_on_one_connection(h2srv, tls):
    url = (h2srv.tls_url if tls else h2srv.url) + "/big?mib=1"
    (total, started, done, ok, failed, errored), out = h2load("-n", "100", "-c", "1",
                                                               "-m", "100", url)
    assert (total, done, ok, failed, errored) == (100, 100, 100, 0, 0), out
    assert "100 2xx" in out
    m = re.search(r"traffic: ([\d.]+)MB", out)
    assert m and float(m.group(1)) >= 100.0, out


@pytest.mark.parametrize("path", ["/big?mib=16", "/big-stream?mib=16"])
def test_16mib_response_with_the_default_window(h2srv, path):
    c = H2Client(h2srv.port)          # SETTINGS_INITIAL_WINDOW_SIZE left at 65,535
    sid = c.request(path)
    status, hs, body = c.response(sid, timeout=60)
    assert status == 200 and len(body) == 16 * MIB
    assert body[:16] == b"0123456789abcdef" and body[-16:] == b"0123456789abcdef"
    assert max(n for _, n in c.data_frames) <= 16384
    c.close()


def test_nghttp_16mib_with_a_64k_window(h2srv):
    r = subprocess.run(["nghttp", "-w", "16", "-W", "16", h2srv.tls_url + "/big?mib=16"],
                       capture_output=True, timeout=60)
    assert r.returncode == 0 and len(r.stdout) == 16 * MIB


@pytest.mark.parametrize("tls", [False, True])
def test_8mib_post(h2srv, tls):
    body = os.urandom(8 * MIB)
    base = h2srv.tls_url if tls else h2srv.url
    with httpx.Client(http1=False, http2=True, verify=False, timeout=60) as c:
        r = c.post(base + "/digest", content=body)
    assert r.http_version == "HTTP/2"
    assert r.json() == {"len": 8 * MIB, "sha": hashlib.sha256(body).hexdigest()}


def test_8mib_post_raw_client_sees_window_updates(h2srv):
    import h2.events as ev
    body = os.urandom(8 * MIB)
    c = H2Client(h2srv.port)
    sid = c.request("/digest", "POST", body=body)
    status, _, out = c.response(sid, timeout=60)
    assert status == 200 and hashlib.sha256(body).hexdigest() in out.decode()
    ups = [e for e in c.events if type(e) is ev.WindowUpdated]
    assert any(e.stream_id == sid for e in ups) and any(e.stream_id == 0 for e in ups)
    c.close()


def test_data_frames_follow_the_peers_max_frame_size(h2srv):
    from h2.settings import SettingCodes as SC
    c = H2Client(h2srv.port, settings={SC.MAX_FRAME_SIZE: 32768,
                                       SC.INITIAL_WINDOW_SIZE: 4 * MIB})
    sid = c.request("/big?mib=2")
    status, _, body = c.response(sid, timeout=60)
    assert status == 200 and len(body) == 2 * MIB
    sizes = [n for s, n in c.data_frames if s == sid]
    assert max(sizes) <= 32768 and max(sizes) > 16384
    c.close()


def test_a_client_that_stops_reading_gets_one_window(h2srv):
    slow = H2Client(h2srv.port, auto_ack=False)     # never sends WINDOW_UPDATE
    sid = slow.request("/big?mib=8")
    got = lambda: len(slow.responses[sid]["data"])  # noqa: E731
    assert slow.until(lambda: got() >= 65535, 20)
    slow.until(lambda: got() > 65535, 1.0)
    assert got() == 65535                            # the server sent what the window allows
    # the server goes on serving others meanwhile
    with httpx.Client(http1=False, http2=True, timeout=10) as c:
        t0 = time.monotonic()
        assert c.get(h2srv.url + "/").content == b"hello"
        assert time.monotonic() - t0 < 5.0      # not held behind the stalled stream
    slow.close()


@pytest.mark.parametrize("route", ["/hang", "/hang-sync"])
def test_rst_stream_cancels_only_that_stream(h2srv, route):
    c = H2Client(h2srv.port)
    marker = "rst-%s-%d" % (route.strip("/"), time.monotonic_ns())
    hang = c.request("%s?marker=%s" % (route, marker))
    other = c.request("/slow?ms=800")
    mark = h2srv.marks / marker
    assert wait_for(lambda: (h2srv.marks / (marker + ".started")).exists(), 10)
    c.reset(hang)
    assert wait_for(lambda: mark.exists() and mark.read_text() == "finally", 10)
    if route == "/hang":
        assert (h2srv.marks / (marker + ".aborted")).exists()
    status, _, body = c.response(other, timeout=10)
    assert (status, body) == (200, b"slow")
    assert c.goaway is None
    c.close()


def test_streams_of_one_connection_run_concurrently(h2srv):
    c = H2Client(h2srv.port)
    t0 = time.monotonic()
    sids = [c.request("/slow?ms=1000") for _ in range(20)]
    for sid in sids:
        assert c.response(sid, timeout=20)[0] == 200
    assert time.monotonic() - t0 < 8.0      # not 20 s: the handlers overlapped
    c.close()


def test_pause_holds_the_body_until_resume(h2srv):
    body = os.urandom(300000)
    c = H2Client(h2srv.port)
    t0 = time.monotonic()
    sid = c.request("/paused", "POST", body=body)
    status, _, out = c.response(sid, timeout=30)
    import json
    d = json.loads(out)
    assert status == 200 and d["sha"] == hashlib.sha256(body).hexdigest()
    assert d["chunks"] > 3
    assert time.monotonic() - t0 >= 0.55      # three 0.2 s pauses
    c.close()


def test_rst_stream_releases_the_handlers_curl_transfer(h2srv):
    """The handler awaits kore.httpclient on an upstream that never answers;
    the client's RST_STREAM cancels it: its finally runs and the upstream
    sees the transfer's connection closed."""
    import socket
    import threading
    lst = socket.socket()
    lst.bind(("127.0.0.1", 0))
    lst.listen(1)
    lst.settimeout(15)
    seen = {}

    def upstream():
        conn, _ = lst.accept()
        conn.settimeout(15)
        seen["request"] = conn.recv(65536)
        try:
            seen["eof"] = conn.recv(65536) == b""
        except socket.timeout:
            seen["eof"] = False             # still open: the transfer was not released
        except OSError:
            seen["eof"] = True
        conn.close()
    t = threading.Thread(target=upstream)
    t.start()
    c = H2Client(h2srv.port)
    marker = "curl-%d" % time.monotonic_ns()
    sid = c.request("/upstream?port=%d&marker=%s" % (lst.getsockname()[1], marker))
    assert wait_for(lambda: "request" in seen, 10)
    other = c.request("/")
    assert c.response(other)[0] == 200
    c.reset(sid)
    t.join(15)
    lst.close()
    assert seen.get("eof") is True          # the curl handle let go of its connection
    assert wait_for(lambda: (h2srv.marks / marker).exists(), 10)
    assert c.goaway is None
    c.close()


def _rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_a_client_with_a_huge_window_that_stops_reading_holds_little(h2srv):
    """Windows of 2^31-1 and a client that reads nothing: the handler waits
    in its write instead of queueing the whole 64 MiB response."""
    from h2.settings import SettingCodes as SC
    worker = h2srv.children()[0]
    c = H2Client(h2srv.port, settings={SC.INITIAL_WINDOW_SIZE: 2 ** 31 - 1})
    c.h2.increment_flow_control_window(2 ** 31 - 1 - 65535)
    c.flush()
    rss0 = _rss_kb(worker)
    sid = c.request("/big-stream?mib=64")
    time.sleep(2.0)          # (the client reads nothing: nothing to wait for)
    grown = _rss_kb(worker) - rss0
    assert grown < 16 * 1024, "worker RSS grew by %d KiB" % grown
    # reading again, the whole response arrives
    status, _, body = c.response(sid, timeout=90)
    assert status == 200 and len(body) == 64 * MIB
    c.close()

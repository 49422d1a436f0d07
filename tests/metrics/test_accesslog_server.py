"""The buffered access log over real korectl processes: nothing lost on
SIGTERM or a SIGHUP reload (with a flush interval far longer than the
test), lines written on the timer, OpenTelemetry field names, a header
value with quotes that cannot forge a field, a gunicorn format string, and
a bad format that stops start-up naming the option."""

import json
import os
import signal
import socket
import subprocess

from kore_testing import KORECTL, KoreServer, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
APP = os.path.join(HERE, "apps", "app.py")


def _keepalive(port, path, n, headers=b""):
    """``n`` GETs on one kept-alive connection; returns the statuses."""
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        f = s.makefile("rb")
        for _ in range(n):
            s.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\n%s\r\n" % (path.encode(), headers))
            status = int(f.readline().split()[1])
            length = 0
            while True:
                line = f.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            f.read(length)
            out.append(status)
    return out


def _records(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f.read().splitlines()]


def test_nothing_lost_on_hup_and_term(tmp_path):
    log = str(tmp_path / "access.json")
    s = KoreServer(tmp_path, APP, workers=2, args=[
        "--access-log", log, "--access-log-format", "json",
        "--access-log-flush", "300"])
    try:
        s.wait_ready(2)
        evil = b'User-Agent: x", "http.response.status_code": 500, "forged": "\\\r\n'
        assert _keepalive(s.port, "/hello?a=1", 60, evil) == [200] * 60
        assert _keepalive(s.port, "/item/7", 40) == [200] * 40
        # buffered: 100 lines are far below 64 KiB and the timer is 300 s away
        assert _records(log) == []
        old = set(s.children())
        s.send_signal(signal.SIGHUP)
        assert s.wait_log("reload complete", 30), s.log()
        assert wait_for(lambda: not (set(s.children()) & old), 20)
        # the old workers wrote their lines when they stopped
        recs = _records(log)
        assert len(recs) == 100, len(recs)
        assert _keepalive(s.port, "/hello", 25) == [200] * 25
        assert s.stop() == 0
    finally:
        s.cleanup()
    recs = _records(log)
    assert len(recs) == 125
    hello = [r for r in recs if r["url.path"] == "/hello" and r["url.query"] == "a=1"]
    assert len(hello) == 60
    r = hello[0]
    assert r["user_agent.original"] == 'x", "http.response.status_code": 500, "forged": "\\'
    assert "forged" not in r and r["http.response.status_code"] == 200
    assert r["http.request.method"] == "GET" and r["http.route"] == "/hello"
    assert r["client.address"] == "127.0.0.1" and r["server.address"] == "t"
    assert r["network.protocol.version"] == "1.1" and r["http.server.request.duration"] >= 0
    items = [r for r in recs if r["url.path"] == "/item/7"]
    assert len(items) == 40 and items[0]["http.route"] == "^/item/[0-9]+$"
    assert {r["kore.worker.id"] for r in recs} <= {1, 2}
    assert len({r["process.pid"] for r in recs}) >= 2       # two generations


def test_gunicorn_format_and_the_flush_timer(tmp_path):
    log = str(tmp_path / "access.log")
    fmt = '%(h)s %(l)s "%(r)s" %(s)s %(b)s "%({x-req}i)s" %({x-out}o)s %(M)s'
    s = KoreServer(tmp_path, APP, workers=1, env={"KORE_HTTP_ACCESS_LOG_FORMAT": fmt},
                   args=["--access-log", log, "--access-log-flush", "0.2"])
    try:
        s.wait_ready(1)
        assert _keepalive(s.port, "/hdr?q=1", 3, b'X-Req: say "hi"\r\n') == [200] * 3

        def lines():
            return open(log).read().splitlines() if os.path.exists(log) else []
        # written by the 0.2 s timer, the server still running
        assert wait_for(lambda: len(lines()) == 3, 10), lines()
        line = lines()[0]
        head, ms = line.rsplit(" ", 1)
        assert head.startswith('127.0.0.1 - "GET /hdr?q=1 HTTP/1.1" 200 ')
        assert head.endswith(' "say \\"hi\\"" out-value') and ms.isdigit()
    finally:
        s.cleanup()


def test_unknown_atom_stops_startup_naming_the_option(tmp_path):
    p = subprocess.run([KORECTL, "run", "--bind", "127.0.0.1:0", "--access-log", "-",
                        "--access-log-format", '%(h)s %(nope)s', APP],
                       capture_output=True, text=True, timeout=60, cwd=str(tmp_path))
    assert p.returncode != 0
    out = p.stdout + p.stderr
    assert "http_access_log_format" in out and "unknown atom '%(nope)s'" in out, out
    assert "listening on" not in out

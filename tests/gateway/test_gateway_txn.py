"""Transaction ids across 4 workers and a restart, incoming ids ignored
from untrusted peers, ``enable_gateway(False)`` serving without tokens,
source CIDRs over a real IPv6 socket, and start-up errors."""

import re
import socket

import pytest

from kore_testing import KoreServer

APP = """
import kore, os
kore.enable_gateway(False)

@kore.route("/ids", methods=["get"])
def ids(req):
    req.response(200, ("%s %d %s %s" % (req.gtxid, req.ltxid, os.getpid(), req.user)).encode())

@kore.route("/loopback-only", methods=["get"])
def lo(req):
    req.response(200, b"from ::1")

kore.gateway_policy("/loopback-only", source="::1/128")

@kore.route("/doc-net-only", methods=["get"])
def doc(req):
    req.response(200, b"never")

kore.gateway_policy(doc, source="2001:db8::/32")
"""


def raw_get(host, port, path, headers=None):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    req = "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" % path
    req += "".join("%s: %s\r\n" % kv for kv in (headers or {}).items()) + "\r\n"
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.settimeout(10)
        s.connect((host, port))
        s.sendall(req.encode())
        data = b""
        while True:
            c = s.recv(65536)
            if not c:
                break
            data += c
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


def start_v6(tmp_path, workers):
    srv = KoreServer(tmp_path, APP, workers=workers, bind=False,
                     args=["--bind", "[::1]:0", "--forwarded-allow-ips", "10.9.9.9"])
    srv.host = "::1"
    srv.port = srv.listen_port("default", host="::1")
    srv.wait_ready(workers)
    return srv


def collect(srv, n):
    out = []
    for _ in range(n):
        status, body = raw_get(srv.host, srv.port, "/ids",
                               {"X-Gtxn-Id": "spoofed", "X-Ltxn-Id": "5000",
                                "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-"
                                               "00f067aa0ba902b7-01"})
        assert status == 200, body
        out.append(body.split())
    return out


def test_ids_unique_across_workers_and_restarts_untrusted_ignored(tmp_path):
    seen = []
    pids = set()
    for run in range(2):
        srv = start_v6(tmp_path, workers=4)
        try:
            for gtxid, ltxid, pid, user in collect(srv, 150):
                # an untrusted peer's ids are not honoured: fresh ones, ltxid 1000
                assert re.fullmatch(r"[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}", gtxid)
                assert ltxid == "1000" and user == "None"
                seen.append(gtxid)
                pids.add(pid)
        finally:
            srv.cleanup()
    assert len(pids) >= 3           # several workers of two runs answered
    assert len(set(seen)) == len(seen) == 300
    assert "spoofed" not in seen


def test_disabled_gateway_serves_without_tokens_and_v6_sources(tmp_path):
    srv = start_v6(tmp_path, workers=1)
    try:
        assert raw_get("::1", srv.port, "/ids")[0] == 200
        assert raw_get("::1", srv.port, "/loopback-only") == (200, "from ::1")
        status, body = raw_get("::1", srv.port, "/doc-net-only")
        assert status == 403
        # X-Forwarded-For from an untrusted peer changes nothing
        assert raw_get("::1", srv.port, "/doc-net-only",
                       {"X-Forwarded-For": "2001:db8::1"})[0] == 403
    finally:
        srv.cleanup()


@pytest.mark.parametrize("src,message", [
    ("""
import kore
kore.enable_gateway(True, "k" * 32)
@kore.route("/a", methods=["get"])
def a(req):
    req.response(200, b"")
kore.gateway_policy("/typo", roles=["x"])
""", "kore.gateway_policy('/typo'): no route or mount matches '/typo'"),
    ("""
import kore
kore.enable_gateway(True)
@kore.route("/a", methods=["get"])
def a(req):
    req.response(200, b"")
""", "nothing can check them"),
    ("""
import kore
kore.enable_gateway(True, "k" * 32, algorithms=["none"])
""", "unknown algorithm 'none'"),
])
def test_startup_errors(korectl, tmp_path, src, message):
    app = tmp_path / "app.py"
    app.write_text(src)
    out = korectl("run", "--bind", "127.0.0.1:0", "--workers", "1", str(app), timeout=30)
    assert out.returncode != 0
    assert message in out.stdout + out.stderr, out.stdout + out.stderr

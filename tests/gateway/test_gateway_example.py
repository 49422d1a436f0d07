"""examples/gateway runs under korectl as shipped."""

import os
import subprocess
import sys

import httpx

from kore_testing import started_on, wait_for, with_free_ports

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EX = os.path.join(ROOT, "examples", "gateway")


def make_token(*args):
    return subprocess.run([sys.executable, os.path.join(EX, "make_token.py")] + list(args),
                          capture_output=True, text=True, check=True, timeout=30).stdout.strip()


def test_example(kore_server):
    # the app calls itself through kore.httpclient on PORT: picked before it
    # starts, picked again if another process took it meanwhile
    def start(port):
        srv = kore_server(os.path.join(EX, "app.py"), workers=1, bind=False,
                          env={"PORT": str(port)}, args=["--access-log", "-"])
        srv.port = port
        return started_on(srv, (port,))
    srv = with_free_ports(1, start)
    port = srv.port
    base = "http://127.0.0.1:%d" % port
    alice = {"Authorization": "Bearer " + make_token("alice", "user")}
    with httpx.Client(base_url=base, timeout=10) as c:
        r = c.get("/api/me")
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == 'Bearer realm="example API"'
        me = c.get("/api/me", headers=alice).json()
        assert me["user"] == "alice" and me["txn"].endswith("/1000")
        assert c.get("/api/admin", headers=alice).status_code == 403
        root = {"Authorization": "Bearer " + make_token("root", "admin")}
        assert c.get("/api/admin", headers=root).json() == {"admin": "root"}
        demo = c.get("/api/me", headers={"Authorization": "Bearer opaque-demo-token"})
        assert demo.json()["user"] == "demo"
        fan = c.get("/api/fanout", headers=alice).json()
        gtxid = fan["me"].split("/")[0]
        assert fan["calls"] == [{"gtxid": gtxid, "ltxid": "2001"},
                                {"gtxid": gtxid, "ltxid": "2002"}]
        h = c.get("/health")
        assert h.status_code == 200 and "ratelimit-limit" not in h.headers
        assert "ratelimit-remaining" in c.get("/api/me", headers=alice).headers
    # the access log is buffered (flushed every second)
    assert wait_for(lambda: "user=alice" in srv.log(), 10), srv.log()
    assert alice["Authorization"][7:] not in srv.log()

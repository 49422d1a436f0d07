"""A client's RST_STREAM cancels a handler that holds a pooled PostgreSQL
connection: its query is cancelled on the server, its ``finally`` runs, and
the connection goes back to the pool (pgsql_conn_max = 1: the next stream,
on the same HTTP/2 connection and on another one, gets it)."""

import os
import sys
import time

import h2.errors
import pytest

from h2client import H2Client
from kore_testing import KoreServer, free_port, wait_for, wait_port

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "pgsql"))

from pgcluster import Cluster, find_bindir  # noqa: E402

pytestmark = pytest.mark.timeout(90)

APP = r'''
import json, os
import kore

kore.config.pgsql_conn_max = 1
kore.dbsetup("db", os.environ["PGT_DSN"])
kore.server("default", ip="127.0.0.1", port=os.environ["PORT"], tls=False)
d = kore.domain("*")

def mark(name):
    with open(os.path.join(os.environ["MARKS"], name), "w") as f:
        f.write("x")

async def dbq(req):
    try:
        await kore.dbquery("db", "SELECT pg_sleep(30) /*h2reset-dbquery*/")
        req.response(200, b"slept")
    finally:
        mark("dbquery-finally")

async def reqpgsql(req):
    try:
        await req.pgsql("db", "SELECT pg_sleep(30) /*h2reset-reqpgsql*/")
        req.response(200, b"slept")
    finally:
        mark("reqpgsql-finally")

async def one(req):
    rows = await kore.dbquery("db", "SELECT 'got it' AS s")
    req.response(200, rows[0]["s"].encode())

d.route("/dbquery", dbq, methods=["get"])
d.route("/reqpgsql", reqpgsql, methods=["get"])
d.route("/one", one, methods=["get"])
'''


@pytest.fixture(scope="module")
def pg():
    if find_bindir() is None:
        pytest.skip("PostgreSQL is not installed (scripts/setup.sh --tests installs it)")
    cluster = Cluster.create()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture(scope="module")
def admin(pg):
    import psycopg2
    conn = psycopg2.connect(pg.dsn)
    conn.autocommit = True
    yield conn
    conn.close()


@pytest.fixture(scope="module")
def srv(tmp_path_factory, pg):
    tmp = tmp_path_factory.mktemp("h2pg")
    (tmp / "marks").mkdir()
    app = tmp / "app.py"
    app.write_text(APP)
    port = free_port()
    s = KoreServer(tmp, str(app), (), workers=1, bind=False,
                   args=["--http2-cleartext", "prior-knowledge"],
                   env={"PGT_DSN": pg.dsn, "PORT": str(port), "MARKS": str(tmp / "marks")})
    s.port = port
    s.marks = tmp / "marks"
    if not wait_port("127.0.0.1", port, 20, s.proc):
        out = s.log()
        s.kill()
        raise AssertionError("server did not start:\n" + out)
    try:
        yield s
    finally:
        s.cleanup()


def backends(admin, like):
    cur = admin.cursor()
    cur.execute("SELECT state FROM pg_stat_activity WHERE query LIKE %s "
                "AND pid <> pg_backend_pid()", (like,))
    return [r[0] for r in cur.fetchall()]


@pytest.mark.parametrize("route", ["dbquery", "reqpgsql"])
def test_reset_releases_the_pool_connection(srv, admin, route):
    tag = "%%h2reset-%s%%" % route
    c = H2Client(srv.port, timeout=20)
    # the pool's only connection is open and free
    sid = c.request("/one")
    status, _, body = c.response(sid, timeout=20)
    assert (status, body) == (200, b"got it")
    held = c.request("/" + route)
    assert wait_for(lambda: backends(admin, tag) == ["active"], 15), srv.log()
    # while it is held, another stream waits for it (pool size 1)
    waiting = c.request("/one")
    c.until(lambda: c.responses[waiting]["ended"], timeout=0.5)
    assert not c.responses[waiting]["ended"]
    t0 = time.monotonic()
    c.reset(held, h2.errors.ErrorCodes.CANCEL)
    # the waiting stream gets the connection once the held one is released
    status, _, body = c.response(waiting, timeout=20)
    assert (status, body) == (200, b"got it"), srv.log()
    assert time.monotonic() - t0 < 15          # long before pg_sleep(30) ends
    assert wait_for(lambda: (srv.marks / ("%s-finally" % route)).exists(), 10)
    # the query was cancelled on the server, not left running
    assert wait_for(lambda: "active" not in backends(admin, tag), 10), backends(admin, tag)
    assert held not in c.responses or not c.responses[held]["headers"]
    assert c.goaway is None and not c.closed     # only the stream ended
    # the next streams, on this connection and on a new one, get it too
    for client in (c, H2Client(srv.port, timeout=20)):
        sid = client.request("/one")
        assert client.response(sid, timeout=20)[2] == b"got it"
        client.close()

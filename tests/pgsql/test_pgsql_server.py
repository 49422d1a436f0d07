"""kore-plugin-pgsql inside real ``korectl`` processes, against a real
PostgreSQL: handlers, tasks, timers, concurrency, faults, cancellation."""

import http.client
import json
import os
import socket
import threading
import time

import pytest

from kore_testing import every_worker, wait_for

pytestmark = pytest.mark.timeout(90)

try:
    import kore_http.plugin  # noqa: F401
    HAVE_HTTP = True
except Exception:  # pragma: no cover
    HAVE_HTTP = False

if not HAVE_HTTP:
    pytestmark = [pytestmark, pytest.mark.skip(reason="kore-plugin-http is not installed")]


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

APP = r'''
import json, os
import kore

kore.config.pgsql_conn_max = int(os.environ.get("PGT_CONN_MAX", "2"))
kore.config.pgsql_queue_limit = int(os.environ.get("PGT_QUEUE_LIMIT", "1000"))
kore.dbsetup("db", os.environ["PGT_DSN"])          # module level

seen = {}

async def from_task():
    seen["task"] = await kore.dbquery("db", "SELECT 'task' AS src")
kore.task_create(from_task())

def from_timer():
    seen["timer"] = kore.dbquery_sync("db", "SELECT 'timer' AS src")
kore.timer(from_timer, 50, kore.TIMER_ONESHOT)

async def from_async_timer():
    seen["async_timer"] = await kore.dbquery("db", "SELECT 'async timer' AS src")
kore.timer(from_async_timer, 50, kore.TIMER_ONESHOT)

def send(req, status, obj):
    req.response(status, json.dumps(obj).encode())

@kore.route("/rows", methods=["get"])
async def rows(req):
    r = await kore.dbquery("db", "SELECT 42 AS i, 'x' AS t, NULL AS n, "
                                 "'\\x6869'::bytea AS b")
    send(req, 200, [{k: (v.decode() if isinstance(v, bytes) else v) for k, v in row.items()}
                    for row in r] + [[type(v).__name__ for v in r[0].values()]])

@kore.route("/none", methods=["get"])
async def none(req):
    send(req, 200, await kore.dbquery("db", "CREATE TEMP TABLE IF NOT EXISTS x (a int)"))

@kore.route("/old", methods=["get"])
async def old(req):
    send(req, 200, await req.pgsql("db", "SELECT $1 AS v, $2::int * 2 AS w",
                                   params=["old", "21"]))

@kore.route("/sync", methods=["get"])
def sync(req):
    send(req, 200, kore.dbquery_sync("db", "SELECT 'sync' AS how"))

@kore.route("/seen", methods=["get"])
def seen_(req):
    send(req, 200, seen)

@kore.route("/error", methods=["get"])
async def error(req):
    await kore.dbquery("db", "SELECT * FROM nosuchtable")

@kore.route("/caught", methods=["get"])
async def caught(req):
    try:
        await kore.dbquery("db", "SELECT * FROM nosuchtable")
    except RuntimeError as exc:
        send(req, 200, {"sqlstate": exc.sqlstate, "message": exc.message,
                        "text": str(exc)})

@kore.route("/one", methods=["get"])
async def one(req):
    send(req, 200, await kore.dbquery("db", "SELECT 1 AS one"))

@kore.route("/sleep", methods=["get"])
async def sleep(req):
    send(req, 200, await kore.dbquery("db", "SELECT 'slept' AS s FROM pg_sleep(1)"))

@kore.route("/long", methods=["get"])
async def long(req):
    await kore.dbquery("db", "SELECT pg_sleep(5) /*longquery*/")
    send(req, 200, "finished")

@kore.route("/fast", methods=["get"])
def fast(req):
    req.response(200, b"fast")
'''


def get(srv, path, timeout=10):
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=timeout)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def start(kore_server, pg, dsn=None, settle=True, **env):
    e = {"PGT_DSN": dsn or pg.dsn}
    e.update({k: str(v) for k, v in env.items()})
    srv = kore_server(APP, workers=1, env=e)
    if settle:
        # let the app's start-up task and timers finish their queries
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if len(json.loads(get(srv, "/seen")[1])) == 3:
                break
            time.sleep(0.05)
    return srv


def backends(admin, like):
    cur = admin.cursor()
    cur.execute("SELECT state FROM pg_stat_activity WHERE query LIKE %s "
                "AND pid <> pg_backend_pid()", (like,))
    return [r[0] for r in cur.fetchall()]


def test_handlers_tasks_timers(kore_server, pg_up):
    srv = start(kore_server, pg_up)
    status, body = get(srv, "/rows")
    assert status == 200, srv.log()
    assert json.loads(body) == [{"i": "42", "t": "x", "n": None, "b": "hi"},
                                ["str", "str", "NoneType", "bytes"]]
    assert get(srv, "/none") == (200, b"null")
    assert json.loads(get(srv, "/old")[1]) == [{"v": "old", "w": "42"}]
    assert json.loads(get(srv, "/sync")[1]) == [{"how": "sync"}]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        seen = json.loads(get(srv, "/seen")[1])
        if len(seen) == 3:
            break
        time.sleep(0.05)
    assert seen == {"task": [{"src": "task"}], "timer": [{"src": "timer"}],
                    "async_timer": [{"src": "async timer"}]}


def test_errors_500_and_caught(kore_server, pg_up):
    srv = start(kore_server, pg_up)
    assert get(srv, "/error")[0] == 500
    assert srv.wait_log('relation "nosuchtable" does not exist')
    status, body = get(srv, "/caught")
    assert status == 200
    d = json.loads(body)
    assert d["sqlstate"] == "42P01"
    assert d["message"] == 'relation "nosuchtable" does not exist'
    assert d["text"].startswith("failed to perform query: ERROR:")
    assert get(srv, "/one")[0] == 200   # the worker is fine


def test_30_concurrent_sleeps_in_one_worker(kore_server, pg_up, admin):
    srv = start(kore_server, pg_up, PGT_CONN_MAX=30)
    assert get(srv, "/one")[0] == 200
    results = []
    fast = []

    def slow_client():
        results.append(get(srv, "/sleep", timeout=10))

    threads = [threading.Thread(target=slow_client) for _ in range(30)]
    t0 = time.monotonic()
    for t in threads:
        t.start()
    # the slow queries run (in the worker, on the server) while /fast is asked
    assert wait_for(lambda: "active" in backends(admin, "%'slept'%"), 10)
    while any(t.is_alive() for t in threads) and time.monotonic() - t0 < 15:
        f0 = time.monotonic()
        status, _ = get(srv, "/fast")
        fast.append((status, time.monotonic() - f0))
        time.sleep(0.02)
    for t in threads:
        t.join(10)
    elapsed = time.monotonic() - t0
    lat = sorted(d for _, d in fast)
    print("30 x pg_sleep(1): %.2fs; /fast during it: %d requests, median %.1f ms, "
          "max %.1f ms" % (elapsed, len(lat), lat[len(lat) // 2] * 1000, lat[-1] * 1000))
    assert len(results) == 30
    assert all(r == (200, b'[{"s": "slept"}]') for r in results), results
    assert elapsed < 10, elapsed            # together: one after another takes 30 s
    assert len(fast) >= 10 and all(s == 200 for s, _ in fast)
    # not waiting for a query (that is a second): the median within a few
    # milliseconds on an idle machine, bounds for a loaded one
    assert lat[len(lat) // 2] < 0.2, lat
    assert lat[-1] < 0.6, lat


def test_pool_overload_is_503(kore_server, pg_up):
    srv = start(kore_server, pg_up, PGT_CONN_MAX=1, PGT_QUEUE_LIMIT=1)
    results = []
    threads = [threading.Thread(target=lambda: results.append(get(srv, "/sleep")[0]))
               for _ in range(4)]
    for t in threads:       # in any order: one runs, one waits, two are refused
        t.start()
    for t in threads:
        t.join(10)
    assert srv.wait_log("pgsql_queue_limit")
    assert sorted(results) == [200, 200, 503, 503], (results, srv.log())


def test_client_going_away_cancels_query(kore_server, pg_up, admin):
    srv = start(kore_server, pg_up)
    s = socket.create_connection((srv.host, srv.port))
    s.sendall(b"GET /long HTTP/1.1\r\nHost: x\r\n\r\n")
    deadline = time.monotonic() + 3
    while backends(admin, "%longquery%") != ["active"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backends(admin, "%longquery%") == ["active"]
    s.close()
    deadline = time.monotonic() + 3
    while "active" in backends(admin, "%longquery%") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backends(admin, "%longquery%") == ["idle"], srv.log()
    assert get(srv, "/one")[0] == 200


def test_postgresql_restart_during_traffic(kore_server, pg_up):
    srv = start(kore_server, pg_up, PGT_CONN_MAX=4)
    assert get(srv, "/one")[0] == 200
    statuses = []
    stop = threading.Event()

    def client():
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                status = get(srv, "/one", timeout=8)[0]
            except OSError as exc:   # a hang would show up as a timeout here
                status = repr(exc)
            statuses.append((status, time.monotonic() - t0))
            time.sleep(0.02)

    threads = [threading.Thread(target=client) for _ in range(3)]
    for t in threads:
        t.start()
    assert wait_for(lambda: [s for s, _ in statuses].count(200) >= 3, 10), statuses
    pg_up.restart()
    # traffic goes on until requests succeed again after the restart
    n = len(statuses)
    assert wait_for(lambda: any(s == 200 for s, _ in statuses[n:]), 15), statuses
    stop.set()
    for t in threads:
        t.join(15)
    assert statuses and max(d for _, d in statuses) < 5, statuses
    # recovered by itself
    assert [get(srv, "/one")[0] for _ in range(5)] == [200] * 5
    # the failures during the restart were "cannot connect" ones (503)
    errors = [l for l in srv.log().splitlines() if "uncaught exception" in l]
    assert all("PgsqlUnavailable" in l for l in errors), errors
    codes = [s for s, _ in statuses]
    assert all(s in (200, 503) for s in codes), statuses


def test_postgresql_down_at_startup(kore_server, pg_up):
    pg_up.stop()
    srv = start(kore_server, pg_up, settle=False)
    t0 = time.monotonic()
    status = get(srv, "/one")[0]
    assert time.monotonic() - t0 < 5        # refused at once, not the 10 s connect timeout
    assert srv.wait_log("cannot connect: connection to server at 127.0.0.1")
    assert get(srv, "/fast") == (200, b"fast")
    pg_up.start()
    assert get(srv, "/one") == (200, b'[{"one": "1"}]')
    assert [status] == [503]


def test_kore_example_app(kore_server, pg_up, admin):
    with open(os.path.join(ROOT, "examples", "python-pgsql", "schema.sql")) as f:
        admin.cursor().execute(f.read())
    app = os.path.join(ROOT, "examples", "python-pgsql", "app.py")
    srv = kore_server(app, pg_up.unix_dsn, workers=1)
    status, body = get(srv, "/")
    assert status == 200, srv.log()
    assert {"name": "joris", "lang": "c"} in json.loads(body)
    assert json.loads(get(srv, "/coder/guido")[1]) == {"name": "guido", "lang": "python"}
    assert get(srv, "/coder/nobody")[0] == 404
    assert get(srv, "/hello") == (200, b"hello\n")


CONFIGURE_APP = r'''
import json, os
import kore

class App:
    def configure(self, args):
        kore.dbsetup("db", args[1])
        # a synchronous query in the master, before the workers exist
        self.master_backend = kore.dbquery_sync("db", "SELECT pg_backend_pid() AS p")[0]["p"]

    @kore.route("/who", methods=["get"])
    async def who(self, req):
        me = await kore.dbquery("db", "SELECT pg_backend_pid() AS p")
        master = await kore.dbquery("db", "SELECT count(*) AS n FROM pg_stat_activity "
                                          "WHERE pid = $1::int", params=[self.master_backend])
        req.response(200, json.dumps({"worker": os.getpid(), "backend": me[0]["p"],
                                      "master_backend": self.master_backend,
                                      "master_alive": master[0]["n"]}).encode())

koreapp = App()
'''


def test_configure_sync_query_and_per_worker_pools(kore_server, pg_up):
    import signal
    srv = kore_server(CONFIGURE_APP, pg_up.dsn, workers=2)
    srv.wait_ready(2)
    def one():
        status, body = get(srv, "/who")
        assert status == 200, srv.log()
        d = json.loads(body)
        # the master's connection was closed before the workers were forked
        assert d["master_alive"] == "0" and d["backend"] != d["master_backend"]
        return d["worker"], d["backend"]
    seen = every_worker(one)
    assert len(seen) == 2 and len(set(seen.values())) == 2   # one pool per worker
    # a reload forgets the databases and the reloaded app declares them again
    os.kill(srv.pid, signal.SIGHUP)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status, body = get(srv, "/who")
        if status == 200 and json.loads(body)["worker"] not in seen:
            break
        time.sleep(0.1)
    assert status == 200 and json.loads(body)["worker"] not in seen, srv.log()

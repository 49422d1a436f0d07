"""kore-plugin-pgsql in-process, on gevent, against a real PostgreSQL."""

import os
import time

import gevent
import pytest

from kore_pgsql import sql as sqlmod
from kore_testing import gevent_wait_for

pytestmark = pytest.mark.timeout(60)


def drive(coro):
    """Run a coroutine the way kore does: it never suspends."""
    try:
        coro.send(None)
    except StopIteration as exc:
        return exc.value
    raise AssertionError("the coroutine suspended")


# ---------------------------------------------------------------------------
# placeholder translation (no server needed)
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("query,expected,order", [
    ("SELECT $1", "SELECT %s", (0,)),
    ("SELECT $2, $1, $2", "SELECT %s, %s, %s", (1, 0, 1)),
    ("SELECT '$1', $1", "SELECT '$1', %s", (0,)),
    ("SELECT 'it''s $1', $1", "SELECT 'it''s $1', %s", (0,)),
    ("SELECT E'\\'$1', $1", "SELECT E'\\'$1', %s", (0,)),
    ('SELECT "a$1" FROM t WHERE x = $1', 'SELECT "a$1" FROM t WHERE x = %s', (0,)),
    ("SELECT $$ $1 $$, $1", "SELECT $$ $1 $$, %s", (0,)),
    ("SELECT $tag$ $1 $tag$, $1", "SELECT $tag$ $1 $tag$, %s", (0,)),
    ("SELECT 1 -- $1\n, $1", "SELECT 1 -- $1\n, %s", (0,)),
    ("SELECT /* $1 /* $2 */ */ $1", "SELECT /* $1 /* $2 */ */ %s", (0,)),
    ("SELECT 5 % 2, '%', $1", "SELECT 5 %% 2, '%%', %s", (0,)),
    ("SELECT $10", "SELECT %s", (9,)),
    ("SELECT a$1 FROM t", "SELECT a$1 FROM t", ()),
])
def test_translate_placeholders(query, expected, order):
    assert sqlmod.translate(query) == (expected, order)


# ---------------------------------------------------------------------------
# API and results
# ---------------------------------------------------------------------------

def test_rows_are_dicts_of_str_bytes_none(pgsql):
    rows = pgsql.dbquery_sync(
        "db", "SELECT 42 AS i, 'héllo'::text AS t, NULL::int AS n, true AS b, "
              "'\\x00ff'::bytea AS raw, 1.5::numeric AS num, '{1,2}'::int[] AS arr, "
              "'2024-01-02'::date AS d, '{\"a\": 1}'::jsonb AS j")
    assert rows == [{"i": "42", "t": "héllo", "n": None, "b": "t", "raw": b"\x00\xff",
                     "num": "1.5", "arr": "{1,2}", "d": "2024-01-02", "j": '{"a": 1}'}]
    assert type(rows[0]["raw"]) is bytes


def test_statements_without_rows_return_none(pgsql):
    assert pgsql.dbquery_sync("db", "CREATE TEMP TABLE x (a int)") is None
    assert pgsql.dbquery_sync("db", "SELECT 1 AS a WHERE false") == []
    assert pgsql.dbquery_sync("db", "DO $$ BEGIN END $$") is None


def test_await_dbquery_returns_without_suspending(pgsql):
    async def handler():
        rows = await pgsql.dbquery("db", "SELECT $1::int + 1 AS n", params=["41"])
        return rows
    assert drive(handler()) == [{"n": "42"}]


def test_params_str_bytes_none_and_order(pgsql):
    pgsql.dbquery_sync("db", "DROP TABLE IF EXISTS blobs")
    pgsql.dbquery_sync("db", "CREATE TABLE blobs (id int, name text, data bytea)")
    assert pgsql.dbquery_sync("db", "INSERT INTO blobs VALUES ($1, $2, $3)",
                              params=["1", "a 100% 'quoted' $1", b"\x00\x01\xff"]) is None
    pgsql.dbquery_sync("db", "INSERT INTO blobs VALUES ($1, $2, $3)",
                       params=["2", None, None])
    rows = pgsql.dbquery_sync("db", "SELECT $2 AS two, name, data FROM blobs "
                                    "WHERE id = $1::int", params=["1", "x"])
    assert rows == [{"two": "x", "name": "a 100% 'quoted' $1", "data": b"\x00\x01\xff"}]
    assert pgsql.dbquery_sync("db", "SELECT name, data FROM blobs WHERE id = 2") == \
        [{"name": None, "data": None}]
    # without params the query goes unchanged (a literal % is fine)
    assert pgsql.dbquery_sync("db", "SELECT '100%' AS p") == [{"p": "100%"}]


def test_binary_true_gives_bytes(pgsql):
    rows = pgsql.dbquery_sync("db", "SELECT $1::int AS i, NULL AS n, 'ab'::bytea AS r",
                              params=["7"], binary=True)
    assert rows == [{"i": b"7", "n": None, "r": b"ab"}]


def test_bad_arguments_raise_like_kore(pgsql):
    with pytest.raises(RuntimeError, match="params keyword must be a list"):
        pgsql.dbquery("db", "SELECT $1", params="x")
    with pytest.raises(RuntimeError, match="item 1 is not a string or bytes"):
        pgsql.dbquery("db", "SELECT $1, $2", params=["1", 2])
    with pytest.raises(RuntimeError, match="binary not True or False"):
        pgsql.dbquery("db", "SELECT 1", binary=1)
    with pytest.raises(pgsql.PgsqlError) as ei:
        pgsql.dbquery_sync("db", "SELECT $2", params=["1"])
    assert ei.value.sqlstate == "42P02"
    with pytest.raises(pgsql.PgsqlError) as ei:
        pgsql.dbquery_sync("db", "SELECT $1", params=["1", "2"])
    assert ei.value.sqlstate == "08P01"


def test_query_error_carries_sqlstate_and_message(pgsql):
    with pytest.raises(RuntimeError) as ei:
        pgsql.dbquery_sync("db", "SELECT * FROM nosuchtable")
    exc = ei.value
    assert isinstance(exc, pgsql.PgsqlError)
    assert exc.sqlstate == exc.pgcode == "42P01"
    assert exc.message == 'relation "nosuchtable" does not exist'
    assert str(exc).startswith('failed to perform query: ERROR:  relation "nosuchtable"')
    assert exc.http_status == 500 and exc.db == "db"
    # the connection is fine afterwards
    assert pgsql.dbquery_sync("db", "SELECT 1 AS a") == [{"a": "1"}]


def test_error_inside_await(pgsql):
    async def handler():
        try:
            await pgsql.dbquery("db", "SELECT 1/0")
        except RuntimeError as exc:
            return exc.sqlstate
    assert drive(handler()) == "22012"


def test_register_database_alias_and_unknown_name(pgsql, pg_up):
    import kore_pgsql
    assert kore_pgsql.register_database("other", pg_up.unix_dsn) is True
    assert pgsql.dbquery_sync("other", "SELECT 'unix' AS via") == [{"via": "unix"}]
    with pytest.raises(pgsql.PgsqlError, match="no database named 'nope'"):
        pgsql.dbquery_sync("nope", "SELECT 1")


def test_bad_conninfo_is_a_config_error(pgsql):
    from kore import ConfigError
    with pytest.raises(ConfigError, match="bad connection string"):
        pgsql.dbsetup("bad", "this is = not a conninfo '")


def test_leftover_transaction_is_rolled_back(pgsql, pgsql_settings):
    pgsql_settings(conn_max=1)
    pgsql.dbquery_sync("db", "BEGIN")
    # the one connection went back to the pool outside a transaction
    assert pgsql.dbquery_sync("db", "SELECT now() = statement_timestamp() AS fresh") \
        == [{"fresh": "t"}]


# ---------------------------------------------------------------------------
# pool
# ---------------------------------------------------------------------------

def _backends(admin, like):
    cur = admin.cursor()
    cur.execute("SELECT state FROM pg_stat_activity WHERE query LIKE %s "
                "AND pid <> pg_backend_pid()", (like,))
    return [r[0] for r in cur.fetchall()]


def _stat(pgsql, key):
    """pool_stats() of database 'db' (its pool opens with the first query)."""
    return pgsql.pool_stats().get("db", {}).get(key, 0)


def test_pool_default_is_two_connections(pgsql, admin):
    t0 = time.monotonic()
    gs = [gevent.spawn(pgsql.dbquery_sync, "db", "SELECT pg_sleep(0.3) /*pool2*/")
          for _ in range(6)]
    # two run, four wait for a connection
    assert gevent_wait_for(lambda: _stat(pgsql, "waiting") == 4
                           and _backends(admin, "%pool2%").count("active") == 2)
    gevent.joinall(gs, raise_error=True)
    elapsed = time.monotonic() - t0
    # three rounds of two: not more at once (0.6 s); the upper bound only
    # catches a hang
    assert 0.85 < elapsed < 10
    stats = pgsql.pool_stats()["db"]
    assert stats["open"] == 2 and stats["conn_max"] == 2 and stats["waiting"] == 0


def test_queue_limit_gives_503_error(pgsql, pgsql_settings):
    pgsql_settings(conn_max=1, queue_limit=2)
    gs = [gevent.spawn(pgsql.dbquery_sync, "db", "SELECT pg_sleep(0.2)") for _ in range(3)]
    # one runs, two wait: the queue is full
    assert gevent_wait_for(lambda: _stat(pgsql, "waiting") == 2)
    with pytest.raises(pgsql.PgsqlPoolFull) as ei:
        pgsql.dbquery_sync("db", "SELECT 1")
    assert ei.value.http_status == 503
    assert "pgsql_queue_limit" in str(ei.value)
    assert isinstance(ei.value, RuntimeError)
    gevent.joinall(gs, raise_error=True)
    assert pgsql.dbquery_sync("db", "SELECT 1 AS a") == [{"a": "1"}]


def test_broken_connections_are_reopened(pgsql, admin, pgsql_settings):
    pgsql_settings(conn_max=2)
    gevent.joinall([gevent.spawn(pgsql.dbquery_sync, "db", "SELECT pg_sleep(0.05)")
                    for _ in range(2)])
    assert pgsql.pool_stats()["db"]["open"] == 2
    cur = admin.cursor()
    cur.execute("SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                "datname = current_database() AND pid <> pg_backend_pid() "
                "AND backend_type = 'client backend'")
    gone = [r[0] for r in cur.fetchall()]
    assert gone

    def exited():
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)", (gone,))
        return cur.fetchone()[0] == 0
    assert gevent_wait_for(exited, step=0.02)   # (their sessions ended)
    for _ in range(3):
        assert pgsql.dbquery_sync("db", "SELECT 1 AS a") == [{"a": "1"}]
    assert pgsql.pool_stats()["db"]["open"] == 1


def test_killed_greenlet_cancels_query_on_server(pgsql, admin):
    g = gevent.spawn(pgsql.dbquery_sync, "db", "SELECT pg_sleep(5) /*cancelme*/")
    assert gevent_wait_for(lambda: _backends(admin, "%cancelme%") == ["active"], step=0.02)
    t0 = time.monotonic()
    g.kill()
    assert time.monotonic() - t0 < 3        # not the query's 5 s
    assert isinstance(g.value, gevent.GreenletExit)
    deadline = time.monotonic() + 2
    while "active" in _backends(admin, "%cancelme%") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _backends(admin, "%cancelme%") == ["idle"]
    # the connection went back to the pool and is reused
    stats = pgsql.pool_stats()["db"]
    assert stats["open"] == 1 and stats["idle"] == 1
    assert pgsql.dbquery_sync("db", "SELECT 1 AS a") == [{"a": "1"}]


def test_cancelled_coroutine_runs_its_finally(pgsql, admin):
    seen = []

    async def handler():
        try:
            await pgsql.dbquery("db", "SELECT pg_sleep(5) /*corokill*/")
        finally:
            seen.append("finally")

    g = gevent.spawn(drive, handler())
    assert gevent_wait_for(lambda: _backends(admin, "%corokill%") == ["active"], step=0.02)
    g.kill()
    assert seen == ["finally"]
    assert gevent_wait_for(lambda: "active" not in _backends(admin, "%corokill%"),
                           step=0.02)


def test_killed_while_waiting_for_the_pool(pgsql, pgsql_settings):
    pgsql_settings(conn_max=1)
    busy = gevent.spawn(pgsql.dbquery_sync, "db", "SELECT pg_sleep(0.3)")
    assert gevent_wait_for(lambda: _stat(pgsql, "busy") == 1)
    waiting = gevent.spawn(pgsql.dbquery_sync, "db", "SELECT 1")
    assert gevent_wait_for(lambda: _stat(pgsql, "waiting") == 1)
    waiting.kill()
    assert pgsql.pool_stats()["db"]["waiting"] == 0
    busy.join()
    assert busy.successful()
    assert pgsql.dbquery_sync("db", "SELECT 2 AS a") == [{"a": "2"}]


def test_timeout_cancels_query(pgsql, admin):
    t0 = time.monotonic()
    with pytest.raises(pgsql.PgsqlTimeout) as ei:
        pgsql.dbquery_sync("db", "SELECT pg_sleep(5) /*tmo*/", timeout=0.3)
    assert 0.25 < time.monotonic() - t0 < 3     # its timeout, not the query's 5 s
    assert ei.value.sqlstate == "57014"
    assert gevent_wait_for(lambda: "active" not in _backends(admin, "%tmo%"), step=0.02)


def test_gevent_timeout_around_await(pgsql, admin):
    async def handler():
        with gevent.Timeout(0.3, False):
            await pgsql.dbquery("db", "SELECT pg_sleep(5) /*gtmo*/")
            return "finished"
        return "timed out"
    t0 = time.monotonic()
    assert drive(handler()) == "timed out"
    assert 0.25 < time.monotonic() - t0 < 3     # its timeout, not the query's 5 s
    assert gevent_wait_for(lambda: "active" not in _backends(admin, "%gtmo%"), step=0.02)


def test_30_concurrent_sleeps_do_not_block(pgsql, pgsql_settings):
    pgsql_settings(conn_max=30)
    gaps = []

    def ticker():
        last = time.monotonic()
        while True:
            gevent.sleep(0.01)
            now = time.monotonic()
            gaps.append(now - last)
            last = now
    tick = gevent.spawn(ticker)
    t0 = time.monotonic()
    gs = [gevent.spawn(pgsql.dbquery_sync, "db", "SELECT pg_sleep(1)") for _ in range(30)]
    gevent.joinall(gs, raise_error=True)
    elapsed = time.monotonic() - t0
    tick.kill()
    assert elapsed < 10                 # together: one after another takes 30 s
    # the hub never waited for a query (that is a 1 s gap)
    assert max(gaps) < 0.5, max(gaps)


def test_server_restart_recovers(pgsql, pg_up, pgsql_settings):
    pgsql_settings(conn_max=3)
    gevent.joinall([gevent.spawn(pgsql.dbquery_sync, "db", "SELECT pg_sleep(0.05)")
                    for _ in range(3)])
    pg_up.restart()
    results = [pgsql.dbquery_sync("db", "SELECT %d AS n" % i) for i in range(5)]
    assert results == [[{"n": str(i)}] for i in range(5)]


def test_server_down_then_up(pgsql, pg_up):
    pg_up.stop()
    t0 = time.monotonic()
    with pytest.raises(pgsql.PgsqlUnavailable) as ei:
        pgsql.dbquery_sync("db", "SELECT 1")
    assert time.monotonic() - t0 < 5        # refused at once, not the 10 s connect timeout
    exc = ei.value
    assert exc.http_status == 503 and exc.sqlstate == "08001"
    assert "database 'db'" in str(exc) and "cannot connect" in str(exc)
    assert isinstance(exc, RuntimeError)
    pg_up.start()
    assert pgsql.dbquery_sync("db", "SELECT 1 AS a") == [{"a": "1"}]


def test_pools_are_per_process(pgsql):
    """A forked child opens its own connection and leaves the parent's alone."""
    parent_pid = pgsql.dbquery_sync("db", "SELECT pg_backend_pid() AS p")[0]["p"]
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover (child)
        try:
            gevent.reinit()
            child = pgsql.dbquery_sync("db", "SELECT pg_backend_pid() AS p")[0]["p"]
            os.write(w, child.encode())
        finally:
            os._exit(0)
    os.close(w)
    _, status = os.waitpid(pid, 0)
    child_pid = os.read(r, 100).decode()
    os.close(r)
    assert status == 0 and child_pid and child_pid != parent_pid
    # the parent's session survived the child's exit
    assert pgsql.dbquery_sync("db", "SELECT pg_backend_pid() AS p")[0]["p"] == parent_pid


def test_query_timeout_option(pgsql, pgsql_settings, admin):
    pgsql_settings(query_timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(pgsql.PgsqlTimeout):
        pgsql.dbquery_sync("db", "SELECT pg_sleep(5) /*opttmo*/")
    assert 0.25 < time.monotonic() - t0 < 3     # the option's 0.3 s, not 5 s
    # an explicit timeout= wins over the option
    assert pgsql.dbquery_sync("db", "SELECT pg_sleep(0.5) /*opttmo*/", timeout=3) \
        == [{"pg_sleep": ""}]
    assert gevent_wait_for(lambda: "active" not in _backends(admin, "%opttmo%"), step=0.02)

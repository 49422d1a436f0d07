"""kore-plugin-pgsql's metrics (the kore_metrics_collect hook) against the
session's real PostgreSQL server, in process: pool gauges by state, waiting
statements, statements and errors counted per declared database, and the
exposition passing promtool."""

import shutil
import subprocess

import gevent
import pytest

from kore_pgsql import plugin
from kore_testing import gevent_wait_for


def _collect():
    from kore_metrics.store import Samples
    s = Samples()
    plugin.kore_metrics_collect(samples=s)
    return s


def _v(s, name, **labels):
    return s.values.get((name, tuple(labels.items())))


def test_pool_gauges_and_query_counters(pgsql, pgsql_settings, pg_up):
    pgsql_settings(conn_max=1)
    pgsql.dbsetup("other", pg_up.dsn)      # declared, never queried
    s = _collect()
    base_q = _v(s, "kore_pgsql_queries_total", database="db") or 0
    base_e = _v(s, "kore_pgsql_query_errors_total", database="db") or 0
    assert _v(s, "kore_pgsql_pool_connections", database="other", state="busy") == 0
    assert _v(s, "kore_pgsql_pool_max_connections", database="other") == 1

    assert pgsql.dbquery_sync("db", "SELECT 1 AS a") == [{"a": "1"}]
    with pytest.raises(pgsql.PgsqlError):
        pgsql.dbquery_sync("db", "SELECT * FROM no_such_table")
    gs = [gevent.spawn(pgsql.dbquery_sync, "db", "SELECT pg_sleep(0.5)")
          for _ in range(3)]
    try:
        assert gevent_wait_for(lambda: pgsql.pool_stats()["db"]["waiting"] == 2, 10)
        s = _collect()
        assert _v(s, "kore_pgsql_pool_connections", database="db", state="busy") == 1
        assert _v(s, "kore_pgsql_pool_connections", database="db", state="idle") == 0
        assert _v(s, "kore_pgsql_pool_pending_requests", database="db") == 2
        assert _v(s, "kore_pgsql_pool_max_connections", database="db") == 1
    finally:
        gevent.joinall(gs, raise_error=True, timeout=30)
    s = _collect()
    assert _v(s, "kore_pgsql_pool_connections", database="db", state="idle") == 1
    assert _v(s, "kore_pgsql_pool_connections", database="db", state="busy") == 0
    assert _v(s, "kore_pgsql_pool_pending_requests", database="db") == 0
    assert _v(s, "kore_pgsql_queries_total", database="db") - base_q == 5
    assert _v(s, "kore_pgsql_query_errors_total", database="db") - base_e == 1

    # a pool replaced (dbsetup again) keeps its counters: they never decrease
    pgsql.dbsetup("db", pg_up.dsn)
    s = _collect()
    assert _v(s, "kore_pgsql_queries_total", database="db") - base_q == 5

    from kore_metrics.exposition import render
    exe = shutil.which("promtool")
    assert exe, "promtool missing (Debian package prometheus)"
    p = subprocess.run([exe, "check", "metrics"], input=render(s.families, s.values),
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr

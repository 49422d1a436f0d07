"""Fixtures of the pgsql tests: one real PostgreSQL server for the session.

The server is created by the tests themselves (initdb into a temporary
directory, served on a unix socket and a loopback port) and removed at the
end.  Tests that stop or restart it start it again before they finish.
"""

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pgcluster import Cluster, find_bindir  # noqa: E402


@pytest.fixture(scope="session")
def pg():
    if find_bindir() is None:
        pytest.skip("PostgreSQL is not installed (scripts/setup.sh --tests "
                    "installs it)")
    cluster = Cluster.create()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def pg_up(pg):
    """The session's server, running (restarted if a test left it down)."""
    if not pg.running:
        pg.start()
    yield pg
    if not pg.running:
        pg.start()


@pytest.fixture
def admin(pg_up):
    """A plain (non-pool) psycopg2 connection for checks, autocommit."""
    import psycopg2
    conn = psycopg2.connect(pg_up.dsn)
    conn.autocommit = True
    try:
        yield conn
    finally:
        try:
            conn.close()
        except Exception:
            pass


@pytest.fixture
def pgsql(pg_up):
    """kore_pgsql with the database 'db' declared and fresh pools."""
    import kore_pgsql
    from kore_pgsql import api
    api.forget()
    kore_pgsql.dbsetup("db", pg_up.dsn)
    try:
        yield kore_pgsql
    finally:
        api.forget()


@pytest.fixture
def pgsql_settings():
    """settings(conn_max=.., queue_limit=..): set the plugin's options for
    pools created afterwards (restored at the end of the test)."""
    from kore import runtime
    from kore_pgsql import plugin
    reg = runtime.registry()
    if "pgsql_conn_max" not in reg.options:
        plugin.kore_config_options(reg)
    touched = []

    def settings(**kw):
        for key, value in kw.items():
            name = "pgsql_" + key
            reg.set(name, value, "cli")
            touched.append(name)
    yield settings
    for name in touched:
        reg.reset(name, "cli")

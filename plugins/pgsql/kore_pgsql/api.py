"""``kore.dbsetup``, ``kore.register_database``, ``kore.dbquery`` and
``kore.dbquery_sync``.

Databases are declared by name (module level, ``koreapp.configure`` or a
worker's start-up code); each process that queries a database opens its own
pool of connections the first time it does.
"""

import os

import psycopg2
from psycopg2 import extensions as ext

from . import pool as _pool
from . import sql as _sql
from .errors import PgsqlError

DEFAULTS = {"pgsql_conn_max": 2, "pgsql_queue_limit": 1000,
            "pgsql_connect_timeout": 10.0, "pgsql_query_timeout": 0.0}

_databases = {}     # name -> conninfo (inherited through fork)
_pools = {}         # name -> Pool, only for the process in _pools_pid
_pools_pid = os.getpid()
_counts = {}        # name -> [queries, errors] of this process (metrics)
_orphans = []       # connections inherited through fork: never touched


def _setting(name):
    try:
        from kore import runtime
        return runtime.option(name)
    except Exception:
        return DEFAULTS[name]


def dbsetup(name, conninfo):
    """Associate a libpq connection string (``"host=/tmp dbname=hello"`` or
    ``"postgresql://user@host/db"``) with a short name for ``dbquery``.

    Declaring a name again replaces its connection string (and closes this
    process's pool for it).
    """
    if not isinstance(name, str) or not isinstance(conninfo, str):
        raise TypeError("dbsetup: name and conninfo must be str")
    if not name:
        raise ValueError("dbsetup: empty database name")
    try:
        ext.parse_dsn(conninfo)
    except psycopg2.ProgrammingError as exc:
        from kore import ConfigError
        raise ConfigError("dbsetup: bad connection string for database '%s': %s"
                          % (name, str(exc).strip())) from None
    _databases[name] = conninfo
    _check_pid()
    old = _pools.pop(name, None)
    if old is not None:
        old.close()
    return True


register_database = dbsetup


def databases():
    """The declared databases: ``{name: conninfo}`` (a copy)."""
    return dict(_databases)


def _check_pid():
    global _pools_pid
    if os.getpid() != _pools_pid:
        _after_fork()


def _after_fork():
    """In a forked child: set the parent's connections aside, unclosed."""
    global _pools_pid
    for p in _pools.values():
        _orphans.extend(p.idle)
        p.idle = []
        p.closed = True
    _pools.clear()
    _counts.clear()     # the child counts its own queries
    _pools_pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def get_pool(name):
    _check_pid()
    p = _pools.get(name)
    if p is None:
        conninfo = _databases.get(name)
        if conninfo is None:
            raise PgsqlError("pgsql error: no database named '%s' (declare it "
                             "with kore.dbsetup)" % (name,), db=name)
        p = _pools[name] = _pool.Pool(
            name, conninfo, conn_max=_setting("pgsql_conn_max"),
            queue_limit=_setting("pgsql_queue_limit"),
            connect_timeout=_setting("pgsql_connect_timeout"))
        p.query_timeout = _setting("pgsql_query_timeout")
    return p


def close_pools():
    """Close this process's connections (worker exit, before fork)."""
    _check_pid()
    for p in _pools.values():
        p.close()
    _pools.clear()


def forget():
    """Forget every declared database (application reload)."""
    close_pools()
    _databases.clear()


def pool_stats():
    """``{name: {"open", "idle", "busy", "waiting", ...}}`` for this process."""
    _check_pid()
    return {name: p.stats() for name, p in _pools.items()}


def _check_params(params):
    if params is None:
        return ()
    if not isinstance(params, (list, tuple)):
        raise RuntimeError("pgsql: params keyword must be a list")
    for i, item in enumerate(params):
        if item is not None and type(item) not in (str, bytes):
            raise RuntimeError("pgsql: item %d is not a string or bytes" % i)
    return params


def _prepare(db, query, params, binary):
    if not isinstance(db, str) or not isinstance(query, str):
        raise TypeError("dbquery: db and query must be str")
    params = _check_params(params)
    if binary is not True and binary is not False:
        raise RuntimeError("pgsql: binary not True or False")
    if not params:
        return query, None
    text, order = _sql.translate(query)
    needed = max(order) + 1 if order else 0
    if needed > len(params):
        raise PgsqlError("failed to perform query: ERROR:  there is no parameter $%d"
                         % needed, sqlstate="42P02",
                         message="there is no parameter $%d" % needed, db=db)
    if needed < len(params):
        raise PgsqlError("failed to perform query: ERROR:  bind message supplies %d "
                         "parameters, but prepared statement \"\" requires %d"
                         % (len(params), needed), sqlstate="08P01",
                         message="bind message supplies %d parameters, but prepared "
                         "statement \"\" requires %d" % (len(params), needed), db=db)
    return text, [params[i] for i in order]


def _execute(db, text, args, binary, timeout):
    p = get_pool(db)
    c = _counts.get(db)
    if c is None:
        c = _counts[db] = [0, 0]
    c[0] += 1
    if timeout is None:
        timeout = p.query_timeout
    try:
        if not timeout:
            return _pool.run(p, text, args, binary)
        return _pool.run_with_timeout(p, text, args, binary, timeout)
    except PgsqlError:
        c[1] += 1
        raise


def metrics():
    """``{name: (stats or None, queries, errors)}`` of this process for
    every declared database and every one queried since (a pool's stats are
    None before its first query)."""
    _check_pid()
    out = {}
    for name in set(_databases) | set(_counts):
        p = _pools.get(name)
        queries, errors = _counts.get(name, (0, 0))
        out[name] = (p.stats() if p is not None else None, queries, errors)
    return out


class DbQuery:
    """The awaitable ``kore.dbquery`` returns.

    Awaiting it blocks the calling greenlet (never the worker) until the
    result is there, and returns it without suspending the coroutine.
    """

    __slots__ = ("db", "query", "_text", "_args", "binary", "timeout")

    def __init__(self, db, query, text, args, binary, timeout):
        self.db = db
        self.query = query
        self._text = text
        self._args = args
        self.binary = binary
        self.timeout = timeout

    def __await__(self):
        return _execute(self.db, self._text, self._args, self.binary, self.timeout)
        yield  # pragma: no cover  (makes __await__ a generator)

    def result(self):
        """Run the query now, blocking the calling greenlet."""
        return _execute(self.db, self._text, self._args, self.binary, self.timeout)

    def __repr__(self):
        return "<kore.pgsql db=%r query=%r>" % (self.db, self.query)


def dbquery(db, query, params=None, binary=False, timeout=None):
    """``await kore.dbquery(db, query, params=[...])``: run ``query`` with
    ``$1, $2, ...`` bound to ``params`` (str, bytes or None) on a pooled
    connection of database ``db``.

    Returns a list of ``{column: value}`` dicts (str values, bytes for
    bytea, None for NULL; every value as bytes with ``binary=True``), or
    None for statements that return no rows.  Raises PgsqlError (a
    RuntimeError) carrying ``sqlstate`` when the query fails.  ``timeout``
    (seconds, an extension) cancels the query on the server when it runs
    longer and raises PgsqlTimeout.
    """
    text, args = _prepare(db, query, params, binary)
    return DbQuery(db, query, text, args, binary, timeout)


def dbquery_sync(db, query, params=None, binary=False, timeout=None):
    """The same query run synchronously: returns the result directly.

    For code that is not a coroutine (module level, ``configure``,
    ``workerstart``, a plain function handler).  It blocks only the calling
    greenlet: other requests of the worker keep running.
    """
    text, args = _prepare(db, query, params, binary)
    return _execute(db, text, args, binary, timeout)


def req_pgsql(req, db, query, params=None, binary=False, timeout=None):
    """``await req.pgsql(db, query, params=[...])``: Kore 3's older form."""
    return dbquery(db, query, params=params, binary=binary, timeout=timeout)

"""Connection pools, one per database in each process, and the query runner.

A pool is created the first time a process queries a database, so workers
never share a connection with the master or with each other: connections a
process inherits through ``fork`` are set aside untouched (closing them would
end the parent's session on the server).

psycopg2 runs in "green" mode: the wait callback below (psycogreen's gevent
loop, plus cancellation) parks the calling greenlet on the connection's
socket, so a query blocks only its own greenlet.
"""

import collections
import os
import time

import gevent
import psycopg2
import psycogreen.gevent
from gevent import monkey
from gevent.event import AsyncResult
from gevent.socket import wait_read, wait_write
from psycopg2 import extensions as ext

from .errors import PgsqlError, PgsqlPoolFull, PgsqlTimeout, PgsqlUnavailable

# How long a cancelled query may take to come back before its connection is
# given up on (closed) instead of being returned to the pool.
CANCEL_DRAIN = 2.0

# SQLSTATEs the server sends when it ends a session on its own (shutdown,
# crash recovery): a query on a pooled connection that failed with one of
# these never ran to completion and is retried once on a new connection.
_SESSION_ENDED = frozenset(("57P01", "57P02", "57P03"))

_poll = monkey.get_original("select", "poll")
try:
    _POLLIN = monkey.get_original("select", "POLLIN")
except (AttributeError, ImportError):  # pragma: no cover
    import select as _select
    _POLLIN = _select.POLLIN


class KoreConnection(ext.connection):
    """A psycopg2 connection that remembers whether a query is running and
    whether the greenlet waiting on it was interrupted."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kore_active = False
        self.kore_interrupt = None
        self.kore_released = 0.0


class _DrainTimeout(Exception):
    pass


def wait_callback(conn, timeout=None):
    """psycopg2's wait callback: psycogreen's gevent loop for other
    connections; for pool connections an interruption (``GreenletExit`` from
    a killed handler, a ``gevent.Timeout``) during a query cancels the query
    on the server and waits briefly for the connection to become idle again
    before the interruption is raised by the caller."""
    if not isinstance(conn, KoreConnection):
        return psycogreen.gevent.gevent_wait_callback(conn, timeout)
    interrupt = None
    deadline = None
    while True:
        try:
            state = conn.poll()
            if state == ext.POLL_OK:
                return
            wait_for = timeout
            if deadline is not None:
                wait_for = deadline - time.monotonic()
                if wait_for <= 0:
                    raise _DrainTimeout()
            if state == ext.POLL_READ:
                wait_read(conn.fileno(), timeout=wait_for, timeout_exc=_DrainTimeout)
            elif state == ext.POLL_WRITE:
                wait_write(conn.fileno(), timeout=wait_for, timeout_exc=_DrainTimeout)
            else:
                raise psycopg2.OperationalError("bad result from poll: %r" % (state,))
        except BaseException as exc:
            if interrupt is not None:
                # a second interruption or the drain took too long: give up
                # on the connection (psycopg2 closes it)
                raise interrupt if isinstance(exc, _DrainTimeout) else exc
            if isinstance(exc, psycopg2.Error) or not conn.kore_active:
                raise
            interrupt = exc
            conn.kore_interrupt = exc
            try:
                conn.cancel()
            except Exception:
                raise exc from None
            deadline = time.monotonic() + CANCEL_DRAIN


def install_wait_callback():
    ext.set_wait_callback(wait_callback)


# ---------------------------------------------------------------------------
# result conversion: text for everything, bytes for bytea (as Kore's text
# result format gives, except that Kore returns bytea in its \x hex form)
# ---------------------------------------------------------------------------

_BYTEA = 17


def _text(value, cursor):
    return value


def _bytea(value, cursor, _binary=psycopg2.BINARY):
    if value is None:
        return None
    return bytes(_binary(value, cursor))


_TEXT_OIDS = tuple(oid for oid in ext.string_types if oid != _BYTEA)
TEXT = ext.new_type(_TEXT_OIDS, "KORE_TEXT", _text)
BYTES = ext.new_type((_BYTEA,), "KORE_BYTEA", _bytea)


def result_rows(cur, binary=False):
    """Kore's result shape: a list of ``{column: value}``, or None when the
    statement returns no rows at all (INSERT, CREATE ...)."""
    desc = cur.description
    if desc is None:
        return None
    names = [d[0] for d in desc]
    rows = cur.fetchall()
    if binary:
        return [{k: (v.encode("utf-8") if isinstance(v, str) else v)
                 for k, v in zip(names, row)} for row in rows]
    return [dict(zip(names, row)) for row in rows]


def connect(conninfo, timeout=None):
    """Open one pool connection (cooperatively); raise PgsqlUnavailable."""
    timer = gevent.Timeout(timeout) if timeout else None
    if timer is not None:
        timer.start()
    try:
        conn = psycopg2.connect(conninfo, connection_factory=KoreConnection,
                                client_encoding="UTF8")
    except psycopg2.Error as exc:
        text = " ".join(str(exc).split())
        if not text.startswith("connection to server"):
            text = "connection to %s failed: %s" % (_where(conninfo), text)
        raise PgsqlUnavailable("pgsql error: cannot connect: %s" % text,
                               sqlstate=exc.pgcode or "08001", message=text) from None
    except gevent.Timeout as t:
        if t is not timer:
            raise
        raise PgsqlUnavailable("pgsql error: cannot connect: connection to %s: no "
                               "answer within %gs" % (_where(conninfo), timeout),
                               sqlstate="08001") from None
    finally:
        if timer is not None:
            timer.close()
    conn.autocommit = True
    ext.register_type(TEXT, conn)
    ext.register_type(BYTES, conn)
    return conn


def _where(conninfo):
    """Say which server a connection string points to (no password)."""
    try:
        d = ext.parse_dsn(conninfo)
    except psycopg2.Error:
        return "the server"
    host = d.get("host") or d.get("hostaddr") or os.environ.get("PGHOST") or "localhost"
    port = d.get("port") or os.environ.get("PGPORT") or "5432"
    kind = "socket directory" if host.startswith("/") else "server at"
    return "%s %s port %s" % (kind, host, port)


def _usable(conn):
    """An idle pooled connection is usable when it is open and the server
    sent nothing since (a session the server ended has a FATAL message or
    EOF waiting on its socket)."""
    if conn.closed:
        return False
    try:
        p = _poll()
        p.register(conn.fileno(), _POLLIN)
        return not p.poll(0)
    except Exception:
        return False


def _close(conn):
    try:
        conn.close()
    except Exception:
        pass


class Pool:
    """The connections of one database in one process."""

    def __init__(self, name, conninfo, conn_max=2, queue_limit=1000,
                 connect_timeout=10.0):
        self.name = name
        self.conninfo = conninfo
        self.conn_max = conn_max
        self.queue_limit = queue_limit
        self.connect_timeout = connect_timeout
        self.pid = os.getpid()
        self.idle = []
        self.count = 0              # open connections, idle or busy, + opening
        self.waiters = collections.deque()
        self.closed = False
        self.query_timeout = 0.0

    def __repr__(self):
        return "<kore_pgsql.Pool %r %d/%d open, %d idle, %d waiting>" % (
            self.name, self.count, self.conn_max, len(self.idle), len(self.waiters))

    def stats(self):
        return {"open": self.count, "idle": len(self.idle),
                "busy": self.count - len(self.idle), "waiting": len(self.waiters),
                "conn_max": self.conn_max, "queue_limit": self.queue_limit}

    def acquire(self):
        """Return ``(conn, reused)``; block the greenlet while the pool is
        busy; raise PgsqlPoolFull or PgsqlUnavailable."""
        if self.closed:
            raise PgsqlError("pgsql error: database '%s' was removed" % self.name,
                             db=self.name)
        while True:
            while self.idle:
                conn = self.idle.pop()
                if _usable(conn):
                    return conn, True
                self._discard(conn)
            if self.count < self.conn_max:
                self.count += 1
                try:
                    conn = connect(self.conninfo, self.connect_timeout)
                except BaseException as exc:
                    self.count -= 1
                    self._wake_one()
                    if isinstance(exc, PgsqlError):
                        exc.db = self.name
                        exc.args = ("pgsql error: database '%s': %s"
                                    % (self.name, exc.args[0][len("pgsql error: "):]),)
                        exc.message = exc.args[0]
                    raise
                return conn, False
            if len(self.waiters) >= self.queue_limit:
                raise PgsqlPoolFull(
                    "pgsql error: database '%s': all %d connections are busy and "
                    "%d queries already wait for one (pgsql_queue_limit)"
                    % (self.name, self.conn_max, len(self.waiters)), db=self.name)
            waiter = AsyncResult()
            self.waiters.append(waiter)
            try:
                conn = waiter.get()
            except BaseException:
                try:
                    self.waiters.remove(waiter)
                except ValueError:
                    pass
                if waiter.ready() and waiter.value is not None:
                    self.release(waiter.value)
                elif waiter.ready():
                    self._wake_one()
                raise
            if conn is not None:
                return conn, True
            # a connection was discarded: loop and open a new one

    def release(self, conn, broken=False):
        """Give a connection back: to the first waiter, to the idle list, or
        close it when it is broken (and let a waiter open a new one)."""
        if os.getpid() != self.pid:
            return
        if not broken and not conn.closed:
            try:
                if conn.info.transaction_status != ext.TRANSACTION_STATUS_IDLE:
                    # autocommit: conn.rollback() would do nothing
                    conn.cursor().execute("ROLLBACK")
            except Exception:
                broken = True
        if self.closed or broken or conn.closed:
            self._discard(conn)
            return
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.ready():
                waiter.set(conn)
                return
        conn.kore_released = time.monotonic()
        self.idle.append(conn)

    def _discard(self, conn):
        _close(conn)
        self.count -= 1
        self._wake_one()

    def _wake_one(self):
        if self.waiters and self.count < self.conn_max:
            waiter = self.waiters.popleft()
            waiter.set(None)

    def close(self):
        """Close the idle connections; busy ones are closed when released."""
        self.closed = True
        if os.getpid() != self.pid:
            return
        idle, self.idle = self.idle, []
        for conn in idle:
            _close(conn)
            self.count -= 1
        while self.waiters:
            self.waiters.popleft().set_exception(
                PgsqlError("pgsql error: database '%s' was removed" % self.name,
                           db=self.name))


def run(pool, sql, args, binary=False, retry=True):
    """Run one statement on a pooled connection and return Kore's result."""
    conn, reused = pool.acquire()
    broken = True
    try:
        conn.kore_interrupt = None
        conn.kore_active = True
        try:
            cur = conn.cursor()
            cur.execute(sql, args)
            rows = result_rows(cur, binary)
        except psycopg2.Error as exc:
            if conn.kore_interrupt is not None:
                broken = bool(conn.closed)
                raise conn.kore_interrupt from None
            broken = bool(conn.closed)
            ended = broken and (exc.pgcode in _SESSION_ENDED or exc.pgcode is None)
            if ended and reused and retry:
                pass  # retried below, after the connection went back
            elif ended:
                # the server ended the session (shut down, restarting) and
                # a retry is not possible: the database is unavailable (503)
                raise query_error(exc, pool.name, PgsqlUnavailable) from None
            else:
                raise query_error(exc, pool.name) from None
        else:
            broken = False
            if conn.kore_interrupt is not None:
                # the query finished before the cancel reached the server
                raise conn.kore_interrupt
            return rows
        finally:
            conn.kore_active = False
            conn.kore_interrupt = None
    finally:
        pool.release(conn, broken)
    return run(pool, sql, args, binary, retry=False)


def query_error(exc, db, cls=None):
    diag = exc.diag
    text = (exc.pgerror or str(exc)).strip()
    return (cls or PgsqlError)("failed to perform query: %s" % text, sqlstate=exc.pgcode,
                      message=diag.message_primary or text, detail=diag.message_detail,
                      hint=diag.message_hint, db=db)


def run_with_timeout(pool, sql, args, binary, timeout):
    timer = gevent.Timeout(timeout)
    timer.start()
    try:
        return run(pool, sql, args, binary)
    except gevent.Timeout as t:
        if t is not timer:
            raise
        raise PgsqlTimeout("pgsql error: query on database '%s' cancelled after %gs"
                           % (pool.name, timeout), sqlstate="57014",
                           db=pool.name) from None
    finally:
        timer.close()

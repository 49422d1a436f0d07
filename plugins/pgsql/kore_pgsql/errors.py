"""Exceptions raised by kore.dbquery and friends.

All of them are ``RuntimeError`` subclasses, so code written for Kore (which
raises ``RuntimeError("failed to perform query: ...")``) keeps working.
"""


class PgsqlError(RuntimeError):
    """A query failed.

    ``sqlstate`` (alias ``pgcode``) is the five-character SQLSTATE or None
    when the failure did not come from the server, ``message`` the server's
    primary message, ``detail`` / ``hint`` its optional fields and ``db`` the
    database name the query was sent to.  ``http_status`` is the status the
    http plugin answers with when the exception leaves a handler.
    """

    http_status = 500

    def __init__(self, text, sqlstate=None, message=None, detail=None,
                 hint=None, db=None):
        super().__init__(text)
        self.sqlstate = sqlstate
        self.message = message if message is not None else text
        self.detail = detail
        self.hint = hint
        self.db = db

    @property
    def pgcode(self):
        return self.sqlstate

    @property
    def pgerror(self):
        return self.args[0] if self.args else ""


class PgsqlUnavailable(PgsqlError):
    """No connection to the database could be opened (server down, wrong
    address, authentication refused); answered with 503."""

    http_status = 503


class PgsqlPoolFull(PgsqlError):
    """Every connection of the pool is busy and ``pgsql_queue_limit``
    queries already wait for one; answered with 503."""

    http_status = 503


class PgsqlTimeout(PgsqlError):
    """The query ran past the ``timeout`` given to dbquery; it was cancelled
    on the server (SQLSTATE 57014)."""

    http_status = 504

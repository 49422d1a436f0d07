"""kore-plugin-pgsql: Kore's asynchronous PostgreSQL API on psycopg2.

Adds ``kore.dbsetup`` (``kore.register_database``), ``kore.dbquery``,
``kore.dbquery_sync`` and ``req.pgsql``.  See docs/pgsql.md.
"""

from .api import (DbQuery, databases, dbquery, dbquery_sync, dbsetup,  # noqa: F401
                  pool_stats, register_database)
from .errors import (PgsqlError, PgsqlPoolFull, PgsqlTimeout,  # noqa: F401
                     PgsqlUnavailable)
from .pool import install_wait_callback as _install

__all__ = ["dbsetup", "register_database", "dbquery", "dbquery_sync",
           "databases", "pool_stats", "DbQuery", "PgsqlError",
           "PgsqlUnavailable", "PgsqlPoolFull", "PgsqlTimeout"]

# Queries block only the calling greenlet, wherever the package is used.
_install()

"""Asynchronous PostgreSQL queries from a kore application.

    korectl run app.py                      # database "host=/tmp dbname=test"
    korectl run app.py "host=127.0.0.1 port=5432 user=me dbname=test"

Create the table first: psql -d test -f schema.sql
"""

import json

import kore


class KoreApp:
    def configure(self, args):
        # The database is declared once, in the master; every worker opens
        # its own connections to it the first time it runs a query.
        conninfo = args[1] if len(args) > 1 else "host=/tmp dbname=test"
        kore.dbsetup("db", conninfo)

        kore.server("default", ip="127.0.0.1", port="8888", tls=False)
        domain = kore.domain("*", attach="default")
        domain.route("/", self.coders, methods=["get"])
        domain.route("/hello", self.hello, methods=["get"])
        domain.route("/slow", self.slow, methods=["get"])
        domain.route("^/coder/([a-z]+)$", self.coder, methods=["get"])

    def hello(self, req):
        # A plain handler: answers at once, whatever the queries are doing.
        req.response(200, b"hello\n")

    async def coders(self, req):
        # The worker serves other requests while this one waits for rows.
        rows = await kore.dbquery("db", "SELECT name, lang FROM coders ORDER BY name")
        self.json(req, 200, rows)

    async def coder(self, req, name):
        # Kore 3's form of the same call, with a parameter.  A failing query
        # raises kore_pgsql.PgsqlError (a RuntimeError carrying .sqlstate);
        # left uncaught, the client gets a 500.
        rows = await req.pgsql("db", "SELECT name, lang FROM coders WHERE name = $1",
                               params=[name])
        if not rows:
            self.json(req, 404, {"error": "no coder named %s" % name})
            return
        self.json(req, 200, rows[0])

    async def slow(self, req):
        # Ten seconds on the server.  If the client goes away first, the
        # handler is cancelled and so is the query on the server.
        rows = await kore.dbquery("db", "SELECT 'done' AS slow FROM pg_sleep(10)")
        self.json(req, 200, rows)

    @staticmethod
    def json(req, status, obj):
        req.response_header("content-type", "application/json")
        req.response(status, json.dumps(obj).encode("utf-8"))


koreapp = KoreApp()

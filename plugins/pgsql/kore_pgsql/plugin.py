"""The kore plugin: options, ``kore`` names and per-worker pools."""

from kore import hookimpl
from kore.config import Option

from . import api
from .pool import install_wait_callback

OWNER = "kore-plugin-pgsql"


@hookimpl
def kore_http_request_attributes():
    # Kore 3's req.pgsql(...) (the http plugin installs it)
    return {"pgsql": api.req_pgsql}


@hookimpl
def kore_config_options(registry):
    registry.add(Option("pgsql_conn_max", "int", 2, "connections each worker "
                        "opens at most per database", minimum=1, owner=OWNER))
    registry.add(Option("pgsql_queue_limit", "int", 1000, "queries that may wait "
                        "for a busy pool per database and worker before dbquery "
                        "fails (503 when uncaught)", minimum=0, owner=OWNER))
    registry.add(Option("pgsql_connect_timeout", "float", 10.0, "seconds a new "
                        "database connection may take to open", minimum=0.1,
                        owner=OWNER))
    registry.add(Option("pgsql_query_timeout", "float", 0.0, "seconds a query may "
                        "run before it is cancelled on the server (0: no limit; "
                        "dbquery's timeout= overrides it)", minimum=0, owner=OWNER))


@hookimpl
def kore_namespace():
    install_wait_callback()
    return {"dbsetup": api.dbsetup, "register_database": api.register_database,
            "dbquery": api.dbquery, "dbquery_sync": api.dbquery_sync}


@hookimpl
def kore_app_reset():
    api.forget()


@hookimpl
def kore_master_bind(arbiter):
    # connections the master opened (dbquery_sync in configure) are closed
    # before workers are forked: each worker opens its own
    api.close_pools()


@hookimpl
def kore_worker_init(worker):
    install_wait_callback()
    api._check_pid()


@hookimpl
def kore_worker_shutdown(worker):
    api.close_pools()



@hookimpl
def kore_metrics_collect(samples):
    # kore-plugin-metrics: this worker's pools (gauges summed over the
    # workers) and statements (counters), one label set per declared database
    # (OpenTelemetry's db.client.connection.* with the pool named for it)
    fams = (
        ("kore_pgsql_pool_connections", "gauge", "pooled PostgreSQL connections "
         "by state (busy: running a statement or opening)"),
        ("kore_pgsql_pool_max_connections", "gauge", "PostgreSQL connections the "
         "pools may open (pgsql_conn_max per worker)"),
        ("kore_pgsql_pool_pending_requests", "gauge", "statements waiting for a "
         "busy pool's connection"),
        ("kore_pgsql_queries_total", "counter", "statements run (dbquery, "
         "dbquery_sync, req.pgsql)"),
        ("kore_pgsql_query_errors_total", "counter", "statements that failed "
         "(query error, timeout, database unavailable, pool full)"))
    stats = api.metrics()
    if not stats:
        return
    for name, kind, text in fams:
        samples.family(name, kind, text)
    for db, (st, queries, errors) in stats.items():
        lab = (("database", db),)
        if st is None:
            st = {"idle": 0, "busy": 0, "waiting": 0,
                  "conn_max": api._setting("pgsql_conn_max")}
        samples.set("kore_pgsql_pool_connections", lab + (("state", "idle"),), st["idle"])
        samples.set("kore_pgsql_pool_connections", lab + (("state", "busy"),), st["busy"])
        samples.set("kore_pgsql_pool_max_connections", lab, st["conn_max"])
        samples.set("kore_pgsql_pool_pending_requests", lab, st["waiting"])
        samples.set("kore_pgsql_queries_total", lab, queries)
        samples.set("kore_pgsql_query_errors_total", lab, errors)

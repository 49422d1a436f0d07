"""Hooks of kore-plugin-metrics.

Master: ``kore_master_bind`` (the ``--metrics-bind`` socket),
``kore_master_start`` (the /metrics server, the worker watcher, the CPU and
RSS sampler), ``kore_master_message`` (snapshots, recycle notes).
Workers: ``kore_worker_init``/``serve``/``stop_accepting``/``shutdown``,
``kore_request_done`` and ``kore_connection_open``/``close`` (counting),
``kore_worker_message`` (pull, cluster readiness).
HTTP: ``kore_http_routes`` (``/healthz``, ``/readyz``).
"""

from kore import hookimpl, runtime
from kore.config import ConfigError

from . import health, hookspecs, recycle
from . import worker as W
from .options import options

_SOCK = {}          # "metrics" -> the master's listening socket
_MASTER = {}


@hookimpl
def kore_add_hookspecs(pm):
    pm.add_hookspecs(hookspecs)


@hookimpl
def kore_config_options(registry):
    for opt in options():
        registry.add(opt)


@hookimpl
def kore_namespace():
    return {
        "set_worker_critical_point": recycle.set_worker_critical_point,
        "ready_check": health.ready_check,
    }


@hookimpl
def kore_app_loaded(app):
    from kore.log import LOG
    LOG.json = runtime.option("log_format") == "json"


@hookimpl
def kore_app_reset():
    recycle.reset()
    del health.CHECKS[:]


@hookimpl
def kore_http_routes(routes):
    hp, rp = runtime.option("health_path"), runtime.option("ready_path")
    for name, p in (("health_path", hp), ("ready_path", rp)):
        if p and not p.startswith("/"):
            raise ConfigError("%s: '%s' must start with '/' (e.g. /healthz)" % (name, p))
    if not (hp or rp):
        return
    bind = runtime.option("health_bind")
    domains = [routes.server("health", bind)] if bind else None
    for p, fn in ((hp, health.healthz), (rp, health.readyz)):
        if not p:
            continue
        targets = domains
        if targets is None:
            # the application's own route of that path wins on its domain
            targets = [d for d in routes.domains() if p not in d.exact]
            if len(targets) < len(routes.domains()):
                from kore.log import LOG, LOG_NOTICE
                LOG.write(LOG_NOTICE, "health: the application routes %s itself; "
                          "kore-plugin-metrics leaves it alone there" % p)
        if targets:
            routes.route(p, fn, methods=["get", "head"], domains=targets,
                         owner="kore-plugin-metrics")
    if not runtime.option("health_log"):
        from kore_http import accesslog
        accesslog.log_off(*[p for p in (hp, rp) if p])


# -- master ---------------------------------------------------------------------

@hookimpl
def kore_master_bind(arbiter):
    from . import master
    addr = runtime.option("metrics_bind")
    sp = runtime.option("status_path")
    if sp and not sp.startswith("/"):
        raise ConfigError("status_path: '%s' must start with '/' (e.g. /status)" % sp)
    from . import status
    status.options_nets()           # a bad status_allow stops start-up here
    if addr:
        _SOCK["metrics"] = arbiter.listen(("kore-plugin-metrics", addr),
                                          lambda: master.bind_socket(addr))


@hookimpl
def kore_master_start(arbiter):
    from . import master
    m = _MASTER["m"] = master.Master(arbiter)
    arbiter.spawn(m.watch)
    rss, cpu = runtime.option("max_worker_rss"), recycle.CRITICAL
    if rss or (cpu is not None and cpu.interval):
        arbiter.spawn(m.sample_loop, rss, cpu if cpu is not None and cpu.interval else None)
    sock = _SOCK.get("metrics")
    if sock is not None:
        arbiter.spawn(master.serve, m, sock)


@hookimpl
def kore_master_message(arbiter, msg):
    if not msg.kind.startswith("metrics."):
        return None
    m = _MASTER.get("m")
    return m.message(msg) if m is not None else True


# -- workers --------------------------------------------------------------------

@hookimpl
def kore_worker_init(worker):
    _MASTER.clear()
    sock = _SOCK.pop("metrics", None)
    if sock is not None:
        try:
            sock.close()        # the master's listener, inherited by the fork
        except OSError:
            pass
    import sys
    m = sys.modules.get("kore_metrics.master")
    if m is not None:
        m.close_inherited()
    W.init(worker)
    _count_requests()


@hookimpl
def kore_worker_serve(worker):
    W.serve(worker)


@hookimpl
def kore_worker_stop_accepting(worker):
    W.stop_accepting(worker)


@hookimpl
def kore_worker_shutdown(worker):
    W.shutdown(worker)


@hookimpl
def kore_worker_message(worker, msg):
    return W.message(worker, msg)


class Counting:
    """``kore_request_done``, registered in a worker only when something
    reads the counts: the ``--metrics-bind`` listener (its /metrics and
    status page are the only readers) or ``--max-requests``.  Without
    either, an answered request costs this plugin nothing (about 5% of a
    hello-world request's CPU otherwise)."""

    kore_request_done = staticmethod(hookimpl(specname="kore_request_done")(W.request_done))


def _count_requests():
    pm = runtime.plugin_manager()
    if pm is None or pm.has_plugin("kore-plugin-metrics.counting"):
        return
    if runtime.option("metrics_bind") or runtime.option("max_requests"):
        pm.register(Counting, name="kore-plugin-metrics.counting")


@hookimpl
def kore_connection_open(conn):
    W.connection_open(conn)


@hookimpl
def kore_connection_close(conn):
    W.connection_close(conn)

"""kore-plugin-http: the hooks that plug the HTTP server into the kernel."""

from kore import hookimpl, runtime

from . import declare as _declare
from . import hookspecs, listeners, net, pipeline, socketify_app, tls
from .h1.server import serve as h1_serve
from .handlechain import CHAIN
from .options import options


@hookimpl
def kore_add_hookspecs(pm):
    pm.add_hookspecs(hookspecs)


@hookimpl
def kore_config_options(registry):
    for opt in options():
        registry.add(opt)


@hookimpl
def kore_namespace():
    from .extend import install_request_attributes
    install_request_attributes()
    socketify_app.install()
    return {
        "server": _declare.server,
        "domain": _declare.domain,
        "route": _declare.route,
        "prerequest": _declare.prerequest,
        "mount": _declare.mount,
        "json_serializer": _declare.json_serializer,
        "log_off": _log_off,
    }


def _log_off(*paths):
    from . import accesslog
    accesslog.log_off(*paths)


@hookimpl
def kore_app_reset():
    _declare.reset()
    socketify_app.reset()
    from . import accesslog, filemaps
    accesslog.OFF = accesslog.LogOff()
    filemaps._media = None


@hookimpl
def kore_app_loaded(app):
    from .extend import declare_plugin_routes
    socketify_app.declare()
    _declare.resolve(app, runtime.option("bind"))
    declare_plugin_routes()
    from .cli import no_route_warning
    msg = no_route_warning()
    if msg and msg not in runtime.registry().warnings:
        runtime.registry().warnings.append(msg)


@hookimpl
def kore_cli_commands(subparsers, app_arguments, load_app):
    from .cli import add_command
    add_command(subparsers, app_arguments, load_app)


@hookimpl
def kore_master_bind(arbiter):
    tls.seed_from_rand_file()
    listeners.master_bind(arbiter)


@hookimpl
def kore_master_stop(arbiter):
    tls.save_rand_file()


@hookimpl
def kore_worker_serve(worker):
    from . import accesslog
    from .settings import SETTINGS
    net.worker_serve(worker)
    SETTINGS.accesslog = accesslog.configure()
    if SETTINGS.wrapped:
        CHAIN.load(kore_http_handle)
    socketify_app.worker_start()


@hookimpl
def kore_worker_stop_accepting(worker):
    net.stop_accepting(worker)


@hookimpl
def kore_worker_busy(worker):
    return net.busy(worker)


@hookimpl
def kore_worker_shutdown(worker):
    net.shutdown(worker)
    socketify_app.worker_stop()
    from . import accesslog
    accesslog.stop()


@hookimpl
def kore_reopen_logs():
    from . import accesslog
    accesslog.reopen()


@hookimpl
def kore_tls_alpn(server):
    return ["http/1.1"]


@hookimpl(trylast=True)
def kore_connection_protocol(conn, alpn, preface):
    if alpn is None or alpn == "http/1.1":
        return h1_serve
    return None


@hookimpl
def kore_http_handle(req, target):
    return pipeline.run_target(req, target)

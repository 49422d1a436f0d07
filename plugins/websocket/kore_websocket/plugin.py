"""kore-plugin-websocket: the hooks that plug websockets into the kernel."""

from kore import hookimpl
from kore.config import Option

from . import backplane, hookspecs
from .handshake import websocket_handshake
from .service import SERVICE

OWNER = "kore-plugin-websocket"


@hookimpl
def kore_add_hookspecs(pm):
    pm.add_hookspecs(hookspecs)


@hookimpl
def kore_config_options(registry):
    registry.add(Option("websocket_maxframe", "int", 16384, "largest websocket frame "
                        "payload and message in bytes (close 1009 above)", minimum=1,
                        owner=OWNER))
    registry.add(Option("websocket_timeout", "int", 120, "seconds a websocket client "
                        "may stay silent: a ping goes out after half of it, the "
                        "connection closes (1001) after all of it", minimum=1,
                        owner=OWNER))
    registry.add(Option("websocket_deflate", "yesno", True, "accept permessage-deflate "
                        "(RFC 7692) when a client offers it", owner=OWNER))


    registry.add(Option("backplane", "str", "local", "how broadcasts and topics reach "
                        "the other workers and hosts: 'local' (through the master), "
                        "redis://[:password@]host:port/db or rediss:// (Redis pub/sub), "
                        "redis-streams+redis://... (Redis Streams, resumable), or "
                        "another installed driver's name or URL",
                        flags=("--backplane",), owner=OWNER))
    registry.add(Option("backplane_prefix", "str", "kore", "prefix of the backplane's "
                        "channel, stream and lock keys (servers that share a Redis but "
                        "not their clients use different prefixes)", owner=OWNER))
    registry.add(Option("backplane_max_message", "int", 1048576, "largest frame in bytes "
                        "kore.publish / a GLOBAL broadcast sends through a networked "
                        "backplane (ValueError above)", minimum=64, owner=OWNER))
    registry.add(Option("backplane_buffer", "int", 100000, "frames a worker keeps while "
                        "its backplane is disconnected (redis-streams sends them on "
                        "reconnect; beyond it they are dropped and counted)", minimum=1,
                        owner=OWNER))
    registry.add(Option("backplane_health_interval", "float", 1.0, "seconds between the "
                        "backplane's health checks (a PING that must come back within "
                        "the same time, else reconnect)", minimum=0.1, owner=OWNER))


@hookimpl
def kore_master_bind(arbiter):
    # A wrong backplane stops start-up here, once, instead of in every worker.
    from kore import runtime
    from .spec import parse
    name, url = parse(runtime.option("backplane"))
    cls = backplane.load_driver(name)
    check = getattr(cls, "check_url", None)
    if check is not None:
        check(url)


@hookimpl
def kore_master_stop(arbiter):
    backplane._LOCKS.remove()      # the local driver's lock files of this server


@hookimpl
def kore_http_request_attributes():
    # req.websocket_handshake(...): the http plugin installs it
    return {"websocket_handshake": websocket_handshake}


@hookimpl
def kore_namespace():
    pubsub = SERVICE.pubsub
    return {
        "websocket_broadcast": pubsub.websocket_broadcast,
        "publish": pubsub.publish,
        "num_subscribers": pubsub.num_subscribers,
    }


@hookimpl
def kore_ready_degraded():
    # /readyz (kore-plugin-metrics): a backplane that lost its connection is
    # degraded, not failed: this server still serves and delivers among its
    # own workers while it reconnects.
    st = backplane.health()
    if st.get("state") == "degraded":
        why = st.get("last_error") or "not connected yet"
        return "backplane %s degraded: %s" % (st.get("driver"), why)
    return None


@hookimpl
def kore_metrics_collect(samples):
    # kore-plugin-metrics: the backplane's status() as metrics of this worker
    # (counters cumulative per worker, gauges summed over the live workers),
    # and this worker's open and accepted connections
    samples.family("kore_websocket_connections", "gauge",
                   "open websocket connections")
    samples.set("kore_websocket_connections", (), len(SERVICE.connections))
    samples.family("kore_websocket_connections_total", "counter",
                   "websocket connections accepted (handshake completed)")
    samples.set("kore_websocket_connections_total", (), SERVICE.accepted)
    bp = backplane.current()
    if bp is None or type(bp) in (backplane.Backplane, backplane.LocalBackplane):
        return          # one host: nothing that can be lost or disconnected
    st = bp.status()
    labels = (("driver", str(st.get("driver", bp.name))),)
    samples.family("kore_backplane_connected", "gauge", "workers whose websocket "
                   "backplane reaches the other hosts (a degraded one: 0)")
    samples.set("kore_backplane_connected", labels, 0 if st.get("state") == "degraded" else 1)
    for key, name, kind, text in (
            ("dropped", "kore_backplane_dropped_total", "counter",
             "messages the backplane lost: not sent, or missing from another worker"),
            ("reconnects", "kore_backplane_reconnects_total", "counter",
             "backplane connections lost or failed to open"),
            ("queued", "kore_backplane_queued", "gauge",
             "messages waiting to be sent through the backplane")):
        if isinstance(st.get(key), int):
            samples.family(name, kind, text)
            samples.set(name, labels, st[key])


@hookimpl
def kore_worker_init(worker):
    SERVICE.start()


@hookimpl
def kore_worker_message(worker, msg):
    return SERVICE.handle_message(worker, msg)


@hookimpl
def kore_worker_stop_accepting(worker):
    SERVICE.close_all(1001, "server shutting down")


@hookimpl
def kore_worker_shutdown(worker):
    SERVICE.close_all(1001, "server shutting down")
    SERVICE.abort_all()
    SERVICE.stop()

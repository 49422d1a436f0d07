"""kore-plugin-websocket: the hooks that plug websockets into the kernel."""

from kore import hookimpl
from kore.config import Option

from . import hookspecs
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

"""kore-plugin-websocket: the hooks that plug websockets into the kernel."""

from kore import _state, hookimpl
from kore.config import Option

from . import ws

OWNER = "kore-plugin-websocket"


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
    return {"websocket_handshake": ws.websocket_handshake}


@hookimpl
def kore_namespace():
    return {
        "websocket_broadcast": ws.websocket_broadcast,
        "publish": ws.publish,
        "num_subscribers": ws.num_subscribers,
    }


@hookimpl
def kore_worker_init(worker):
    ws.Settings.load()
    ws.hello()


@hookimpl
def kore_worker_message(worker, msg):
    return ws.on_message(worker, msg)


@hookimpl
def kore_worker_stop_accepting(worker):
    ws.close_all(1001, "server shutting down")


@hookimpl
def kore_worker_shutdown(worker):
    ws.close_all(1001, "server shutting down")
    ws.abort_all()

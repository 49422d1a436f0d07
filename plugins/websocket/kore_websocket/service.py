"""The websocket service of one process: options, open connections, topics.

``SERVICE`` is the one ``WebSocketService`` of the process.  The plugin's
``kore_worker_init`` calls ``SERVICE.start()``, which takes a ``Settings``
snapshot of the options, looks once which websocket hooks some plugin
implements (an unimplemented hook then costs nothing per connection) and
starts the backplane that carries topics and broadcasts between workers.
Before that (the master, library use) the defaults apply.
"""

from kore import runtime

from . import backplane
from .pubsub import PubSub


class Settings:
    """The options a worker reads once, at its start."""

    __slots__ = ("maxframe", "timeout", "deflate", "workers", "backplane", "prefix",
                 "max_message", "buffer", "health_interval")

    def __init__(self, maxframe=16384, timeout=120.0, deflate=True, workers=1,
                 backplane="local", prefix="kore", max_message=1048576, buffer=100000,
                 health_interval=1.0):
        self.maxframe = maxframe        # websocket_maxframe: frame and message bytes
        self.timeout = timeout          # websocket_timeout: seconds of silence
        self.deflate = deflate          # websocket_deflate: accept permessage-deflate
        self.workers = workers          # workers: more than one -> the backplane relays
        self.backplane = backplane      # backplane: a driver name or URL (spec.py)
        self.prefix = prefix            # backplane_prefix: channel / stream / key prefix
        self.max_message = max_message  # backplane_max_message: bytes of one frame
        self.buffer = buffer            # backplane_buffer: frames kept while disconnected
        self.health_interval = health_interval  # backplane_health_interval: seconds

    @classmethod
    def from_options(cls):
        option = runtime.option
        try:
            workers = int(option("workers"))
        except Exception:           # no kernel option registry (library use)
            workers = 2
        return cls(maxframe=int(option("websocket_maxframe")),
                   timeout=float(option("websocket_timeout")),
                   deflate=bool(option("websocket_deflate")),
                   workers=workers,
                   backplane=option("backplane"),
                   prefix=option("backplane_prefix"),
                   max_message=int(option("backplane_max_message")),
                   buffer=int(option("backplane_buffer")),
                   health_interval=float(option("backplane_health_interval")))

    @property
    def multi(self):
        """More than one worker: messages go through the backplane."""
        return self.workers > 1


class Hooks:
    """Which websocket hooks some plugin implements (checked once)."""

    __slots__ = ("connect", "disconnect")

    def __init__(self, connect=False, disconnect=False):
        self.connect = connect
        self.disconnect = disconnect

    @classmethod
    def from_plugins(cls):
        implemented = runtime.implemented
        return cls(implemented("kore_websocket_connect"),
                   implemented("kore_websocket_disconnect"))


class WebSocketService:
    """This worker's websockets."""

    def __init__(self):
        self.settings = Settings()
        self.hooks = Hooks()
        self.connections = set()        # open connection.WebSocket objects of this worker
        self.accepted = 0               # connections opened by this worker (metrics)
        self.pubsub = PubSub(self.connections)

    def start(self):
        """Worker start: read the options and hooks, start the backplane."""
        self.settings = Settings.from_options()
        self.hooks = Hooks.from_plugins()
        bp = backplane.create(self.settings.backplane, self.pubsub, self.settings)
        backplane._CURRENT[:] = [bp]
        self.pubsub.start(bp)

    def stop(self):
        """Worker exit: the backplane flushes what it can and disconnects."""
        self.pubsub.backplane.stop()

    def handle_message(self, worker, msg):
        """kore_worker_message: True if it was the backplane's."""
        return self.pubsub.backplane.handle(worker, msg)

    def close_all(self, code=1001, reason="server shutting down"):
        """Start the close handshake on every connection (graceful stop)."""
        for ws in list(self.connections):
            ws.close(code, reason)

    def abort_all(self):
        """Drop every connection (the worker exits)."""
        for ws in list(self.connections):
            ws.transport.abort()


SERVICE = WebSocketService()

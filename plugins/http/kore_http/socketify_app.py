"""socketify.py applications under ``korectl run`` without socketify.

``from socketify import App`` in an application file gets this module when
the socketify package is not installed (``install()``, called before the
application is imported).  ``App`` records what a socketify app declares and
turns it into kore declarations:

* ``app.get("/user/:id", handler)`` (and post, put, delete, patch, options,
  head, connect, trace, any): a kore route; ``:name`` segments become regex
  groups (``req.get_parameter(0)``), a trailing ``/*`` matches the rest;
  handlers take ``(res, req)``, sync or async: both are kore's request
  object, which has socketify's response and request verbs;
* ``app.ws(path, {"open":, "message":, "close":, ...})``: a websocket route
  (kore-plugin-websocket) whose socket object has socketify's ``send``,
  ``subscribe``, ``publish``, ``close``;
* ``app.listen(port_or_options, handler)``: ``kore.server`` on that port
  (127.0.0.1 unless the options name a host; ``--bind`` replaces it);
* ``app.run()`` returns at once: korectl serves once the module is loaded;
* ``app.on_error`` / ``set_error_handler``, ``on_start`` / ``on_shutdown``,
  ``json_serializer``, ``router(prefix)``, ``publish``, ``num_subscribers``.
"""

import importlib.util
import re
import sys
import types

import kore
from kore.aio import drive

_METHODS = ("get", "post", "put", "delete", "patch", "options", "head", "connect",
            "trace")


class OpCode:
    CONTINUATION = 0
    TEXT = 1
    BINARY = 2
    CLOSE = 8
    PING = 9
    PONG = 10


class CompressOptions:
    DISABLED = 0
    SHARED_COMPRESSOR = 1


class AppListenOptions:
    def __init__(self, port=0, host="127.0.0.1", options=0, domain=""):
        self.port = port
        self.host = host
        self.options = options
        self.domain = domain


def pattern(path):
    """socketify's route pattern as a Kore route: "/user/:id" ->
    "^/user/([^/]+)$", "/static/*" -> "^/static/(.*)$", "/" -> "/"."""
    if ":" not in path and "*" not in path:
        return path
    out = []
    for seg in path.split("/"):
        if seg.startswith(":"):
            out.append("([^/]+)")
        elif seg == "*":
            out.append("(.*)")
        else:
            out.append(re.escape(seg))
    rx = "/".join(out)
    if path.endswith("/*"):
        rx = rx[:-len("/(.*)")] + "(?:/(.*))?"
    return "^" + rx + "$"


class App:
    """socketify's ``App`` (the parts a kore server can run)."""

    def __init__(self, options=None, request_response_factory_max_items=0,
                 websocket_factory_max_items=0, task_factory_max_items=0,
                 lifespan=True):
        self._error = None
        self._routes = []
        self._starts = []
        self._stops = []
        self._prefix = ""
        _APPS.append(self)

    # -- routes ------------------------------------------------------------

    def _add(self, methods, path, handler):
        self._routes.append((methods, self._prefix + path, handler))
        _declare_later()
        return self

    def any(self, path, handler):
        return self._add(None, path, handler)

    def ws(self, path, behavior):
        self._routes.append(("ws", self._prefix + path, behavior or {}))
        _declare_later()
        return self

    def router(self, prefix=""):
        sub = App.__new__(App)
        sub.__dict__ = dict(self.__dict__)
        sub._prefix = self._prefix + prefix
        sub._routes = self._routes
        return sub

    # -- lifecycle ---------------------------------------------------------

    def listen(self, port_or_options=None, handler=None):
        if isinstance(port_or_options, AppListenOptions):
            host, port = port_or_options.host or "127.0.0.1", port_or_options.port
        else:
            host, port = "127.0.0.1", port_or_options or 3000
        _LISTEN.append((host, int(port)))
        _declare_later()
        if handler is not None:
            self._starts.append(lambda: handler(AppListenOptions(port, host)))
        return self

    def run(self):
        """korectl serves the app once it is loaded: nothing to run here."""
        return self

    def on_error(self, handler):
        self._error = handler
        return handler

    set_error_handler = on_error

    def on_start(self, fn):
        self._starts.append(fn)
        return fn

    def on_shutdown(self, fn):
        self._stops.append(fn)
        return fn

    def json_serializer(self, module):
        kore.json_serializer(module)
        return self

    def publish(self, topic, message, opcode=OpCode.BINARY, compress=False):
        kore.publish(topic, message, opcode=opcode, compress=compress)
        return True

    def num_subscribers(self, topic):
        return kore.num_subscribers(topic)

    def get_native_handle(self):
        return None

    def close(self):
        return self


for _m in _METHODS:
    def _verb(self, path, handler, _m=_m):
        return self._add([_m], path, handler)
    _verb.__name__ = _m
    setattr(App, _m, _verb)
del _m


class WebSocketAdapter:
    """What socketify's websocket behaviours receive."""

    __slots__ = ("_c", "closed")

    def __init__(self, c):
        self._c = c
        self.closed = False

    def send(self, message, opcode=OpCode.BINARY, compress=False):
        if isinstance(message, str) and opcode == OpCode.BINARY:
            opcode = OpCode.TEXT
        self._c.websocket_send(opcode, message)
        return True

    def subscribe(self, topic):
        return self._c.subscribe(topic)

    def unsubscribe(self, topic):
        return self._c.unsubscribe(topic)

    def is_subscribed(self, topic):
        return self._c.is_subscribed(topic)

    def publish(self, topic, message, opcode=OpCode.BINARY, compress=False):
        return self._c.publish(topic, message, opcode)

    def close(self):
        self._c.close()

    def end(self, code=1000, message=""):
        self._c.close(code, message)

    def get_remote_address(self):
        return self._c.addr


def _guard(app, handler):
    """A kore route callback running a socketify ``(res, req)`` handler,
    with the app's error handler for exceptions (sync or async)."""
    def callback(req, *args):
        try:
            result = handler(req, req)
            if type(result) is types.CoroutineType:
                result = drive(result)
            return None
        except Exception as exc:
            if app._error is None:
                raise
            result = app._error(exc, req, req)
            if type(result) is types.CoroutineType:
                drive(result)
            if not req.has_responded():
                req.write_status(500).end("Internal Server Error")
    callback.__name__ = getattr(handler, "__name__", "socketify_handler")
    return callback


def _ws_route(behavior):
    conns = {}

    def onconnect(c):
        ws = conns[id(c)] = WebSocketAdapter(c)
        fn = behavior.get("open")
        if fn is not None:
            fn(ws)

    def onmessage(c, op, data):
        fn = behavior.get("message")
        if fn is not None:
            fn(conns.get(id(c)) or WebSocketAdapter(c), data, op)

    def ondisconnect(c):
        ws = conns.pop(id(c), None) or WebSocketAdapter(c)
        ws.closed = True
        fn = behavior.get("close")
        if fn is not None:
            fn(ws, 1000, "")

    def handler(req, *args):
        req.websocket_handshake(onconnect, onmessage, ondisconnect)
    return handler


_APPS = []
_LISTEN = []
_pending = [False]


def _declare_later():
    _pending[0] = True


def declare():
    """Turn what socketify apps declared into kore declarations (called at
    application load, after the module was imported)."""
    if not _pending[0]:
        return
    _pending[0] = False
    from . import declare as _declare
    if not _declare.state.servers:
        host, port = _LISTEN[0] if _LISTEN else ("127.0.0.1", 3000)
        kore.server("default", ip=host, port=str(port), tls=False)
    dom = _declare.state.domains[0] if _declare.state.domains else kore.domain("*")
    for app in _APPS:
        for methods, path, handler in app._routes:
            if methods == "ws":
                dom.route(pattern(path), _ws_route(handler), methods=["get"])
            elif methods is None:
                dom.route(pattern(path), _guard(app, handler))
            else:
                dom.route(pattern(path), _guard(app, handler),
                          methods=[m for m in methods if m not in ("connect", "trace")]
                          or None)


def worker_start():
    for app in _APPS:
        for fn in app._starts:
            r = fn()
            if type(r) is types.CoroutineType:
                drive(r)


def worker_stop():
    for app in _APPS:
        for fn in app._stops:
            r = fn()
            if type(r) is types.CoroutineType:
                drive(r)


def reset():
    del _APPS[:]
    del _LISTEN[:]
    _pending[0] = False


def install():
    """Make ``import socketify`` give this module when socketify itself is
    not installed (a real socketify keeps its own name)."""
    if "socketify" in sys.modules:
        return
    try:
        if importlib.util.find_spec("socketify") is not None:
            return
    except (ImportError, ValueError):
        pass
    sys.modules["socketify"] = sys.modules[__name__]


def sendfile(res, req, filename):
    """socketify's sendfile helper: the file as the response."""
    with open(filename, "rb") as f:
        res.end(f.read())

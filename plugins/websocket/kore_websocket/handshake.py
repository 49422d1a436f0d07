"""The RFC 6455 opening handshake: ``req.websocket_handshake(onconnect,
onmsg, ondisconnect)``.

A valid upgrade request is answered 101 (with permessage-deflate when the
client offers it and ``websocket_deflate`` allows it, and
``Sec-WebSocket-Protocol`` when the handler set ``req.websocket_protocol``);
after the route handler returns, the connection's greenlet runs the
``WebSocket``'s transport.  Anything else gets 400 and no callback runs.
"""

import base64
import hashlib

from kore import runtime

from .connection import WebSocket
from .frames import negotiate_deflate
from .service import SERVICE

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def websocket_handshake(req, onconnect, onmsg, ondisconnect):
    """req.websocket_handshake(onconnect, onmsg, ondisconnect): callables,
    names of functions of the application module, or None."""
    onconnect = _resolve(onconnect, "onconnect")
    onmsg = _resolve(onmsg, "onmsg")
    ondisconnect = _resolve(ondisconnect, "ondisconnect")
    headers = {}
    req.for_each_header(lambda n, v: headers.setdefault(n, []).append(v))
    err = handshake_error(req, headers)
    if err is not None:
        if req.request_header("sec-websocket-version") not in (None, "13"):
            req.response_header("sec-websocket-version", "13")
        req.response(400, b"")
        return False
    key = headers["sec-websocket-key"][0].strip().encode("ascii")
    accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
    head = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", accept.decode("ascii"))]
    service = SERVICE
    deflate = None
    if service.settings.deflate:
        offers = headers.get("sec-websocket-extensions")
        if offers:
            resp, deflate = negotiate_deflate(offers)
            if resp:
                head.append(("Sec-WebSocket-Extensions", resp))
    proto = getattr(req, "websocket_protocol", None)
    if proto:
        head.append(("Sec-WebSocket-Protocol", proto))
    ws = WebSocket(service, req.connection, req.stream.tls, deflate,
                   onconnect, onmsg, ondisconnect)
    # the 101 goes now; once the route's handler returns, the transport hands
    # the socket to ws.transport.run; req.connection is the websocket from now on
    req.upgrade(ws.transport.run, 101, head, connection=ws)
    return True


def handshake_error(req, headers):
    """Why ``req`` (with ``headers``: {lower-case name: [values]}) is not a
    valid RFC 6455 opening handshake, or None."""
    if req.get_method() != "GET":
        return "method is not GET"
    if req.stream.http_version != "1.1":
        return "not HTTP/1.1"
    if "websocket" not in _tokens(headers.get("upgrade", ())):
        return "no 'Upgrade: websocket'"
    if "upgrade" not in _tokens(headers.get("connection", ())):
        return "no 'Connection: Upgrade'"
    ver = headers.get("sec-websocket-version", ())
    if len(ver) != 1 or ver[0].strip() != "13":
        return "Sec-WebSocket-Version is not 13"
    key = headers.get("sec-websocket-key", ())
    if len(key) != 1:
        return "no Sec-WebSocket-Key"
    try:
        raw = base64.b64decode(key[0].strip().encode("ascii"), validate=True)
    except (ValueError, UnicodeError):
        return "Sec-WebSocket-Key is not base64"
    if len(raw) != 16:
        return "Sec-WebSocket-Key is not 16 bytes"
    return None


def _tokens(values):
    out = set()
    for v in values:
        for t in v.split(","):
            t = t.strip().lower()
            if t:
                out.add(t)
    return out


def _resolve(cb, what):
    """A callback given as a callable, None or a function name of the app."""
    if cb is None or callable(cb):
        return cb
    if isinstance(cb, str):
        app = runtime.application()
        mod = getattr(app, "module", None) if app is not None else None
        fn = getattr(mod, cb, None) if mod is not None else None
        if fn is None or not callable(fn):
            raise RuntimeError("websocket_handshake: %s '%s' is not a function of "
                               "the application module" % (what, cb))
        return fn
    raise TypeError("websocket_handshake: %s must be callable or a function name" % what)

"""``WebSocket``: the ``kore.connection`` of a websocket client.

This is the ``c`` the application's callbacks get (and what
``req.connection`` returns once the handshake ran): Kore's
``websocket_send``/``disconnect``, socketify's topics, and ``fd``, ``addr``,
``x509``, ``x509dict`` as on an http connection (read from the http
plugin's connection object of the same client).  The socket work is the
``transport.Transport``'s; topics are the worker's ``pubsub.PubSub``'s.

The transport calls ``on_open``, ``on_message`` and ``on_close`` from the
connection's greenlet: the kore_websocket_connect hook and ``onconnect``,
then ``onmsg`` per message, then ``ondisconnect`` and the
kore_websocket_disconnect hook, once, for every connection whose open ran.
An exception in a callback is reported and the connection closed with 1011;
the worker lives.
"""

import struct
import sys
from inspect import isawaitable

from gevent import GreenletExit

from kore import runtime
from kore.aio import drive
from kore.trace import report

from .frames import OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, encode
from .transport import CLOSED, OPEN, Transport

_U16 = struct.Struct("!H")


class WebSocket:
    """kore.connection of a websocket client (``c`` in the callbacks)."""

    __slots__ = ("transport", "service", "onconnect", "onmsg", "ondisconnect", "topics",
                 "_http", "_opened", "__weakref__")

    def __init__(self, service, http_connection, tls, deflate, onconnect, onmsg,
                 ondisconnect):
        self.service = service              # the worker's service.WebSocketService
        self._http = http_connection        # the http plugin's kore.connection of the client
        self.transport = Transport(self, http_connection.fd, tls, service.settings, deflate)
        self.onconnect = onconnect
        self.onmsg = onmsg
        self.ondisconnect = ondisconnect
        self.topics = None                  # set of topic names once subscribed
        self._opened = False

    def __repr__(self):
        return "<kore.connection websocket fd=%s>" % self.transport.fd

    # -- what an http connection has ------------------------------------------------

    @property
    def fd(self):
        return self.transport.fd

    @property
    def addr(self):
        return self._http.addr

    @property
    def x509(self):
        return self._http.x509

    @property
    def x509dict(self):
        return self._http.x509dict

    # -- Kore API -------------------------------------------------------------------

    def websocket_send(self, op, data):
        """Send one message: ``op`` WEBSOCKET_OP_TEXT or _BINARY (PING and
        PONG work too); ``data`` bytes or str.  False if the connection is
        closing."""
        t = self.transport
        if t.state != OPEN:
            return False
        if isinstance(data, str):
            data = data.encode("utf-8")
        elif not isinstance(data, bytes):
            data = bytes(data)
        if op == OP_TEXT or op == OP_BINARY:
            d = t.deflate
            if d is not None:
                z = d.compress(data)
                if z is not None:
                    return t.write(encode(op, z, True))
            return t.write(encode(op, data))
        if op == OP_PING or op == OP_PONG:
            if len(data) > 125:
                raise ValueError("websocket_send: control payload over 125 bytes")
            return t.write(encode(op, data))
        if op == OP_CLOSE:
            code = _U16.unpack_from(data)[0] if len(data) >= 2 else 1000
            t.close(code, data[2:].decode("utf-8", "replace"))
            return True
        raise ValueError("websocket_send: invalid op %r" % (op,))

    def disconnect(self):
        """Close the connection (close code 1000)."""
        self.transport.close(1000, "")
        return True

    def close(self, code=1000, reason=""):
        """Start the close handshake with ``code``; False if already closing."""
        return self.transport.close(code, reason)

    # -- socketify topics -----------------------------------------------------------

    def subscribe(self, topic):
        if self.transport.state == CLOSED:
            return False
        return self.service.pubsub.subscribe(self, topic)

    def unsubscribe(self, topic):
        return self.service.pubsub.unsubscribe(self, topic)

    def is_subscribed(self, topic):
        return self.service.pubsub.is_subscribed(self, topic)

    def subscriptions(self):
        return sorted(self.topics or ())

    def publish(self, topic, data, op=None):
        """Publish to ``topic`` (every worker), except to this connection."""
        return self.service.pubsub.publish(topic, data, op, exclude=self)

    # -- events from the transport ------------------------------------------------------

    def on_open(self):
        service = self.service
        service.connections.add(self)
        service.accepted += 1
        self._opened = True
        if service.hooks.connect:
            runtime.notify("kore_websocket_connect", where="kore_websocket_connect hook",
                           websocket=self)
        if self.onconnect is not None and not _call(self.onconnect, "onconnect", self):
            self.transport.close(1011, "internal error")

    def on_message(self, op, data):
        fn = self.onmsg
        if fn is not None and not _call(fn, "onmsg", self, op, data):
            self.transport.close(1011, "internal error")

    def on_close(self):
        service = self.service
        service.connections.discard(self)
        if self.topics:
            service.pubsub.unsubscribe_all(self)
        if self._opened:
            self._opened = False
            if self.ondisconnect is not None:
                _call(self.ondisconnect, "ondisconnect", self)
            if service.hooks.disconnect:
                runtime.notify("kore_websocket_disconnect",
                               where="kore_websocket_disconnect hook", websocket=self)


def _call(fn, where, *args):
    """Run an application callback (a coroutine is driven to its end);
    False when it raised (reported)."""
    try:
        r = fn(*args)
        if r is not None and isawaitable(r):
            drive(r)
        return True
    except GreenletExit:
        raise
    except Exception:
        report(sys.exc_info(), where="websocket %s callback" % where)
        return False

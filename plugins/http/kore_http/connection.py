"""kore.connection: what ``req.connection`` returns (Kore's ``c`` object).

A thin facade over the request's stream: the socket descriptor, the peer's
address and certificate, and ``disconnect()``.  The websocket plugin
subclasses it (its connections are kore.connection objects too).
"""


class Connection:
    """kore.connection."""

    __slots__ = ("_c",)

    def __init__(self, stream):
        self._c = stream

    @property
    def fd(self):
        return self._c.fd

    @property
    def addr(self):
        """The peer's IP address; "unix:/path" on a unix socket (Kore raises
        RuntimeError there: a handler logging it should not fail)."""
        return self._c.remote_address()

    @property
    def x509(self):
        return self._c.peer_cert_der()

    @property
    def x509dict(self):
        return self._c.peer_cert_dict()

    def disconnect(self):
        self._c.disconnect()
        return True

    def websocket_send(self, op, data):
        raise TypeError("connection is not a websocket connection")

    def __repr__(self):
        return "<kore.connection fd=%s>" % self._c.fd

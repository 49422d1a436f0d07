"""The stream interface: what a request talks to, whatever the protocol.

An ``HttpRequest`` (the Kore and socketify API a handler sees) never writes
protocol bytes itself: it calls the methods below on ``req.stream``.  The
HTTP/1.1 transport (``kore_http.h1``) implements them with status lines,
Content-Length, chunking and keep-alive; an HTTP/2 plugin implements them
with HEADERS and DATA frames on one h2 stream.  ``pipeline.handle(req)``
runs every request over this interface.

Statuses reach a stream as the handler gave them: an int, or ``"299 Why"``
/ ``b"299 Why"`` (socketify); the stream stores the numeric code in
``req._status``.  Response headers are ``req._rheaders``: a list of
``[name, value]`` str pairs (None when empty), already validated (no CR/LF,
token names).  ``ctype`` is an extra Content-Type value (bytes) or None.
"""


class Stream:
    """Base class of every transport stream.  Attributes every stream has:

    ``http_version``  "1.0", "1.1" or "2.0" (access log, WSGI)
    ``tls``           True over TLS
    ``server``        the ``kore.server`` the connection arrived on
    ``listener``      the listening socket's record (``.address``)
    ``trusted``       the peer is in ``http_forwarded_allow_ips``
    ``proxied_address`` the client address a PROXY header named, or None
    ``keepalive``     the connection stays open after this response
    ``closed``        the handler disconnected the client
    ``paused``        True between pause() and resume()
    ``fd``, ``family`` the socket's descriptor and address family
    ``log_fields``    a dict of fields the transport adds to the access log
                      line (HTTP/2's stream id), or None; cheaper than the
                      ``kore_http_access_log_fields`` hook, which every
                      request of every transport would pay
    """

    __slots__ = ()

    http_version = "1.1"
    tls = False
    server = None
    listener = None
    trusted = False
    proxied_address = None
    keepalive = True
    closed = False
    paused = False
    fd = -1
    family = 0
    log_fields = None

    def log_peer(self):
        """(tls, remote address, proxied address, trusted): what the access
        log's line cache keys a line's peer on (a connection makes the
        tuple once; see ``net.Client.log_peer``)."""
        return (self.tls, self.remote_address(), self.proxied_address, self.trusted)

    # -- responses ---------------------------------------------------------

    def send_response(self, req, status, body, ctype=None, close=False):
        """A whole response (head and ``body`` bytes) in one write.
        ``close``: the connection ends after it."""
        raise NotImplementedError

    def send_head(self, req, status, ctype=None):
        """Start a response whose body follows through ``send_data``."""
        raise NotImplementedError

    def send_data(self, req, data, end=False):
        """Body bytes of a started response; ``end=True`` finishes it."""
        raise NotImplementedError

    def send_informational(self, req, status, headers=()):
        """A 1xx response (100 Continue, 103 Early Hints) before the final
        one; ``headers`` is a list of (name, value) str pairs."""
        raise NotImplementedError

    def cork(self, on):
        """``on=True``: hold writes until ``cork(False)``, then send them
        together (socketify's ``cork``)."""

    # -- the request body ----------------------------------------------------

    def read_body(self, req, sink):
        """Read the request body into ``sink`` (``body.BodySink``): False
        when the request cannot go on (an error response was sent or the
        client left), True otherwise."""
        raise NotImplementedError

    # -- flow and lifetime ---------------------------------------------------

    def pause(self):
        """Stop reading from the client and its timeouts until resume()."""

    def resume(self):
        """Undo pause()."""

    def disconnect(self):
        """Close the client connection now (Kore's ``c.disconnect()``)."""
        raise NotImplementedError

    def watch_client(self, req):
        """While a handler runs, end it if the client goes away: start
        watching and return the callable that stops it (called with no
        arguments when the handler is done)."""
        return _nothing

    def upgrade(self, req, handler, status, headers):
        """Switch protocols (websocket): send the ``status`` (101) head with
        ``headers`` now; once the route's handler returns, the transport
        calls ``handler(sock, buffered)`` with the raw socket and the bytes
        already read past this request, and closes the socket when it
        returns.  Streams that cannot do this raise NotImplementedError."""
        raise NotImplementedError("this protocol cannot switch protocols")

    # -- the peer --------------------------------------------------------------

    def facade(self):
        """The ``kore.connection`` object of this stream's connection."""
        raise NotImplementedError

    def set_facade(self, obj):
        """What ``facade()`` (``req.connection``) returns from now on."""
        raise NotImplementedError

    def remote_address(self):
        """The peer's IP address as a str ("" for a unix socket)."""
        return ""

    def peer_cert_der(self):
        """The client certificate (DER bytes) or None."""
        return None

    def peer_cert_dict(self):
        """The client certificate as {"issuer": {...}, "subject": {...}} or None."""
        return None


class ClientGone(Exception):
    """The client closed the connection (or reset it) mid-request."""


def _nothing():
    pass

"""Every use of kore-plugin-http internals by this plugin, in one place.

The http plugin has no public seams yet for what a websocket needs (adding a
method to the request, taking the connection over after the handler).  Until
it does, the four functions below reach into it; nothing else in
``kore_websocket`` imports ``kore_http`` or touches a private name of its
objects.  Each function lists the internal it uses and the public seam that
should replace it:

``install(handshake)``
    uses: ``kore_http.request.HttpRequest.websocket_handshake``, assigned over
    the placeholder that raises ``PluginMissing`` (a monkey-patch).
    becomes: the request-attribute registration API, e.g.
    ``kore_http.request_attribute("websocket_handshake", handshake)`` called
    from ``kore_worker_init``.

``is_http11(req)``
    uses: ``HttpRequest.http11``, an undocumented attribute.
    becomes: a documented request attribute for the protocol version (the
    stream's), e.g. ``req.http_version == "1.1"``.

``upgrade(req, handler, head)``
    uses: ``HttpRequest._upgrade(handler, response)``: writes ``head`` (the
    101 response) now, and after the route handler returns the connection
    greenlet calls ``handler(sock, buffered)``.
    becomes: the stream's ``upgrade(handler, head)``.

``set_connection(req, ws)``
    uses: ``req.conn._facade``, the ``kore_http.conn.Conn`` slot that
    ``req.connection`` returns, so that the callbacks and ``req.connection``
    see the same ``kore.connection`` (the ``WebSocket``).
    becomes: an argument of the stream's ``upgrade`` (the object that stands
    for the connection from then on), or a registered request attribute.

Everything else the plugin needs is the request's public API:
``req.get_method()``, ``req.request_header()``, ``req.for_each_header()``,
``req.response_header()``, ``req.response()``, ``req.protocol``,
``req.connection`` (``fd``, ``addr``, ``x509``, ``x509dict``).
"""


def install(handshake):
    """Make ``req.websocket_handshake(...)`` call ``handshake(req, ...)``."""
    from kore_http import request
    request.HttpRequest.websocket_handshake = handshake


def is_http11(req):
    return bool(req.http11)


def upgrade(req, handler, head):
    """Answer ``head`` and run ``handler(sock, buffered)`` in the connection's
    greenlet once the route handler returned."""
    return req._upgrade(handler, head)


def set_connection(req, ws):
    """``req.connection`` is ``ws`` from now on."""
    req.conn._facade = ws

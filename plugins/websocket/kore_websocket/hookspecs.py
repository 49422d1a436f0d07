"""Hook specifications the websocket plugin adds (``kore_add_hookspecs``)."""

import pluggy

hookspec = pluggy.HookspecMarker("kore")


@hookspec
def kore_websocket_connect(websocket):
    """A websocket handshake completed (before the app's onconnect).

    Runs in the worker that holds the connection, in its greenlet.
    ``websocket`` is the client's ``kore.connection`` as the app's callbacks
    get it (``kore_websocket.connection.WebSocket``: ``fd``, ``addr``,
    ``websocket_send``, topics), not the http connection of
    ``kore_connection_open``.  Whether a plugin implements the two websocket
    hooks is looked up once, when the worker starts.

    :returns: nothing.
    """


@hookspec
def kore_websocket_disconnect(websocket):
    """A websocket connection ended (after the app's ondisconnect).

    Runs in the worker that held the connection; ``websocket`` as for
    ``kore_websocket_connect`` (closed: sending returns False).

    :returns: nothing.
    """

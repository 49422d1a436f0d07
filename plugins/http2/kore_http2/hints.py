"""``req.hint_promise(uri)`` (Skitai's push hint).

Over HTTP/2, when the client left SETTINGS_ENABLE_PUSH on, the server sends a
PUSH_PROMISE for ``uri`` and serves a GET of it on the promised stream, as if
the client had asked.  Otherwise (HTTP/2 with push off, which is what every
current browser sends, and HTTP/1.1) the hint becomes a ``103 Early Hints``
response with ``Link: <uri>; rel=preload`` before the final response:
server push is gone from browsers and nginx, Early Hints replaced it.
"""

from kore_http.response import NOT_SENT


def hint_promise(req, uri):
    """Hint that the client will need ``uri`` (a path on this server)."""
    if not isinstance(uri, str) or not uri.startswith("/") or "\r" in uri or "\n" in uri:
        raise ValueError("hint_promise: uri must be a path starting with '/', got %r" % (uri,))
    if req._sent != NOT_SENT:
        raise RuntimeError("hint_promise: the response was already sent")
    stream = req.stream
    conn = getattr(stream, "conn", None)
    if conn is not None and getattr(conn, "h2", None) is not None \
            and conn.h2.remote_settings.enable_push and not conn.closing:
        conn.push(stream, req, uri)
        return "push"
    stream.send_informational(req, 103, [("link", "<%s>; rel=preload" % uri)])
    return "early-hints"

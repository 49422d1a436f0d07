"""Hook specifications the http plugin adds (``kore_add_hookspecs``).

These hooks exist when kore-plugin-http is installed; other plugins (http2,
websocket, pgsql, acme, gateway, metrics, proxy) implement them.  Each
docstring says when the hook runs, in which process, its arguments and what
its return value means.
"""

import pluggy

hookspec = pluggy.HookspecMarker("kore")


# ---------------------------------------------------------------------------
# connections
# ---------------------------------------------------------------------------

@hookspec
def kore_connection_open(conn):
    """A client connection was accepted.

    Runs in the worker, in the connection's greenlet, before the TLS
    handshake and the first read.  ``conn`` is its ``kore.connection``
    (``kore_http.connection.Connection``: ``fd``, ``addr``,
    ``disconnect()``).  The return value is ignored.

    :returns: nothing.
    """


@hookspec
def kore_connection_close(conn):
    """A client connection was closed.

    Runs in the worker, in the connection's greenlet, after the socket was
    closed; ``conn`` is the same object ``kore_connection_open`` got (or, for
    an upgraded connection, the object that replaced it: the websocket).
    The return value is ignored.

    :returns: nothing.
    """


@hookspec(firstresult=True)
def kore_connection_protocol(conn, alpn, preface):
    """Choose the protocol that serves an accepted connection.

    Runs in the worker, in the connection's greenlet, after the TLS
    handshake.  ``conn`` is the ``kore_http.net.Client`` (``tls``,
    ``trusted``, ``remote_address()``, ``sock``); ``alpn`` the negotiated
    ALPN id (str) or None; ``preface`` None on TLS connections, else the
    first bytes of a cleartext connection (read only when some plugin asks
    for them through ``kore_cleartext_protocols``; None otherwise).  Return
    a callable ``serve(conn, preface)`` that runs the connection until it
    ends, or None to leave the choice to the next plugin.  The http plugin
    answers last (trylast) for ``http/1.1``, no ALPN and cleartext; the
    connection is closed when nobody answers.

    :returns: a ``serve(conn, preface)`` callable, or None.
    """


@hookspec
def kore_cleartext_protocols():
    """Protocols that recognise a cleartext connection by its first bytes.

    Runs in each worker once, when it starts serving.  Return a list of
    names (``["h2c"]`` when HTTP/2 prior knowledge is on) or None; when any
    plugin returns one, the first bytes of every cleartext connection are
    read before ``kore_connection_protocol`` is asked (and handed to it as
    ``preface``), else HTTP/1.1 reads them itself at no extra cost.

    :returns: a list of protocol names (str), or None.
    """


@hookspec
def kore_tls_alpn(server):
    """ALPN protocol ids a TLS server offers.

    Runs in the master while TLS contexts are built (application load).
    ``server`` is the ``kore.server``.  Return a list of ids (str) or None;
    the lists are joined in hook order (``tryfirst`` comes first, so an h2
    plugin marks itself tryfirst to be preferred) and duplicates dropped.
    The http plugin returns ``["http/1.1"]``.

    :returns: a list of ALPN ids (str), or None.
    """


@hookspec(firstresult=True)
def kore_tls_context(domain, server_name, sslobj, offered_alpn):
    """Pick the certificate for one TLS handshake (SNI).

    Runs in the worker, inside the handshake's SNI callback (keep it quick:
    no blocking I/O).  ``domain`` is the ``kore.domain`` the server name
    matched (None for an unknown name, the server's first domain is used
    then), ``server_name`` the name the client sent (lower-case) or None,
    ``sslobj`` the handshake's ``ssl.SSLObject``, ``offered_alpn`` the ALPN
    ids the client's ClientHello offers (a list; None when it could not be
    read), so that an ``acme-tls/1`` challenge certificate goes only to the
    validation handshake.  Return an
    ``ssl.SSLContext`` to use for this handshake (ACME: a placeholder,
    the issued chain or an ``acme-tls/1`` challenge certificate), or None
    for the domain's own context.

    :returns: an ``ssl.SSLContext``, or None.
    """


@hookspec
def kore_tls_client_hello():
    """Does a plugin need the ALPN offer of each ClientHello?

    Runs in each worker once at start-up (and after a reload).  Reading the
    offer means peeking at every TLS connection's first record before the
    handshake, which costs a little on each connection, so it is done only
    when a plugin answers True here (ACME, when a domain has
    ``acme=True``: the ``acme-tls/1`` challenge certificate must go only to
    the validation handshake).  Without a True answer ``kore_tls_context``
    gets ``offered_alpn=None``.

    :returns: True to have ClientHellos peeked at, or None.
    """


@hookspec
def kore_tls_domain_context(domain, context):
    """A TLS domain has no certificate files (``acme=True``).

    Runs in the master while TLS contexts are built.  ``context`` is the
    domain's ``ssl.SSLContext`` with every setting but the certificate; load
    one into it (a placeholder until the real one is issued) and return
    True, or return None.  Start-up stops with a message naming the package
    to install when no plugin handles the domain.

    :returns: True when a certificate was loaded, else None.
    """


# ---------------------------------------------------------------------------
# requests
# ---------------------------------------------------------------------------

@hookspec(firstresult=True)
def kore_request_start(req):
    """A request's head was parsed, before routing.

    Runs in the worker, in the request's greenlet, for every request.
    Return a status (int) to answer the request with it and skip routing
    (the first plugin that returns one wins), or None.

    :returns: a status (int) to refuse the request, or None.
    """


@hookspec(firstresult=True)
def kore_http_handle(req, target):
    """Run a routed request's auth, prerequest callbacks and handler.

    The http plugin implements it (it runs the handler and returns the
    response status); other plugins wrap it with
    ``@hookimpl(wrapper=True)``: code before ``status = yield`` sees the
    route (``target``: a ``kore.route`` or a mount; ``req.route``,
    ``req.domain``, ``req.args`` are set and the body was read), code after
    it sees the status; answering the request before ``yield`` (a 401)
    skips the handler.  Runs in the worker, in the request's greenlet, only
    when some plugin wraps it (no cost otherwise).  Returns the status.

    :returns: the response status (int).
    """


@hookspec
def kore_http_admit(req, target):
    """May a routed request run its handler?  (A gateway's token check.)

    Runs in the worker, in the request's greenlet, after routing (``target``:
    a ``kore.route`` or a mount; ``req.route``, ``req.domain``, ``req.args``
    are set and the body was read) and before the route's auth, prerequest
    callbacks, ``kore_http_handle`` wrappers and handler, only when some
    plugin implements it.  Plain implementations (no wrappers) are called
    directly, without pluggy's per-call machinery, in pluggy's order: much
    cheaper per request than a ``kore_http_handle`` wrapper when nothing is
    needed after the handler.  Answer the request (a 401, a 429) and return
    False to stop it: the handler does not run, the rest of the
    implementations are not called, the response is logged as usual.  An
    implementation that raises is reported and the request answered 500.

    :returns: False to stop the request (after answering it), anything else
        to let it run.
    """


@hookspec
def kore_request_done(req, status, duration):
    """A response was sent completely (access logs, metrics).

    Runs in the worker after the last byte of the response was written.
    ``duration`` is in seconds.  The return value is ignored.

    :returns: nothing.
    """


@hookspec
def kore_http_routes(routes):
    """Declare routes and servers of a plugin's own.

    Runs in the master at application load (and on every reload), after the
    application's routes were installed.  ``routes`` is a
    ``kore_http.extend.PluginRoutes``: ``routes.route(path, handler,
    methods=None, domains=None, owner="kore-plugin-x", **route_kwargs)``
    adds a route ahead of the application's on the given domains (default:
    all of the application's), ``routes.server(name, address)`` declares a
    plain server with a "*" domain and returns it, ``routes.domains()``
    lists the application's domains (to check what a plugin's declarations
    name).  The return value is
    ignored; a ``kore.ConfigError`` stops start-up.

    :returns: nothing.
    """


@hookspec
def kore_http_request_attributes():
    """Attributes to add to every request object.

    Runs in each process once plugins are loaded.  Return a dict of name to
    value: a function becomes a method (``req.pgsql(...)``), a ``property``
    an attribute; names may not clash with the request API or another
    plugin's.

    :returns: a dict of attribute name to value, or None.
    """


@hookspec
def kore_http_access_log_fields(req):
    """Extra fields for the access log line of ``req``.

    Runs in the worker after the response, only when an access log is
    configured.  Return a dict of field name to value (str, int or None):
    JSON lines get them as members, the common format as ``name=value``
    suffixes (values percent-escaped).  Never put a secret (a token) here.

    :returns: a dict of field name to value, or None.
    """

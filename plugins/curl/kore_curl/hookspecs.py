"""Hook specifications kore-plugin-curl adds (``kore_add_hookspecs``)."""

import pluggy

hookspec = pluggy.HookspecMarker("kore")


@hookspec
def kore_httpclient_headers(method, url):
    """Headers to add to an outgoing ``kore.httpclient`` request.

    Runs in the calling process (a worker), in the greenlet that builds the
    request (a handler's, so a plugin can tell which incoming request makes
    the call: the gateway sends its transaction ids on), once per request,
    only when some plugin implements it.  ``method`` is "GET", "POST" ...,
    ``url`` the client's URL.  Return a dict of header name to str value,
    or None; a header the caller passed in ``headers=`` wins over a plugin's.

    :returns: a dict of header name to value, or None.
    """


@hookspec(firstresult=True)
def kore_httpclient_target(url, options):
    """Return the client for a ``kore.httpclient(url)`` whose URL names an
    alias (``"@api/path"``) instead of a host.

    Runs in the process and greenlet that calls ``kore.httpclient`` (a
    worker's handler, usually) when ``url`` starts with ``@``.  ``options`` is the dict of the other
    keywords.  kore-plugin-proxy returns a client with the same request
    methods, balanced over the alias's nodes; return None for a URL the
    plugin does not serve.  The first non-None result is used; with none,
    ``kore.httpclient`` raises RuntimeError naming kore-plugin-proxy.

    :returns: a client object, or None.
    """

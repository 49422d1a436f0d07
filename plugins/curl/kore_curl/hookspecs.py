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

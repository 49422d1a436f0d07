"""What a proxy changes in the headers it forwards (pure functions).

Hop-by-hop fields (RFC 9110 section 7.6.1: ``Connection`` and the names it
lists, ``Keep-Alive``, ``Proxy-Connection``, ``TE``, ``Trailer``,
``Transfer-Encoding``, ``Upgrade``, ``Proxy-Authenticate``,
``Proxy-Authorization``) are removed in both directions; the body is
re-framed by the proxy (its own Content-Length or chunking), so the
client's ``Content-Length`` and ``Expect`` are not forwarded either.
"""

HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-connection", "te", "trailer",
                        "transfer-encoding", "upgrade", "proxy-authenticate",
                        "proxy-authorization"))
FRAMING = frozenset(("content-length", "expect"))
FORWARDED = frozenset(("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host",
                       "forwarded", "x-real-ip"))
# the proxy writes its own Server line (nginx's default too); the
# upstream's Date is passed on (the http plugin then leaves out its own)
RESPONSE_OWN = frozenset(("server",))


def connection_tokens(headers):
    """The lower-case names a Connection header lists (``headers``: pairs of
    lower-case name, value)."""
    out = set()
    for n, v in headers:
        if n == "connection":
            for tok in v.split(","):
                tok = tok.strip().lower()
                if tok:
                    out.add(tok)
    return out


def request_headers(headers, client_addr, trusted, scheme, host, upstream_host=None,
                    extra=()):
    """The header list sent upstream for a client request.

    ``headers``: the client's (lower-case name, value) pairs; ``client_addr``
    the peer's address; ``trusted``: the peer is in
    ``http_forwarded_allow_ips`` (its X-Forwarded-* and Forwarded are kept
    and appended to); ``scheme`` "http"/"https" as the request arrived;
    ``host`` the client's Host; ``upstream_host`` a Host to send instead
    (the rewrite option) or None to preserve the client's.
    """
    drop = connection_tokens(headers)
    out = []
    xff = []
    xfp = xfh = None
    for n, v in headers:
        if n in HOP_BY_HOP or n in FRAMING or n in drop:
            continue
        if n in FORWARDED:
            if not trusted:
                continue
            if n == "x-forwarded-for":
                xff.append(v.strip())
                continue
            if n == "x-forwarded-proto":
                xfp = v
                continue
            if n == "x-forwarded-host":
                xfh = v
                continue
        if n == "host":
            continue
        out.append((n, v))
    if client_addr:
        xff.append(client_addr)
    out.insert(0, ("host", upstream_host or host))
    if xff:
        out.append(("x-forwarded-for", ", ".join(x for x in xff if x)))
    out.append(("x-forwarded-proto", xfp or scheme))
    if xfh or host:
        out.append(("x-forwarded-host", xfh or host))
    out.extend(extra)
    return out


def response_headers(raw):
    """The upstream response's headers a client gets: ``raw`` is a list of
    (name, value) str pairs in upstream spelling; hop-by-hop fields, the
    names Connection lists and the upstream's Server are removed.
    Returns (headers, content_length or None)."""
    lower = [(n.lower(), v) for n, v in raw]
    drop = connection_tokens(lower)
    out = []
    length = None
    chunked = False
    for (ln, v), (n, _) in zip(lower, raw):
        if ln == "transfer-encoding":
            chunked = True
            continue
        if ln in HOP_BY_HOP or ln in drop or ln in RESPONSE_OWN:
            continue
        if ln == "content-length":
            length = v
            continue
        out.append((n, v))
    if chunked:
        length = None
    return out, length

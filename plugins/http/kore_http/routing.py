"""Which domain, route or mount a request goes to: pure functions.

``resolve(server, host, method, path)`` is everything the pipeline needs to
know about a request before it reads the body, computed from the declared
domains alone (no request object, no socket), so it is unit-tested in
process.  It returns a tuple ``(kind, domain, target, extra)``:

``ROUTE``     target is the ``declare.Route``, extra the regex groups (tuple)
``MOUNT``     target is a mount (filemap, WSGI app, proxy), extra None
``REDIRECT``  target is the status, extra the Location (``domain.redirect``)
``STATUS``    target is 404 or 405; for 405 extra is the Allow value
``NO_DOMAIN`` no domain of the server matches ``host``: 404

Matching follows Kore: exact routes by path first, then regex routes in
declaration order (the first whose regex searches the path and allows the
method), then mounts in declaration order; a path that some route matches
with other methods only is 405 with an Allow header.
"""

ROUTE = 0
MOUNT = 1
REDIRECT = 2
STATUS = 3
NO_DOMAIN = 4

ALLOW_ORDER = ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")
_NO_ARGS = ()


def host_name(host):
    """The lower-cased name part of a Host value ("[::1]:80" -> "[::1]")."""
    h = host.lower()
    if h.startswith("["):
        end = h.find("]")
        return h[:end + 1] if end > 0 else h
    colon = h.rfind(":")
    return h[:colon] if colon >= 0 else h


def select_domain(server, host):
    """The domain of ``server`` serving ``host``, or None."""
    d = server.catchall
    if d is not None:
        return d
    h = host_name(host)
    for d in server.domains:
        if d.matches(h):
            return d
    return None


def expand(dst, m):
    """``domain.redirect`` destination with $1.. replaced by ``m``'s groups."""
    out = []
    i = 0
    n = len(dst)
    while i < n:
        ch = dst[i]
        if ch == "$" and i + 1 < n and dst[i + 1].isdigit():
            j = i + 1
            while j < n and dst[j].isdigit():
                j += 1
            try:
                out.append(m.group(int(dst[i + 1:j])) or "")
            except IndexError:
                pass
            i = j
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def match_route(domain, method, path):
    """(route, args, allowed): the route for ``method`` on ``path`` (or
    None), its regex groups, and the methods other routes of that path
    allow (None when no route matches the path at all)."""
    allowed = None
    rs = domain.exact.get(path)
    if rs is not None:
        for r in rs:
            if r.methods is None or method in r.methods:
                return r, _NO_ARGS, None
            allowed = (allowed or set()) | r.methods
    for r in domain.regex:
        m = r.rx.search(path)
        if m is None:
            continue
        if r.methods is None or method in r.methods:
            args = []
            for g in m.groups():
                if g is None:
                    break
                args.append(g)
            return r, tuple(args), None
        allowed = (allowed or set()) | r.methods
    return None, _NO_ARGS, allowed


def resolve(server, host, method, path):
    """See the module docstring."""
    d = server.catchall
    if d is None:
        d = select_domain(server, host)
        if d is None:
            return NO_DOMAIN, None, 404, None
    if d.redirects:
        for rx, status, dst in d.redirects:
            m = rx.search(path)
            if m is not None:
                return REDIRECT, d, status, expand(dst, m)
    # the exact-route hit, inlined: most requests end here
    rs = d.exact.get(path)
    if rs is not None and len(rs) == 1:
        r = rs[0]
        if r.methods is None or method in r.methods:
            return ROUTE, d, r, _NO_ARGS
    route, args, allowed = match_route(d, method, path)
    if route is not None:
        return ROUTE, d, route, args
    if allowed is None:
        for mnt in d.mounts:
            if mnt.match(path):
                return MOUNT, d, mnt, None
        return STATUS, d, 404, None
    return STATUS, d, 405, ", ".join(m for m in ALLOW_ORDER if m in allowed)

"""``korectl routes APP``: the servers, domains, routes, mounts and
redirects the application declares, with their handlers (as ``flask routes``
or ``rails routes``), without serving anything."""

import sys

from . import declare


def add_command(subparsers, app_arguments, load_app):
    p = subparsers.add_parser(
        "routes", help="list the servers, domains, routes, mounts and redirects of APP",
        description="Load APP as korectl run would (without binding) and print "
                    "what it serves, in the order requests are matched.")
    app_arguments(p)
    p.set_defaults(kore_command=lambda args: cmd_routes(args, load_app))


def handler_name(fn):
    """``module.Class.method`` for a callback (bound methods included)."""
    fn = getattr(fn, "__func__", fn)
    mod = getattr(fn, "__module__", None) or ""
    name = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None)
    if name is None:
        return repr(fn)
    return "%s.%s" % (mod, name) if mod else name


def address(addr):
    if addr[0] == "unix":
        return "unix:%s" % addr[1]
    host, port = addr[1], addr[2]
    return "[%s]:%s" % (host, port) if ":" in str(host) else "%s:%s" % (host, port)


def methods(route):
    return "ANY" if route.methods is None else ",".join(sorted(m.upper() for m in route.methods))


def describe_mount(m):
    target = getattr(m, "app", None)
    if target is not None:
        return "%s -> %s" % (m.where, handler_name(target))
    root = getattr(m, "root", None)
    if root is not None:
        return "%s -> %s" % (m.where, root)
    return "%s (%s)" % (m.where, type(m).__name__)


def lines(state=None):
    """The listing as text lines (a pure function of the declared state)."""
    state = declare.state if state is None else state
    out = []
    for srv in state.servers.values():
        out.append("server %s (%s) %s" % (srv.name, "tls" if srv.tls else "plain",
                                         " ".join(address(a) for a in srv.addresses)))
        for d in srv.domains:
            out.append("  domain %s" % d.host)
            width = max([len(methods(r)) for r in d.routes] + [3])
            for r in d.routes:
                kind = "~" if r.rx is not None else " "
                out.append("    %-*s %s%-30s %s" % (width, methods(r), kind, r.path,
                                                   handler_name(r.callback)))
            for m in d.mounts:
                out.append("    %s" % describe_mount(m))
            for rx, status, dst in d.redirects:
                out.append("    redirect %s %d -> %s" % (rx.pattern, status, dst))
            if not (d.routes or d.mounts or d.redirects):
                out.append("    (nothing: every request gets 404)")
    if not state.servers:
        out.append("no server declared (kore.server(...) or --bind)")
    return out


def cmd_routes(args, load_app):
    load_app(args)
    for line in lines():
        sys.stdout.write(line + "\n")
    return 0


def no_route_warning(state=None):
    """The warning for an app whose servers serve nothing, or None."""
    state = declare.state if state is None else state
    if not state.servers:
        return None
    if any(d.routes or d.mounts or d.redirects for d in state.domains):
        return None
    return ("the application declares no route, mount or redirect: every request "
            "will get 404 (add one with domain.route(path, handler) or @kore.route; "
            "korectl routes APP lists what is declared)")

"""routing.resolve in process: domains, redirects, exact and regex routes,
405 with Allow, mounts in declaration order."""

import pytest

from kore_http import declare, routing
from kore_http.addresses import parse_bind
from kore_http.mounts import Mount
from kore_http.listeners import set_catchall


def h(req, *args):
    pass


class Prefix(Mount):
    def __init__(self, prefix):
        self.prefix = prefix
        self.where = "mount %s" % prefix


@pytest.fixture
def decl():
    declare.reset()
    yield declare
    declare.reset()


def server(decl, *hosts):
    decl.server("s", ip="127.0.0.1", port=1, tls=False)
    doms = [decl.domain(hname, attach="s") for hname in hosts]
    srv = decl.state.servers["s"]
    set_catchall(srv)
    return srv, doms


def test_exact_route_and_method(decl):
    srv, (d,) = server(decl, "*")
    d.route("/a", h, methods=["get"])
    d.route("/a", h, methods=["post"])
    kind, dom, r, args = routing.resolve(srv, "x", "GET", "/a")
    assert (kind, dom, args) == (routing.ROUTE, d, ())
    assert r.methods == frozenset({"GET", "HEAD"})
    kind, _, r2, _ = routing.resolve(srv, "x", "POST", "/a")
    assert kind == routing.ROUTE and r2 is not r
    kind, _, status, allow = routing.resolve(srv, "x", "PUT", "/a")
    assert (kind, status, allow) == (routing.STATUS, 405, "GET, HEAD, POST")


def test_regex_groups_and_order(decl):
    srv, (d,) = server(decl, "*")
    d.route("^/u/([0-9]+)$", h, methods=["get"])
    d.route("^/u/(.*)$", h)
    kind, _, r, args = routing.resolve(srv, "x", "GET", "/u/42")
    assert kind == routing.ROUTE and r.path == "^/u/([0-9]+)$" and args == ("42",)
    kind, _, r, args = routing.resolve(srv, "x", "GET", "/u/bob")
    assert r.path == "^/u/(.*)$" and args == ("bob",)
    # the first regex allows only GET: POST falls through to the second
    kind, _, r, args = routing.resolve(srv, "x", "POST", "/u/42")
    assert r.path == "^/u/(.*)$" and args == ("42",)


def test_domain_selection_by_host(decl):
    srv, (a, b) = server(decl, "a.test", "*.b.test")
    a.route("/", h)
    b.route("/", h)
    assert routing.resolve(srv, "A.TEST:8080", "GET", "/")[1] is a
    assert routing.resolve(srv, "x.b.test", "GET", "/")[1] is b
    assert routing.resolve(srv, "c.test", "GET", "/")[:3] == (routing.NO_DOMAIN, None, 404)
    assert routing.host_name("[::1]:443") == "[::1]"
    assert routing.select_domain(srv, "b.test") is None


def test_redirects_before_routes(decl):
    srv, (d,) = server(decl, "*")
    d.route("/old/x", h)
    d.redirect("^/old/(.*)$", 301, "/new/$1?from=$2")
    assert routing.resolve(srv, "x", "GET", "/old/x") == \
        (routing.REDIRECT, d, 301, "/new/x?from=")


def test_mounts_in_order_after_routes(decl):
    srv, (d,) = server(decl, "*")
    d.route("/static/special", h)
    first, second = Prefix("/static"), Prefix("")
    d.mounts.extend([first, second])
    assert routing.resolve(srv, "x", "GET", "/static/special")[0] == routing.ROUTE
    assert routing.resolve(srv, "x", "GET", "/static/a.css")[2] is first
    assert routing.resolve(srv, "x", "GET", "/staticx")[2] is second
    d.mounts.remove(second)
    assert routing.resolve(srv, "x", "GET", "/other")[:3] == (routing.STATUS, d, 404)


def test_405_route_wins_over_mount(decl):
    srv, (d,) = server(decl, "*")
    d.route("/m", h, methods=["post"])
    d.mounts.append(Prefix(""))
    kind, _, status, allow = routing.resolve(srv, "x", "GET", "/m")
    assert (kind, status, allow) == (routing.STATUS, 405, "POST")


def test_plugin_routes_go_first(decl):
    from kore_http.extend import PluginRoutes
    srv, (d,) = server(decl, "*")
    d.route("^/.*$", h)
    PluginRoutes().route("/healthz", h, methods=["get"], owner="kore-plugin-x")
    kind, _, r, _ = routing.resolve(srv, "x", "GET", "/healthz")
    assert r.path == "/healthz" and "kore-plugin-x" in r.where
    own = PluginRoutes().server("own", "127.0.0.1:9")
    assert own.server.addresses == [parse_bind("127.0.0.1:9")]


def test_expand():
    import re
    m = re.search("^/(a)(b)?$", "/a")
    assert routing.expand("/$1/$2/$9/$", m) == "/a///$"

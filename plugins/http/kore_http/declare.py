"""What an application declares: servers, domains, routes, prerequest hooks.

``kore.server``, ``kore.domain``, ``kore.route``, ``kore.prerequest`` and
``kore.mount`` record into the module state below, in the master, while the
application is imported and configured.  ``resolve()`` (from the
``kore_app_loaded`` hook) turns queued ``@kore.route`` routes into domain
routes, applies ``bind`` and adds the routes plugins declare through the
``kore_http_routes`` hook; workers inherit the result through fork.
"""

import fnmatch
import re

from kore.config import ConfigError
from kore.log import LOG, LOG_WARNING

from .addresses import parse_bind
from .mounts import Mount

METHOD_BITS = {"GET": 1, "POST": 2, "PUT": 4, "DELETE": 16, "HEAD": 32,
               "OPTIONS": 64, "PATCH": 128}
ALL_METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH")


class State:
    def __init__(self):
        self.servers = {}          # name -> Server, in creation order
        self.domains = []          # every Domain, in creation order
        self.queued_routes = []    # (path, fn, kwargs) from @kore.route
        self.prerequest = []       # kore.prerequest callables
        self.mounts = []           # (prefix, wsgi_app, domain name or None)
        self.json = None           # module with dumps/loads (kore.json_serializer)


state = State()


def reset():
    global state
    state = State()


# ---------------------------------------------------------------------------
# servers and domains
# ---------------------------------------------------------------------------

class Server:
    """A named listener (``kore.server``): one or more addresses, TLS or not."""

    def __init__(self, name, addresses, tls):
        self.name = name
        self.addresses = addresses   # [("tcp", host, port)] / [("unix", path)]
        self.tls = tls
        self.domains = []

    def __repr__(self):
        return "<kore.server %s %s%s>" % (self.name, self.addresses,
                                          " tls" if self.tls else "")


def server(name="default", ip=None, port=None, path=None, tls=True):
    """kore.server(name, ip=, port=, path=, tls=True)."""
    if not isinstance(name, str) or not name:
        raise RuntimeError("server name must be a non-empty str")
    if name in state.servers:
        raise RuntimeError("server '%s' already exists" % name)
    if ip is not None and path is not None:
        raise RuntimeError("server '%s': ip and path are mutually exclusive" % name)
    if path is not None:
        addresses = [("unix", str(path))]
    else:
        if ip is None:
            raise RuntimeError("server '%s': missing ip or path" % name)
        if port is None:
            raise RuntimeError("server '%s': missing port" % name)
        try:
            portnum = int(port)
        except (TypeError, ValueError):
            raise RuntimeError("server '%s': bad port %r" % (name, port)) from None
        if not 0 <= portnum <= 65535:
            raise RuntimeError("server '%s': bad port %r" % (name, port))
        addresses = [("tcp", str(ip), portnum)]
    state.servers[name] = Server(name, addresses, bool(tls))
    return None


class Domain:
    """kore.domain: a virtual host on a server with its routes."""

    def __init__(self, host, srv, cert=None, key=None, acme=False,
                 client_verify=None, verify_depth=1, crl=None):
        self.host = host
        self.lhost = host.lower()
        self.wildcard = any(c in host for c in "*?[")
        self.server = srv
        self.cert = cert
        self.key = key
        self.acme = acme
        self.client_verify = client_verify
        self.verify_depth = verify_depth
        self.crl = crl
        self.exact = {}       # path -> [Route] (exact routes)
        self.regex = []       # [Route] in insertion order
        self.redirects = []   # [(compiled, status, dst)]
        self.mounts = []      # [mounts.Mount]: filemaps, then WSGI and plugin mounts
        self.routes = []      # every Route, in insertion order
        self._accesslog = None
        self.ssl_context = None

    def __repr__(self):
        return "<kore.domain %s on %s>" % (self.host, self.server.name)

    def matches(self, host):
        if not self.wildcard:
            return host == self.lhost
        return fnmatch.fnmatchcase(host, self.lhost)

    # setter-only as in Kore (reading returns the path, which is harmless)
    @property
    def accesslog(self):
        return self._accesslog

    @accesslog.setter
    def accesslog(self, path):
        if not isinstance(path, str):
            raise TypeError("accesslog must be a path (str)")
        self._accesslog = path

    def route(self, path, callback, **kw):
        """domain.route(path, callback, methods=[...], get={...}, auth={...},
        hooks={...})."""
        add_route(self, path, callback, kw)
        return None

    def filemaps(self, maps):
        """domain.filemaps({url: path | (path, authdict)})."""
        from .filemaps import FileMap
        if not isinstance(maps, dict):
            raise TypeError("filemaps takes a dict {url: path}")
        for url, target in maps.items():
            auth = None
            if isinstance(target, (tuple, list)):
                if len(target) != 2:
                    raise TypeError("filemap %r: expected (path, auth)" % url)
                target, auth = target
                auth = Auth.make(auth, "filemap %s" % url)
            if not isinstance(url, str) or not url.startswith("/"):
                raise RuntimeError("filemap url %r must start with /" % (url,))
            fm = FileMap(self, url, str(target), auth)
            for other in self.mounts:
                if isinstance(other, FileMap) and other.url == fm.url:
                    raise ConfigError("duplicate filemap %s on domain %s" % (url, self.host))
            self.mounts.append(fm)
        return None

    def redirect(self, regex, status, dst):
        """domain.redirect("^/old/(.*)$", 301, "/new/$1")."""
        try:
            rx = re.compile(regex)
        except re.error as exc:
            raise RuntimeError("redirect: bad regex %r: %s" % (regex, exc)) from None
        # Kore takes any status here; a 3xx is what a browser follows
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise RuntimeError("redirect: bad status %r" % (status,))
        self.redirects.append((rx, int(status), str(dst)))
        return None


def domain(host, attach="default", cert=None, key=None, acme=False,
           client_verify=None, verify_depth=1, crl=None):
    """kore.domain(host, attach=, cert=, key=, acme=, client_verify=, verify_depth=)."""
    if not isinstance(host, str) or not host:
        raise RuntimeError("domain host must be a non-empty str")
    srv = state.servers.get(attach)
    if srv is None:
        if attach == "default" and not state.servers:
            # Kore creates nothing either; `bind` may create "default" later
            srv = Server("default", [], tls=False)
            srv.implicit = True
            state.servers["default"] = srv
        else:
            raise RuntimeError("server '%s' does not exist" % attach)
    for d in srv.domains:
        if d.lhost == host.lower():
            raise RuntimeError("domain '%s' exists" % host)
    if srv.tls and not acme and (not cert or not key):
        raise RuntimeError("domain '%s' on TLS server '%s' needs cert= and key="
                           % (host, srv.name))
    d = Domain(host, srv, cert, key, acme, client_verify, verify_depth, crl)
    from .tls import _check_verify_depth
    _check_verify_depth(d)          # on plain servers too: a typo is a typo
    srv.domains.append(d)
    state.domains.append(d)
    return d


# ---------------------------------------------------------------------------
# routes
# ---------------------------------------------------------------------------

class Auth:
    __slots__ = ("type", "value", "verify", "redirect")

    @classmethod
    def make(cls, spec, where):
        if spec is None:
            return None
        if not isinstance(spec, dict):
            raise RuntimeError("%s: auth must be a dict" % where)
        a = cls()
        a.type = spec.get("type")
        if a.type not in ("header", "cookie"):
            raise RuntimeError("%s: auth type must be 'header' or 'cookie'" % where)
        a.value = spec.get("value")
        if not isinstance(a.value, str) or not a.value:
            raise RuntimeError("%s: auth needs 'value' (header or cookie name)" % where)
        a.verify = spec.get("verify")
        if not callable(a.verify):
            raise RuntimeError("%s: auth needs a callable 'verify'" % where)
        a.redirect = spec.get("redirect")
        return a


class Route:
    """A route: exact path or regex, allowed methods, params, auth, hooks."""

    __slots__ = ("domain", "path", "callback", "rx", "methods", "mask", "params",
                 "qs", "auth", "on_headers", "on_body_chunk", "on_free", "name",
                 "wsgi", "is_coro", "where")

    def __repr__(self):
        return "<route %s>" % self.name

    def allows(self, method):
        return self.methods is None or method in self.methods


def _compile_params(kind, spec, where):
    if not isinstance(spec, dict):
        raise RuntimeError("%s: %s params must be a dict" % (where, kind))
    out = {}
    for name, v in spec.items():
        if isinstance(v, str):
            try:
                out[name] = re.compile(v)
            except re.error as exc:
                raise RuntimeError("%s: bad regex for param %r: %s" % (where, name, exc)) from None
        elif callable(v):
            out[name] = v
        else:
            raise RuntimeError("%s: param %r must be a regex or a callable" % (where, name))
    return out


def make_route(d, path, callback, kw):
    if not isinstance(path, str) or not path:
        raise RuntimeError("route path must be a non-empty str")
    if not callable(callback):
        raise RuntimeError("route %s: callback is not callable" % path)
    kw = dict(kw)
    kw.pop("domain", None)
    if "key" in kw:
        # Kore's domain.route page lists key= ("the path to the private key
        # for this domain", copied from kore.domain) and Kore ignores it
        kw.pop("key")
        LOG.write(LOG_WARNING, "route %s: key= has no meaning on a route (Kore's "
                  "documentation lists it by mistake); ignored" % path)
    r = Route()
    r.domain = d
    r.path = path
    r.callback = callback
    r.name = path
    r.where = "route '%s'" % path
    r.wsgi = None
    r.is_coro = None
    if path.startswith("/"):
        r.rx = None
    else:
        try:
            r.rx = re.compile(path)
        except re.error as exc:
            raise RuntimeError("route %r: bad regex: %s" % (path, exc)) from None
    methods = kw.pop("methods", None)
    r.params = {}
    if methods is None:
        r.methods = None
        r.mask = 0xff
    else:
        if isinstance(methods, str):
            methods = [methods]
        ms = set()
        for m in methods:
            mu = str(m).upper()
            if mu not in METHOD_BITS:
                raise RuntimeError("route %s: unknown method %r" % (path, m))
            ms.add(mu)
            spec = kw.pop(m, None)
            if spec is None and m != mu.lower():
                spec = kw.pop(mu.lower(), None)
            if spec is not None:
                r.params[mu] = _compile_params(m, spec, "route %s" % path)
        if "GET" in ms:
            ms.add("HEAD")
            if "GET" in r.params and "HEAD" not in r.params:
                r.params["HEAD"] = r.params["GET"]
        r.methods = frozenset(ms)
        r.mask = sum(METHOD_BITS[m] for m in ms)
    qs = kw.pop("qs", None)
    r.qs = _compile_params("qs", qs, "route %s" % path) if qs is not None else None
    if methods is None:
        for m in ("get", "post", "put", "delete", "head", "options", "patch"):
            kw.pop(m, None)   # Kore ignores params on a route without methods=
    r.auth = Auth.make(kw.pop("auth", None), "route %s" % path)
    hooks = kw.pop("hooks", None) or {}
    if not isinstance(hooks, dict):
        raise RuntimeError("route %s: hooks must be a dict" % path)
    for h in hooks:
        if h not in ("on_headers", "on_body_chunk", "on_free"):
            raise RuntimeError("route %s: unknown hook %r" % (path, h))
    r.on_headers = hooks.get("on_headers")
    r.on_body_chunk = hooks.get("on_body_chunk")
    r.on_free = hooks.get("on_free")
    if kw:
        raise RuntimeError("route %s: unknown keyword(s) %s" % (path, ", ".join(sorted(kw))))
    return r


def add_route(d, path, callback, kw, first=False, owner=None):
    """Add a route to domain ``d``; ``first`` puts it ahead of the routes
    already there (plugin routes: ``owner`` names the plugin)."""
    r = make_route(d, path, callback, kw)
    if owner is not None:
        r.where = "route '%s' of %s" % (path, owner)
    for other in d.routes:
        if other.path == r.path and (other.methods is None or r.methods is None
                                     or other.methods & r.methods):
            both = sorted((other.methods or set(ALL_METHODS))
                          & (r.methods or set(ALL_METHODS)))
            raise ConfigError("duplicate route %s (%s) on domain %s%s"
                              % (path, ",".join(m for m in both if m != "HEAD")
                                 or "HEAD", d.host,
                                 " (declared by %s)" % owner if owner else ""))
    if first:
        d.routes.insert(0, r)
        if r.rx is None:
            d.exact.setdefault(path, []).insert(0, r)
        else:
            d.regex.insert(0, r)
        return r
    d.routes.append(r)
    if r.rx is None:
        d.exact.setdefault(path, []).append(r)
    else:
        d.regex.append(r)
    return r


class route:
    """@kore.route(path, methods=[...], domain="host", ...): queued until the
    application is loaded (Kore's kore_python_routes_resolve)."""

    __slots__ = ("path", "kw")

    def __init__(self, path, **kw):
        if not isinstance(path, str) or not path:
            raise RuntimeError("route path must be a non-empty str")
        self.path = path
        self.kw = kw

    def inner(self, fn):
        # checked now, so that a bad method or regex is reported at the
        # decorator's line of the user's file (the route is installed later)
        make_route(None, self.path, fn, {k: v for k, v in self.kw.items() if k != "key"})
        state.queued_routes.append((self.path, fn, self.kw))
        return fn

    __call__ = inner


def prerequest(fn):
    """kore.prerequest(fn): fn(req) runs before every handler; False stops."""
    if not callable(fn):
        raise TypeError("kore.prerequest takes a callable")
    state.prerequest.append(fn)
    return fn


# Plugins that mount other kinds of targets (kore-plugin-proxy: "@alias")
# register a factory: factory(prefix, target) returns a mounts.Mount for a
# target it serves, or None; the first answer wins, WSGI apps come last.
MOUNT_FACTORIES = []


def register_mount_factory(factory):
    """Let ``kore.mount(prefix, target)`` build a plugin's mount (see above)."""
    if factory not in MOUNT_FACTORIES:
        MOUNT_FACTORIES.append(factory)


def mount(prefix, app, domain=None):
    """kore.mount(prefix, wsgi_app, domain=None): serve a WSGI app under
    prefix (or a plugin's target, MOUNT_FACTORIES)."""
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise RuntimeError("kore.mount: prefix must start with /")
    for factory in MOUNT_FACTORIES:
        m = factory(prefix.rstrip("/"), app)
        if m is not None:
            state.mounts.append((prefix.rstrip("/"), m, domain))
            return None
    if not callable(app):
        raise RuntimeError("kore.mount: the WSGI application must be callable")
    state.mounts.append((prefix.rstrip("/"), app, domain))
    return None


def json_serializer(module):
    """kore.json_serializer(module): module with dumps() (and loads()) used by
    req.send()/end() for dicts and lists."""
    if not hasattr(module, "dumps"):
        raise TypeError("json_serializer: the module needs a dumps() function")
    state.json = module
    return True


# ---------------------------------------------------------------------------
# resolution at application load
# ---------------------------------------------------------------------------

def _find_domain(name, what):
    if name is None:
        if len(state.domains) != 1:
            raise ConfigError(
                "ambiguous domain on %s: %d domains exist (%s); pass domain="
                % (what, len(state.domains),
                   ", ".join(d.host for d in state.domains) or "none"))
        return state.domains[0]
    for d in state.domains:
        if d.host == name:
            return d
    raise ConfigError("%s: domain '%s' does not exist (known: %s)"
                      % (what, name, ", ".join(d.host for d in state.domains) or "none"))


def _bind_method(fn, koreapp):
    """A function decorated inside the koreapp class becomes its bound method."""
    if koreapp is None:
        return fn
    name = getattr(fn, "__name__", None)
    if name is None:
        return fn
    bound = getattr(koreapp, name, None)
    if getattr(bound, "__func__", None) is fn:
        return bound
    return fn


def resolve(app, bind):
    """Install queued routes and mounts, apply ``bind``; raise ConfigError."""
    koreapp = getattr(app, "koreapp", None) if app is not None else None
    if bind:
        addresses = [parse_bind(b) for b in bind]
        real = [s for s in state.servers.values() if not getattr(s, "implicit", False)]
        if len(real) > 1:
            raise ConfigError("--bind cannot be used with several servers (%s): "
                              "set their addresses in the application"
                              % ", ".join(s.name for s in real))
        if not state.servers:
            state.servers["default"] = Server("default", [], tls=False)
        srv = next(iter(state.servers.values()))
        srv.addresses = addresses
        if not srv.domains:
            domain("*", attach=srv.name)
    elif not state.servers and (state.queued_routes or state.mounts):
        raise ConfigError("no server configured: call kore.server(...) or pass --bind")
    for s in state.servers.values():
        if not s.addresses:
            raise ConfigError("server '%s' has no address: pass --bind or "
                              "kore.server(ip=, port=)" % s.name)
    if state.servers and not state.domains and (state.queued_routes or state.mounts):
        raise ConfigError("routes declared but no kore.domain(...) exists")
    for path, fn, kw in state.queued_routes:
        d = _find_domain(kw.get("domain"), "route %s" % path)
        add_route(d, path, _bind_method(fn, koreapp), kw)
    state.queued_routes = []
    from .wsgi import WsgiMount
    for prefix, wsgi_app, dname in state.mounts:
        d = _find_domain(dname, "mount %s" % (prefix or "/"))
        if isinstance(wsgi_app, Mount):
            d.mounts.append(wsgi_app)      # a plugin's (MOUNT_FACTORIES)
            continue
        for m in d.mounts:
            if isinstance(m, WsgiMount) and m.prefix == prefix:
                raise ConfigError("duplicate mount %s on domain %s" % (prefix or "/", d.host))
        d.mounts.append(WsgiMount(prefix, wsgi_app))
    for s in state.servers.values():
        if s.tls:
            from .tls import build_contexts
            build_contexts(s)

"""What other plugins add to the HTTP server, through hooks only.

``declare_plugin_routes()`` (at application load, in the master) calls the
``kore_http_routes`` hook with a ``PluginRoutes`` registrar: plugins add
routes ahead of the application's (``/metrics``, ``/healthz``, ACME's
``/.well-known/acme-challenge/``) and servers of their own (a metrics
listener).  ``install_request_attributes()`` puts what the
``kore_http_request_attributes`` hook returns onto ``HttpRequest``
(``req.pgsql``, ``req.websocket_handshake``): the http plugin installs
them, no plugin assigns onto its classes.
"""

from kore import runtime
from kore.config import ConfigError

from . import declare as _declare


class PluginRoutes:
    """The registrar the ``kore_http_routes`` hook receives."""

    def __init__(self):
        self.added = []       # (domain, route)

    def server(self, name, address, tls=False):
        """Declare a plain server ``name`` listening on ``address`` (bind
        syntax: "127.0.0.1:9100", "[::1]:9100", "unix:/path") with one
        domain "*"; returns that domain (pass it to ``route(domains=)``)."""
        if name in _declare.state.servers:
            raise ConfigError("server '%s' already exists (a plugin declares it)" % name)
        if tls:
            raise ConfigError("plugin server '%s': only plain servers can be "
                              "declared by plugins" % name)
        addr = _declare.parse_bind(address)
        srv = _declare.Server(name, [addr], False)
        _declare.state.servers[name] = srv
        d = _declare.Domain("*", srv)
        srv.domains.append(d)
        _declare.state.domains.append(d)
        return d

    def domains(self):
        """The application's domains (``kore.domain`` objects with ``host``,
        ``routes`` and ``mounts``), to check what a plugin's own declarations
        name (a gateway policy for a path that no route has)."""
        return [d for d in _declare.state.domains
                if not getattr(d.server, "plugin_owned", False)]

    def route(self, path, handler, methods=None, domains=None, owner="a plugin", **kw):
        """Add a route (Kore's syntax: an exact path or a regex, ``methods=``,
        ``hooks=``, ``auth=``) ahead of the application's routes on every
        domain in ``domains`` (Domain objects or host names; default: every
        domain of every server declared by the application).  ``owner``
        names the plugin in error messages."""
        if domains is None:
            targets = [d for d in _declare.state.domains
                       if not getattr(d.server, "plugin_owned", False)]
        else:
            targets = []
            for d in domains:
                if isinstance(d, str):
                    found = [x for x in _declare.state.domains if x.host == d]
                    if not found:
                        raise ConfigError("%s: route %s: domain '%s' does not exist"
                                          % (owner, path, d))
                    targets.extend(found)
                else:
                    targets.append(d)
        if methods is not None:
            kw["methods"] = methods
        for d in targets:
            r = _declare.add_route(d, path, handler, kw, first=True, owner=owner)
            self.added.append((d, r))


def declare_plugin_routes():
    registrar = PluginRoutes()
    runtime.hook("kore_http_routes")(routes=registrar)
    return registrar


_installed = {}


def install_request_attributes():
    """Install the ``kore_http_request_attributes`` answers on HttpRequest."""
    from .request import HttpRequest, NeedsPlugin, _PLUGIN_ATTRIBUTES
    for name in list(_installed):
        if HttpRequest.__dict__.get(name) is _installed[name]:
            if name in _PLUGIN_ATTRIBUTES:
                setattr(HttpRequest, name, NeedsPlugin(name, _PLUGIN_ATTRIBUTES[name]))
            else:
                delattr(HttpRequest, name)
        del _installed[name]
    for attrs in runtime.hook("kore_http_request_attributes")():
        for name, value in (attrs or {}).items():
            placeholder = isinstance(HttpRequest.__dict__.get(name), NeedsPlugin)
            if name in _installed or (hasattr(HttpRequest, name) and not placeholder):
                raise ConfigError("req.%s is provided twice (by the http plugin "
                                  "or two plugins)" % name)
            setattr(HttpRequest, name, value)
            _installed[name] = value

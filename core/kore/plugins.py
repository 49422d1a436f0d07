"""Plugin discovery and the pluggy PluginManager.

Plugins are found through the entry-point group ``kore.plugins``.  Two
environment variables steer loading:

``KORE_PLUGINS=a,b``
    only these plugins (entry-point names) are loaded;
``KORE_DISABLE_PLUGIN_AUTOLOAD=1``
    no plugin is loaded from entry points, except those that KORE_PLUGINS
    names explicitly.

A plugin that fails to import stops start-up with a ``PluginLoadError``
naming the plugin, its distribution and the error.
"""

import os
import sys
from importlib import metadata

import pluggy

from . import _state, hookspecs
from .errors import PluginLoadError

ENTRY_POINT_GROUP = "kore.plugins"


class PluginInfo:
    __slots__ = ("name", "module", "dist", "version", "entry_point")

    def __init__(self, name, module, dist, version, entry_point):
        self.name = name
        self.module = module
        self.dist = dist
        self.version = version
        self.entry_point = entry_point


def _entry_points():
    eps = metadata.entry_points()
    if hasattr(eps, "select"):
        found = eps.select(group=ENTRY_POINT_GROUP)
    else:  # Python < 3.10
        found = eps.get(ENTRY_POINT_GROUP, [])
    seen = {}
    for ep in found:
        seen.setdefault(ep.name, ep)
    return [seen[name] for name in sorted(seen)]


def _dist_of(ep):
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "?", "?"
    return dist.metadata["Name"], dist.version


def create_manager():
    pm = pluggy.PluginManager("kore")
    pm.add_hookspecs(hookspecs)
    return pm


def parse_allow_list(value):
    if value is None or not value.strip():
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def load_plugins(pm=None, environ=None):
    """Discover, import and register plugins; return (pm, [PluginInfo])."""
    environ = os.environ if environ is None else environ
    pm = pm or create_manager()
    allow = parse_allow_list(environ.get("KORE_PLUGINS"))
    no_autoload = environ.get("KORE_DISABLE_PLUGIN_AUTOLOAD", "").strip().lower() in (
        "1", "yes", "true", "on")
    eps = _entry_points()
    available = {ep.name for ep in eps}
    if allow is not None:
        unknown = [name for name in allow if name not in available]
        if unknown:
            raise PluginLoadError(
                "KORE_PLUGINS names %s, which %s not installed (installed: %s)"
                % (", ".join(repr(u) for u in unknown),
                   "is" if len(unknown) == 1 else "are",
                   ", ".join(sorted(available)) or "none"))
    infos = []
    for ep in eps:
        if allow is not None and ep.name not in allow:
            continue
        if allow is None and no_autoload:
            continue
        dist, version = _dist_of(ep)
        try:
            module = ep.load()
        except Exception as exc:
            raise PluginLoadError(
                "plugin '%s' (%s %s, entry point %s) failed to import: %s: %s"
                % (ep.name, dist, version, ep.value, type(exc).__name__, exc)) from exc
        try:
            pm.register(module, name=ep.name)
        except Exception as exc:
            raise PluginLoadError("plugin '%s' (%s %s) could not be registered: %s"
                                  % (ep.name, dist, version, exc)) from exc
        infos.append(PluginInfo(ep.name, module, dist, version, ep.value))
    try:
        pm.hook.kore_add_hookspecs(pm=pm)
    except Exception as exc:
        raise PluginLoadError("adding plugin hook specifications failed: %s: %s"
                              % (type(exc).__name__, exc)) from exc
    return pm, infos


def hooks_of(pm, module):
    """Names of the hooks a registered plugin module implements."""
    names = []
    for hookcaller in pm.get_hookcallers(module) or ():
        names.append(hookcaller.name)
    return sorted(names)


def install(environ=None):
    """Load plugins, declare their options and add their names to ``kore``.

    Called once per process by ``korectl`` (and by the gunicorn bridge).
    """
    import kore
    pm, infos = load_plugins(environ=environ)
    _state.pm = pm
    _state.plugins = infos
    pm.hook.kore_config_options(registry=_state.registry)
    owners = {}
    for module, names in _namespaces(pm):
        plugin = pm.get_name(module)
        for name in names:
            if name in owners:
                raise PluginLoadError("kore.%s is provided by two plugins: %s and %s"
                                      % (name, owners[name], plugin))
            if name in kore._KERNEL_NAMES:
                raise PluginLoadError("plugin '%s' may not replace kore.%s"
                                      % (plugin, name))
            owners[name] = plugin
        kore._provide(names)
    return pm, infos


def _namespaces(pm):
    """Yield (plugin module, names dict) for every kore_namespace implementation."""
    for impl in pm.hook.kore_namespace.get_hookimpls():
        try:
            names = impl.function()
        except Exception as exc:
            raise PluginLoadError("plugin '%s': kore_namespace() failed: %s: %s"
                                  % (impl.plugin_name, type(exc).__name__, exc)) from exc
        if names:
            yield impl.plugin, dict(names)


def print_plugins(infos, pm, out=sys.stdout):
    if not infos:
        out.write("no plugins loaded\n")
        return
    for info in infos:
        out.write("%s  %s %s\n" % (info.name, info.dist, info.version))
        hooks = hooks_of(pm, info.module)
        out.write("    hooks: %s\n" % (", ".join(hooks) if hooks else "(none)"))

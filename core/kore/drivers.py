"""Drivers: exactly one implementation of a kind, chosen by name.

Where a plugin lets the operator choose one implementation among several
(the websocket plugin's pub/sub backplane: ``local`` or ``redis``; a proxy's
balancing policy), the implementations are *drivers*: entry points in the
group ``kore.<plugin>.<kind>`` (``kore.websocket.backplane``), loaded with
stevedore's ``DriverManager``.  A third-party distribution adds a driver by
declaring an entry point in that group; nothing else changes::

    [project.entry-points."kore.websocket.backplane"]
    redis = "kore_redis.backplane:RedisBackplane"

``load(plugin, kind, name)`` returns the object the entry point names
(called with ``invoke_args``/``invoke_kwds`` when ``invoke=True``).  A name
nobody provides raises ``DriverNotFound`` naming the option that chose it,
the drivers that are installed and the package to install; a driver that
fails to import raises ``DriverLoadFailure`` naming its distribution.  Both
are ``kore.ConfigError``: raised during start-up they stop it with one
message (exit code 2).
"""

from __future__ import annotations

from importlib import metadata
from typing import Any, Dict, List, Mapping, Optional, Sequence

from .config import ConfigError

__all__ = ["DriverLoadFailure", "DriverNotFound", "available", "group", "load"]


class DriverNotFound(ConfigError):
    """No installed distribution provides the driver asked for."""

    def __init__(self, message: str, group: str, name: str,
                 installed: Sequence[str]) -> None:
        super().__init__(message)
        self.group = group
        self.name = name
        self.installed = list(installed)


class DriverLoadFailure(ConfigError):
    """The driver's entry point exists but importing or creating it failed."""

    def __init__(self, message: str, group: str, name: str) -> None:
        super().__init__(message)
        self.group = group
        self.name = name


def group(plugin: str, kind: str) -> str:
    """The entry-point group of ``plugin``'s drivers of ``kind``."""
    for part, what in ((plugin, "plugin"), (kind, "kind")):
        if not part or "." in part or part != part.strip():
            raise ValueError("kore.drivers: bad %s name %r" % (what, part))
    return "kore.%s.%s" % (plugin, kind)


def _entry_points(grp: str) -> List[metadata.EntryPoint]:
    eps = metadata.entry_points()
    if hasattr(eps, "select"):
        return list(eps.select(group=grp))
    return list(eps.get(grp, []))  # Python < 3.10


def available(plugin: str, kind: str) -> List[str]:
    """Names of the installed drivers of ``plugin``/``kind`` (none imported)."""
    return sorted({ep.name for ep in _entry_points(group(plugin, kind))})


def _dist_of(ep: metadata.EntryPoint) -> str:
    """"name version" of the distribution declaring ``ep`` (stevedore's
    cached entry points carry no distribution: look it up)."""
    dist = getattr(ep, "dist", None)
    if dist is None:
        for found in _entry_points(ep.group):
            if found.name == ep.name and found.value == ep.value:
                dist = getattr(found, "dist", None)
                break
    if dist is None:
        return "unknown distribution"
    return "%s %s" % (dist.metadata["Name"], dist.version)


def load(plugin: str, kind: str, name: str, *, option: Optional[str] = None,
         packages: Optional[Mapping[str, str]] = None, invoke: bool = False,
         invoke_args: Sequence[Any] = (),
         invoke_kwds: Optional[Dict[str, Any]] = None) -> Any:
    """Load driver ``name`` of ``plugin``'s ``kind``.

    :param option: the configuration option whose value ``name`` is, named
        in the error message.
    :param packages: ``{driver name: distribution}`` for drivers that live
        in a separate distribution, so the message can say what to install.
    :param invoke: call the loaded object with ``invoke_args`` and
        ``invoke_kwds`` and return the result (a class becomes an instance).
    :returns: the entry point's object (or what calling it returned).
    :raises DriverNotFound: no installed driver has that name.
    :raises DriverLoadFailure: the driver failed to import or to be created.
    """
    from stevedore import driver
    from stevedore.exception import MultipleMatches, NoMatches

    grp = group(plugin, kind)
    if not isinstance(name, str) or not name.strip():
        raise DriverNotFound(_missing(grp, repr(name), option, packages, available(plugin, kind)),
                             grp, str(name), available(plugin, kind))
    name = name.strip()

    def failed(_manager: Any, ep: metadata.EntryPoint, exc: BaseException) -> None:
        raise DriverLoadFailure(
            "%s driver '%s' (%s, entry point %s) failed to load: %s: %s"
            % (grp, ep.name, _dist_of(ep), ep.value, type(exc).__name__, exc),
            grp, ep.name) from exc

    try:
        mgr = driver.DriverManager(
            namespace=grp, name=name, invoke_on_load=invoke,
            invoke_args=tuple(invoke_args), invoke_kwds=dict(invoke_kwds or {}),
            on_load_failure_callback=failed, on_missing_entrypoints_callback=None)
    except NoMatches:
        installed = available(plugin, kind)
        raise DriverNotFound(_missing(grp, "'%s'" % name, option, packages, installed),
                             grp, name, installed) from None
    except MultipleMatches:
        dists = [_dist_of(ep) for ep in _entry_points(grp) if ep.name == name]
        raise DriverLoadFailure("%s driver '%s' is provided by several distributions "
                                "(%s): uninstall all but one"
                                % (grp, name, ", ".join(sorted(set(dists)))),
                                grp, name) from None
    return mgr.driver


def _missing(grp: str, shown: str, option: Optional[str],
             packages: Optional[Mapping[str, str]], installed: Sequence[str]) -> str:
    chosen = " (option '%s')" % option if option else ""
    text = "no %s driver %s%s; installed: %s" % (
        grp, shown, chosen, ", ".join(installed) if installed else "none")
    name = shown.strip("'")
    package = (packages or {}).get(name)
    if package:
        text += "; pip install %s" % package
    else:
        text += ("; install a distribution that declares it in the entry-point "
                 "group %s" % grp)
    return text

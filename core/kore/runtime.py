"""The kernel's public API for plugins: options, hooks and process roles.

Plugins import this module instead of the kernel's private state
(``kore._state``): what is here is the contract, what is there may change.

``option(name)``
    the current value of a configuration option (``kore.config`` reads the
    same registry);
``registry()``
    the ``kore.config.Registry`` itself (``Option`` declarations, sources);
``role()``
    ``"master"``, ``"worker"`` or None (library use, tests);
``worker()`` / ``arbiter()`` / ``application()``
    this process's ``kore.workerproc.Worker``, the master's
    ``kore.arbiter.Arbiter`` and the loaded ``kore.application.Application``
    (None where they do not exist);
``hook(name)``
    the pluggy hook caller ``name`` (``hook("kore_request_done")(req=...)``);
``implemented(name)``
    True when some loaded plugin implements hook ``name``: a hot path checks
    this once and skips the call entirely when nobody listens;
``notify(name, where=..., **kwargs)``
    call hook ``name`` through pluggy; an exception a plugin raises is
    reported (``kore.tracer`` or the log, naming ``where`` and the plugin)
    instead of propagating;
``call_reported(name, where=..., **kwargs)``
    the same, but the exception is re-raised after it was reported (for
    callers that must react to the failure, such as a worker's boot).
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import TYPE_CHECKING, Any, Optional

from . import _state
from .trace import report

if TYPE_CHECKING:
    import pluggy

    from .application import Application
    from .arbiter import Arbiter
    from .config import Registry
    from .workerproc import Worker


def option(name: str) -> Any:
    """Value of configuration option ``name`` (unknown -> ConfigError)."""
    return _state.registry.get(name)


def registry() -> Registry:
    """The process's option registry (``kore.config.Registry``)."""
    return _state.registry


def role() -> Optional[str]:
    """``"master"``, ``"worker"`` or None."""
    return _state.role


def worker() -> Optional[Worker]:
    """The worker object of this worker process, or None.

    Under ``korectl`` it is a ``kore.workerproc.Worker``; under another
    supervisor (the gunicorn bridge) any object with ``id``, ``pid``,
    ``app``, ``stopping``, ``send(msg)`` and ``request_shutdown(fatal)``.
    """
    return _state.worker


def arbiter() -> Optional[Arbiter]:
    """The master's ``kore.arbiter.Arbiter``, or None outside the master."""
    return _state.arbiter


def application() -> Optional[Application]:
    """The loaded ``kore.application.Application``, or None."""
    return _state.app


def plugin_manager() -> Optional[pluggy.PluginManager]:
    """The pluggy ``PluginManager`` (None before plugins are loaded)."""
    return _state.pm


def hook(name: str) -> Any:
    """The hook caller for ``name``; raises AttributeError for an unknown hook."""
    pm = _state.pm
    if pm is None:
        raise RuntimeError("kore plugins are not loaded in this process")
    return getattr(pm.hook, name)


def implemented(name: str) -> bool:
    """True when at least one loaded plugin implements hook ``name``."""
    pm = _state.pm
    if pm is None:
        return False
    caller = getattr(pm.hook, name, None)
    return bool(caller is not None and caller.get_hookimpls())


def culprit(name: str, tb: Optional[TracebackType],
            pm: Optional[pluggy.PluginManager] = None) -> Optional[str]:
    """Name of the plugin whose implementation of hook ``name`` appears in
    traceback ``tb`` (the innermost one), or None.  ``pm`` defaults to the
    process's plugin manager."""
    pm = pm if pm is not None else _state.pm
    caller = getattr(pm.hook, name, None) if pm is not None else None
    if caller is None:
        return None
    codes = {}
    for impl in caller.get_hookimpls():
        code = getattr(impl.function, "__code__", None)
        if code is not None:
            codes[code] = impl.plugin_name
    found = None
    while tb is not None:
        found = codes.get(tb.tb_frame.f_code, found)
        tb = tb.tb_next
    return found


def _failure_label(name: str, where: Optional[str]) -> str:
    label = where or ("hook " + name)
    plugin = culprit(name, sys.exc_info()[2])
    if plugin is not None:
        label += " (plugin '%s', %s)" % (plugin, name) if where else \
            " (plugin '%s')" % plugin
    return label


def call_reported(name: str, where: Optional[str] = None, **kwargs: Any) -> Any:
    """Call hook ``name`` through pluggy and return what it returns.

    When an implementation raises, the exception is reported (``kore.tracer``
    or the log, labelled ``where`` -- default ``"hook <name>"`` -- and the
    plugin that raised) and then re-raised.  With no plugin manager loaded
    the call returns ``[]`` (None for a ``firstresult`` hook).
    """
    pm = _state.pm
    if pm is None:
        return None if _firstresult(name) else []
    caller = getattr(pm.hook, name)
    try:
        return caller(**kwargs)
    except Exception:
        report(where=_failure_label(name, where))
        raise


def notify(name: str, where: Optional[str] = None, **kwargs: Any) -> Any:
    """Call hook ``name``; report a plugin's exception instead of raising.

    Returns the hook's result: the list of the implementations' non-None
    results (pluggy's order), or the single answer of a ``firstresult``
    hook.  When an implementation raises, pluggy stops the call there; the
    exception is reported (see ``call_reported``) and ``[]`` (None for a
    ``firstresult`` hook) is returned.
    """
    try:
        return call_reported(name, where, **kwargs)
    except Exception:
        return None if _firstresult(name) else []


def _firstresult(name: str) -> bool:
    """Whether hook ``name`` is declared ``firstresult`` (pluggy stores a
    spec's options on the function as ``<project>_spec``)."""
    from . import hookspecs
    opts = getattr(getattr(hookspecs, name, None), "kore_spec", None) or {}
    return bool(opts.get("firstresult"))

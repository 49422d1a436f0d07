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
    call every implementation of hook ``name``; an exception a plugin raises
    is reported (``kore.tracer`` or the log, naming ``where``) instead of
    propagating, and the results gathered so far are returned.
"""

from . import _state
from .trace import report


def option(name):
    """Value of configuration option ``name`` (KeyError-free: unknown -> ConfigError)."""
    return _state.registry.get(name)


def registry():
    """The process's option registry (``kore.config.Registry``)."""
    return _state.registry


def role():
    """``"master"``, ``"worker"`` or None."""
    return _state.role


def worker():
    """The ``kore.workerproc.Worker`` of this worker process, or None."""
    return _state.worker


def arbiter():
    """The master's ``kore.arbiter.Arbiter``, or None outside the master."""
    return _state.arbiter


def application():
    """The loaded ``kore.application.Application``, or None."""
    return _state.app


def plugin_manager():
    """The pluggy ``PluginManager`` (None before plugins are loaded)."""
    return _state.pm


def hook(name):
    """The hook caller for ``name``; raises AttributeError for an unknown hook."""
    pm = _state.pm
    if pm is None:
        raise RuntimeError("kore plugins are not loaded in this process")
    return getattr(pm.hook, name)


def implemented(name):
    """True when at least one loaded plugin implements hook ``name``."""
    pm = _state.pm
    if pm is None:
        return False
    caller = getattr(pm.hook, name, None)
    return bool(caller is not None and caller.get_hookimpls())


def notify(name, where=None, **kwargs):
    """Call hook ``name``; report a plugin's exception instead of raising.

    Returns the list of results (pluggy's order), or ``[]`` when a plugin
    raised (the exception went to ``kore.tracer`` or the log as
    ``"<where>"``; default ``"hook <name>"``).  For a ``firstresult`` hook the
    single result is returned as is (None when nobody answered or it raised).
    """
    pm = _state.pm
    if pm is None:
        return []
    caller = getattr(pm.hook, name)
    try:
        return caller(**kwargs)
    except Exception:
        report(where=where or ("hook " + name))
        spec = caller.spec
        if spec is not None and spec.opts.get("firstresult"):
            return None
        return []

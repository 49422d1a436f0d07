"""Per-request hooks called without pluggy's per-call machinery.

``runtime.notify("kore_request_done", ...)`` goes through pluggy's hook
caller on every request: keyword checks, the multicall loop and a result
list, several times what a plain implementation (kore-plugin-metrics'
counter) costs.  When every implementation of a hook is a plain one (no
wrapper), ``direct(name, where)`` gives a function calling them in pluggy's
order with the same outcome as ``notify``: an implementation that raises is
reported (labelled ``where`` and its plugin) and stops the call; nothing is
returned.  ``kore_request_done``'s caller takes its arguments by
position too (``call(req, status, duration)``).  With a wrapper implementation, or with ``KORE_TRACE_HOOKS=1``
(pluggy's tracing must see every call), it gives ``None``: use ``notify``.
It is built when the worker loads its settings, like the ``implemented``
flags there.
"""

import os
import sys

from kore import runtime
from kore.trace import report


def direct(name, where):
    if os.environ.get("KORE_TRACE_HOOKS", "").strip().lower() in ("1", "yes", "true", "on"):
        return None
    try:
        impls = runtime.hook(name).get_hookimpls()
    except (RuntimeError, AttributeError):
        return None
    if not impls or any(i.hookwrapper or getattr(i, "wrapper", False) for i in impls):
        return None
    # pluggy calls the implementation registered last first
    calls = tuple((i.function, tuple(i.argnames), i.plugin_name) for i in reversed(impls))

    def call(**kwargs):
        for fn, argnames, plugin in calls:
            try:
                fn(*[kwargs[a] for a in argnames])
            except Exception:
                report(sys.exc_info(), where="%s (plugin '%s', %s)" % (where, plugin, name))
                return

    if name == "kore_request_done":
        many = call

        def call(req, status, duration):          # noqa: F811 -- positional, as finish() calls
            many(req=req, status=status, duration=duration)

    if len(calls) == 1 and calls[0][1] == ("req", "status", "duration") \
            and name == "kore_request_done":
        fn0, _, plugin0 = calls[0]

        def call(req, status, duration):          # noqa: F811 -- the common case
            try:
                fn0(req, status, duration)
            except Exception:
                report(sys.exc_info(), where="%s (plugin '%s', %s)" % (where, plugin0, name))

    return call


def admitters():
    """``kore_http_admit``'s implementations in pluggy's call order, as
    ``((function, plugin name), ...)``, for ``pipeline.admit``; a wrapper
    implementation is refused (the hook is for plain checks)."""
    try:
        impls = runtime.hook("kore_http_admit").get_hookimpls()
    except (RuntimeError, AttributeError):
        return ()
    for i in impls:
        if i.hookwrapper or getattr(i, "wrapper", False):
            raise RuntimeError("kore_http_admit: plugin '%s' implements it as a wrapper; "
                               "implement it as a plain function (wrap kore_http_handle "
                               "instead to run code around the handler)" % i.plugin_name)
    return tuple((i.function, i.plugin_name) for i in reversed(impls))

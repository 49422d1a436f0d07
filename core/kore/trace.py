"""Uncaught exceptions: ``kore.tracer`` or the log, never a dead worker."""

from __future__ import annotations

import sys
import traceback
from typing import Any, Optional

from . import _state
from .log import LOG_ERR, LOG


def observe(name: str, **kwargs: Any) -> None:
    """Call an error-observer hook (``kore_handler_error``,
    ``kore_task_error``).  An exception it raises is only logged: reporting
    it would call the observers again."""
    pm = _state.pm
    if pm is None:
        return
    try:
        getattr(pm.hook, name)(**kwargs)
    except Exception:
        LOG.write(LOG_ERR, "%s hook raised:\n%s" % (name, traceback.format_exc().rstrip()))


def report(exc_info: Optional[Any] = None, where: str = "handler",
           req: Optional[Any] = None) -> None:
    """Report an uncaught exception from a handler, task, timer or callback.

    Calls the ``kore.tracer`` callback with ``(etype, value, tb)`` if one is
    set, else logs the traceback.  Never raises: a failing tracer is logged.
    """
    if exc_info is None:
        exc_info = sys.exc_info()
    etype, value, tb = exc_info
    cb = _state.tracer
    if cb is not None:
        try:
            cb(etype, value, tb)
        except Exception:
            LOG.write(LOG_ERR, "kore.tracer callback raised:\n"
                      + traceback.format_exc().rstrip())
    else:
        text = "".join(traceback.format_exception(etype, value, tb)).rstrip()
        LOG.write(LOG_ERR, "uncaught exception %r in %s\n%s" % (value, where, text))
    observe("kore_handler_error", req=req, exc_info=exc_info)

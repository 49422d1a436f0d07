"""Uncaught exceptions: ``kore.tracer`` or the log, never a dead worker."""

import sys
import traceback

from . import _state
from .log import LOG_ERR, LOG


def report(exc_info=None, where="handler", req=None):
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
    pm = _state.pm
    if pm is not None:
        try:
            pm.hook.kore_handler_error(req=req, exc_info=exc_info)
        except Exception:
            LOG.write(LOG_ERR, "kore_handler_error hook raised:\n"
                      + traceback.format_exc().rstrip())

"""kore for Python: Kore's Python API on gevent.

This module is what applications ``import kore``.  The kernel provides the
functions and constants below; plugins add more names (``kore.server``,
``kore.dbquery``, ...) through the ``kore_namespace`` hook.  Using a
well-known name whose plugin is not installed raises ``kore.PluginMissing``
naming the package to install.
"""

import os as _os
import pickle as _pickle
import time as _time

import pluggy as _pluggy

from . import _state
from .config import ConfigError, ConfigProxy as _ConfigProxy, Option
from .errors import AppLoadError, PluginLoadError, PluginMissing
from .log import (LOG_DEBUG, LOG_ERR, LOG_INFO, LOG_NOTICE, LOG_WARNING,
                  log)

__version__ = "0.1.0"

hookimpl = _pluggy.HookimplMarker("kore")

config = _ConfigProxy(_state.registry)

# Constants of Kore's Python module (kore-behaviour.md section 5).
RESULT_ERROR = 0
RESULT_OK = 1
RESULT_RETRY = 2
MODULE_LOAD = 1
MODULE_UNLOAD = 2
TIMER_ONESHOT = 1
CONN_PROTO_UNKNOWN = 0
CONN_PROTO_HTTP = 1
CONN_PROTO_WEBSOCKET = 2
CONN_STATE_ESTABLISHED = 2
HTTP_METHOD_GET = 1
HTTP_METHOD_POST = 2
HTTP_METHOD_PUT = 4
HTTP_METHOD_DELETE = 16
HTTP_METHOD_HEAD = 32
HTTP_METHOD_OPTIONS = 64
HTTP_METHOD_PATCH = 128
WEBSOCKET_OP_CONT = 0
WEBSOCKET_OP_TEXT = 1
WEBSOCKET_OP_BINARY = 2
WEBSOCKET_OP_CLOSE = 8
WEBSOCKET_OP_PING = 9
WEBSOCKET_OP_PONG = 10
WEBSOCKET_BROADCAST_LOCAL = 1
WEBSOCKET_BROADCAST_GLOBAL = 2

# Names that plugins provide, and the distribution that provides each.
PLUGIN_NAMES = {
    "http": ("server", "domain", "route", "prerequest", "mount",
             "json_serializer"),
    "websocket": ("websocket_broadcast", "publish", "num_subscribers"),
    "pgsql": ("dbsetup", "dbquery", "register_database", "dbquery_sync"),
    "curl": ("httpclient", "curl"),
    "acme": ("acme_renew",),
    "cron": ("cron",),
    "smtpda": ("email", "enable_smtpda", "smtpda_server"),
    "proxy": ("proxy",),
    "gateway": ("gateway",),
}
_NAME_TO_PACKAGE = {name: "kore-plugin-" + plugin
                    for plugin, names in PLUGIN_NAMES.items() for name in names}


def __getattr__(name):
    package = _NAME_TO_PACKAGE.get(name)
    if package is None and name.startswith("CURLOPT_"):
        package = "kore-plugin-curl"
    if package is not None:
        raise PluginMissing(name, package)
    raise AttributeError("module 'kore' has no attribute '%s'" % name)


def _provide(names):
    """Add plugin-provided names to this module (kore_namespace hook)."""
    g = globals()
    for name, value in names.items():
        g[name] = value


# ---------------------------------------------------------------------------
# process and server control
# ---------------------------------------------------------------------------

def time():
    """Milliseconds of the monotonic clock (as Kore's kore.time())."""
    return int(_time.monotonic() * 1000)


def worker():
    """The id (1..N) of the worker running this code, None in the parent."""
    w = _state.worker
    return None if w is None else w.id


def setname(name):
    """Set the program name shown in process titles (``name [wrk N]``)."""
    if not isinstance(name, str):
        raise TypeError("kore.setname: name must be a str")
    _state.progname = name
    from . import proctitle
    proctitle.refresh()


def tracer(callback):
    """Set the callback called as ``callback(etype, value, tb)`` for every
    uncaught exception in handlers, tasks, timers and callbacks."""
    if not callable(callback):
        raise TypeError("kore.tracer: callback must be callable")
    if _state.tracer is not None:
        raise RuntimeError("tracer already set")
    _state.tracer = callback
    return True


def fatal(reason):
    """Log ``fatal: reason`` and end this process with exit status 1 (a
    worker is then restarted under ``worker_death_policy = "restart"``)."""
    log(LOG_ERR, "fatal: %s" % (reason,))
    _exit_process(1)


def fatalx(reason):
    """Like fatal(), and the whole server shuts down."""
    log(LOG_ERR, "fatal: %s" % (reason,))
    if _state.worker is not None:
        _state.worker.request_shutdown(fatal=True)
        _exit_process(1)
    elif _state.arbiter is not None:
        _state.arbiter.request_stop(graceful=False, exit_code=1)
    else:
        _exit_process(1)


def shutdown():
    """Shut the whole server down gracefully."""
    if _state.worker is not None:
        _state.worker.request_shutdown(fatal=False)
    elif _state.arbiter is not None:
        _state.arbiter.request_stop(graceful=True, exit_code=0)
    else:
        raise RuntimeError("kore.shutdown: no server is running")
    return True


def _exit_process(code):
    from .log import LOG as _LOG
    try:
        _LOG.stream.flush()
    except Exception:
        pass
    _os._exit(code)


def sendobj(obj, worker=None):
    """Send a picklable object to ``koreapp.onmsg(obj)`` in every worker
    (the sender included, as Kore) or, with ``worker=N``, in worker N."""
    if worker is not None and (not isinstance(worker, int) or isinstance(worker, bool)
                               or worker < 1):
        raise ValueError("kore.sendobj: worker must be a worker id >= 1")
    payload = _pickle.dumps(obj, protocol=_pickle.HIGHEST_PROTOCOL)
    from . import ipc
    dst = ipc.ALL_WORKERS if worker is None else worker
    if _state.worker is not None:
        _state.worker.send(ipc.Message(ipc.MSG_SENDOBJ, payload, dst))
    elif _state.arbiter is not None:
        _state.arbiter.route(ipc.Message(ipc.MSG_SENDOBJ, payload, dst, src=0))
    else:
        raise RuntimeError("kore.sendobj: no server is running")
    return True


def app(*args):
    """``kore.app(obj)`` stores an object, ``kore.app()`` returns it."""
    if len(args) > 1:
        raise TypeError("kore.app takes at most one argument")
    if args:
        _state.app_object = args[0]
        return True
    return _state.app_object


def privsep(name, root=None, runas=None, skip=None):
    """Kore's privilege separation settings for a process kind.

    ``"worker"`` sets where workers chroot (production) and which user they
    drop to.  ``"keymgr"`` and ``"acme"`` are accepted for compatibility: kore
    for Python has no keymgr process and runs ACME in the master.
    """
    if name not in ("worker", "keymgr", "acme"):
        raise RuntimeError("unknown privsep process '%s' (worker, keymgr, acme)" % name)
    if name == "worker":
        if root is not None:
            _state.registry.set("root", root, "app")
        if runas is not None:
            _state.registry.set("runas", runas, "app")
        if skip is not None:
            if not all(s in ("chroot", "runas") for s in skip):
                raise RuntimeError("privsep skip takes 'chroot' and/or 'runas'")
            from . import privdrop
            privdrop.SKIP.update(skip)
    return True


def sigtrap(signo):
    """Deliver signal ``signo`` to ``koreapp.signal(signo)`` in the workers."""
    from . import signals
    signals.trap(signo)
    return True


# ---------------------------------------------------------------------------
# the asynchronous runtime (kore.aio)
# ---------------------------------------------------------------------------

from .aio import (coroname, corotrace, gather, lock, proc, queue,  # noqa: E402
                  socket_wrap, suspend, task_create, task_id, task_kill, timer)

# Kore's seccomp filter object (koreapp.seccomp(seccomp) receives one);
# Kore registers the type as kore.pyseccomp too
from .sandbox import seccomp  # noqa: E402

pyseccomp = seccomp

__all__ = [n for n in dir() if not n.startswith("_")]
_KERNEL_NAMES = frozenset(__all__)

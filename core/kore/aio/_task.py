"""Coroutines on greenlets: drive(), tasks, ids, names and tracing.

A coroutine is run by ``drive(coro)`` in the calling greenlet: every kore
awaitable blocks that greenlet on gevent and returns its value without
yielding, so one ``coro.send(None)`` runs the coroutine to its end.  A
coroutine that yields is awaiting something foreign (asyncio): that is a
TypeError naming the object.

Every running coroutine has a ``Task`` record (id, name) known to
``task_id()``, ``task_kill()``, ``coroname()`` and the lock owner checks.
"""

import inspect
import itertools
import os
import sys
import types

import gevent
from gevent import GreenletExit
from greenlet import getcurrent

from .. import _state
from ..log import LOG, LOG_ERR, LOG_NOTICE

_ids = itertools.count(1)
_tasks = {}       # id -> Task, every coroutine that may still run
_running = {}     # greenlet -> Task (or bare coroutine, see drive) running now
_tracing = False  # kore.corotrace()
KILL_WAIT = 10.0  # seconds task_kill() waits for the coroutine to unwind


class Task:
    """One coroutine: a handler driven by drive(), a task or a gather child."""

    __slots__ = ("id", "name", "coro", "greenlet", "kind")

    def __init__(self, coro, kind="coroutine"):
        self.id = next(_ids)
        self.name = None
        self.coro = coro
        self.greenlet = None
        self.kind = kind

    def __repr__(self):
        return "<kore task %d%s (%s)>" % (
            self.id, "" if self.name is None else " %r" % self.name, self.kind)


def _current(g):
    task = _running.get(g)
    if task is None or task.__class__ is Task:
        return task
    # A handler's coroutine gets its Task (and id) the first time one is
    # needed: most requests never ask.
    task = Task(task)
    task.greenlet = g
    _running[g] = task
    _tasks[task.id] = task
    return task


def current():
    """The Task running in this greenlet, or None."""
    return _current(getcurrent())


def owner_key():
    """Who owns a lock taken here: the coroutine, else the greenlet."""
    g = getcurrent()
    task = _current(g)
    return g if task is None else task


# ---------------------------------------------------------------------------
# drive
# ---------------------------------------------------------------------------

def _deepest_foreign(coro):
    """The innermost coroutine or generator of the await chain below
    ``coro``, preferring coroutines (``asyncio.sleep`` rather than the
    generator it delegates to)."""
    obj = coro
    best = None
    for _ in range(1000):
        nxt = getattr(obj, "cr_await", None)
        if nxt is None:
            nxt = getattr(obj, "gi_yieldfrom", None)
        if nxt is None:
            break
        obj = nxt
        if isinstance(obj, types.CoroutineType) or best is None:
            best = obj
    return best if best is not None else obj


def _describe(obj):
    if isinstance(obj, (types.GeneratorType, types.CoroutineType)):
        frame = getattr(obj, "cr_frame", None) or getattr(obj, "gi_frame", None)
        mod = frame.f_globals.get("__name__") if frame is not None else None
        name = obj.__qualname__ if not mod else "%s.%s" % (mod, obj.__qualname__)
        return "%s %s()" % (type(obj).__name__, name)
    t = type(obj)
    text = repr(obj)
    if len(text) > 80:
        text = text[:77] + "..."
    if t.__module__ in ("builtins", None):
        return text
    return "%s.%s %s" % (t.__module__, t.__qualname__, text)


def _foreign_error(coro, yielded):
    if yielded is not None:
        what = _describe(yielded)
    else:
        what = _describe(_deepest_foreign(coro))
    return TypeError(
        "coroutine %s awaited %s, which is not a kore awaitable (kore runs "
        "coroutines without an asyncio event loop)" % (_coro_name(coro), what))


def _asyncio_caller(err):
    """"asyncio.tasks.sleep()" when ``err`` is asyncio's "no running event
    loop" raised inside an asyncio function the coroutine awaited, else None."""
    if "no running event loop" not in str(err):
        return None
    tb = err.__traceback__
    while tb is not None:
        mod = tb.tb_frame.f_globals.get("__name__", "") or ""
        if mod == "asyncio" or mod.startswith("asyncio."):
            return "%s.%s()" % (mod, tb.tb_frame.f_code.co_name)
        tb = tb.tb_next
    return None


def _coro_name(coro):
    return "'%s'" % (getattr(coro, "__qualname__", None) or type(coro).__name__)


def drive(coro, task=None):
    """Run the coroutine ``coro`` to completion in the current greenlet and
    return its value; its exception propagates.

    Awaiting anything but a kore awaitable raises TypeError inside the
    coroutine (at the ``await``); a coroutine that still insists is closed.
    """
    if task is None:
        if coro.__class__ is not types.CoroutineType:
            coro = _as_coroutine(coro)
        if _tracing:
            task = Task(coro)
    g = getcurrent()
    prev = _enter(g, coro, task)
    try:
        try:
            yielded = coro.send(None)
        except StopIteration as stop:
            return stop.value
        except RuntimeError as err:
            raise _asyncio_error(coro, err)
        return _refuse_foreign(coro, yielded)
    finally:
        _leave(g, prev)


def drive_void(coro):
    """``drive(coro)`` for a coroutine whose value nobody wants (a request
    handler's): the same outcome, about a quarter of a microsecond less.
    A for loop over ``__await__()`` ends without the StopIteration that
    ``send`` raises (CPython makes none for a coroutine returning None)."""
    if coro.__class__ is not types.CoroutineType or _tracing:
        drive(coro)
        return
    g = getcurrent()
    prev = _running.get(g)
    _running[g] = coro          # _enter() inlined: becomes a Task on demand
    try:
        try:
            for yielded in coro.__await__():
                break
            else:
                return
        except RuntimeError as err:
            raise _asyncio_error(coro, err)
        _refuse_foreign(coro, yielded)
    finally:
        # _leave() inlined (no tracing here)
        if prev is None:
            task = _running.pop(g)
        else:
            task = _running[g]
            _running[g] = prev
        if task.__class__ is Task:
            _tasks.pop(task.id, None)


def _enter(g, coro, task):
    prev = _running.get(g)
    if task is None:
        _running[g] = coro      # becomes a Task on demand (_current)
    else:
        _running[g] = task
        _tasks[task.id] = task
        task.greenlet = g
        if _tracing:
            _trace("running", task)
    return prev


def _leave(g, prev):
    task = _running.get(g)
    if task.__class__ is Task:
        if _tracing:
            _trace("deleted", task)
        _tasks.pop(task.id, None)
    if prev is None:
        del _running[g]
    else:
        _running[g] = prev


def _asyncio_error(coro, err):
    # asyncio's awaitables (asyncio.sleep(0.01), ...) look for a running
    # loop before they yield: name them as for the others
    foreign = _asyncio_caller(err)
    if foreign is None:
        return err
    exc = TypeError(
        "coroutine %s awaited %s, which is not a kore awaitable (kore runs "
        "coroutines without an asyncio event loop)" % (_coro_name(coro), foreign))
    exc.__cause__ = err
    return exc


def _refuse_foreign(coro, yielded):
    """The coroutine yielded ``yielded`` (it awaits something foreign):
    raise TypeError at that await; its value if it then returns."""
    exc = _foreign_error(coro, yielded)
    try:
        coro.throw(exc)
    except StopIteration as stop:
        return stop.value
    # It caught the TypeError and awaited something foreign again.
    coro.close()
    raise exc


def _as_coroutine(obj):
    if hasattr(obj, "__await__"):
        return _await(obj)
    if hasattr(obj, "send") and hasattr(obj, "throw"):
        return obj      # a generator-based coroutine
    raise TypeError("kore.aio.drive: expected a coroutine, got %s" % type(obj).__name__)


async def _await(obj):
    return await obj


# ---------------------------------------------------------------------------
# tasks
# ---------------------------------------------------------------------------

def report(where, task=None, exc_info=None):
    """An uncaught exception left a task, timer or callback: tracer or log,
    then the kore_task_error hook.  Never raises."""
    if exc_info is None:
        exc_info = sys.exc_info()
    from .. import trace
    try:
        trace.report(exc_info, where=where)
    except Exception:  # pragma: no cover - report never raises
        pass
    trace.observe("kore_task_error", task=task, exc_info=exc_info)


def _run_task(task):
    try:
        drive(task.coro, task)
    except GreenletExit:
        raise
    except Exception:
        report("coroutine", task)


def _start_task(task):
    _tasks[task.id] = task
    task.greenlet = gevent.spawn(_run_task, task)
    return task


def task_create(coro):
    """Run the coroutine ``coro`` as a task; return its id.

    In the master (module-level code of the app) the task is only recorded:
    every worker starts its own copy right after it was forked.
    """
    if not isinstance(coro, types.CoroutineType):
        raise TypeError("kore.task_create: expected a coroutine object "
                        "(call the async function), got %s"
                        % type(coro).__name__)
    task = Task(coro, kind="task")
    if _tracing:
        _trace("created", task)
    if _state.role == "master":
        _master_tasks.append(task)
        _state.deferred.append((_start_task, (task,)))
        _close_at_exit()
        return task.id
    _start_task(task)
    return task.id


# Tasks recorded in the master stay referenced here: the master never runs
# them (each worker runs its copy), and closes them when it exits so Python
# does not warn that they were never awaited.
_master_tasks = []
_atexit_done = False


def _close_at_exit():
    global _atexit_done
    if _atexit_done:
        return
    _atexit_done = True
    import atexit
    pid = os.getpid()

    def close():
        if os.getpid() == pid:
            for task in _master_tasks:
                _close_unstarted(task.coro)
    atexit.register(close)


def _kill_deferred(task_id):
    for i, (fn, args) in enumerate(_state.deferred):
        if fn is _start_task and args[0].id == task_id:
            del _state.deferred[i]
            return True
    return False


def _close_unstarted(coro):
    try:
        if inspect.getcoroutinestate(coro) == inspect.CORO_CREATED:
            coro.close()
    except Exception:
        pass


def task_id():
    """The id of the running coroutine; RuntimeError outside coroutines."""
    task = _current(getcurrent())
    if task is None:
        raise RuntimeError("no coroutine active")
    return task.id


def task_kill(task_id):
    """Kill the coroutine with id ``task_id``: True if it existed.

    The coroutine sees GreenletExit at the ``await`` where it is suspended:
    ``finally`` blocks and ``async with`` exits run, a lock is released, a
    process it was awaiting is killed and reaped, a socket it was using is
    closed.  Killing the running coroutine is a RuntimeError.
    """
    if not isinstance(task_id, int) or isinstance(task_id, bool):
        raise TypeError("kore.task_kill: task id must be an int")
    g = getcurrent()
    cur = _current(g)
    if cur is not None and cur.id == task_id:
        raise RuntimeError("refusing to kill active coroutine")
    if _state.role == "master" and _kill_deferred(task_id):
        return True
    task = _tasks.get(task_id)
    if task is None:
        return False
    target = task.greenlet
    if target is g:
        # An outer coroutine of this very greenlet (drive() inside drive()).
        raise RuntimeError("refusing to kill active coroutine")
    _tasks.pop(task_id, None)
    if target is not None and not target.dead:
        if isinstance(target, gevent.Greenlet):
            if g is gevent.get_hub():
                target.kill(block=False)
            else:
                target.kill(block=True, timeout=KILL_WAIT)
                if not target.dead:
                    LOG.write(LOG_ERR, "kore.task_kill: coroutine %d still runs %ss after "
                              "it was killed (it catches GreenletExit?)"
                              % (task_id, KILL_WAIT))
        elif target.parent is None:
            raise RuntimeError("cannot kill a coroutine driven by the main greenlet")
        else:
            gevent.kill(target)
    _close_unstarted(task.coro)
    return True


# ---------------------------------------------------------------------------
# names and tracing
# ---------------------------------------------------------------------------

def coroname(name):
    """Name the running coroutine (used by corotrace)."""
    task = _current(getcurrent())
    if task is None:
        raise RuntimeError("kore.coroname() only available in coroutines")
    if not isinstance(name, str):
        raise TypeError("kore.coroname: name must be a str")
    task.name = name
    return None


def corotrace(enabled):
    """Log every state change of every coroutine (LOG_NOTICE)."""
    global _tracing
    _tracing = bool(enabled)
    return None


def _trace(label, task=None):
    if task is None:
        task = _current(getcurrent())
        if task is None:
            return
    frame = getattr(task.coro, "cr_frame", None) or getattr(task.coro, "gi_frame", None)
    if frame is not None:
        code = frame.f_code
        func = code.co_name
        fname = os.path.basename(code.co_filename)
        line = frame.f_lineno
    else:
        func = fname = "unknown"
        line = -1
    who = ("'%s'" % task.name) if task.name else str(task.id)
    LOG.write(LOG_NOTICE, "coro %s %s <%s> @ [%s:%d]" % (who, label, func, fname, line))


def suspended():
    """Called by kore awaitables before they block (corotrace)."""
    if _tracing:
        _trace("suspended")


def wokeup():
    """Called by kore awaitables after they blocked (corotrace)."""
    if _tracing:
        _trace("wokeup")


def start_deferred():
    """Start the tasks and timers the app created in the master.

    The kernel calls this in every worker right after the fork; each worker
    runs its own copy.  Safe to call twice (the list is emptied).
    """
    items = list(_state.deferred)
    del _state.deferred[:]
    for fn, args in items:
        try:
            fn(*args)
        except Exception:
            report("deferred start")

"""suspend, gather, timer, queue and lock."""

import collections
import types
from sys import _getframe

import gevent
import gevent.pool
from gevent import GreenletExit
from gevent import sleep as _sleep
from gevent.event import AsyncResult
from greenlet import getcurrent

from .. import _state
from . import _task

_NO_DATA = object()
_DONE = iter(())   # an exhausted iterator: ``await`` gets None from it at once


def _check_ms(name, ms):
    if not isinstance(ms, int) or isinstance(ms, bool):
        raise TypeError("%s: milliseconds must be an int" % name)
    if ms < 0:
        raise ValueError("%s: milliseconds must be >= 0" % name)


# ---------------------------------------------------------------------------
# suspend
# ---------------------------------------------------------------------------

def _log_never_awaited(obj, where):
    try:
        from ..log import LOG, LOG_WARNING
        LOG.write(LOG_WARNING, "%r created at %s, line %d was never awaited (missing "
                  "'await'?)" % (obj, where[0], where[1]))
    except Exception:
        pass


class suspend:
    """``await kore.suspend(ms)``: sleep ``ms`` milliseconds; other greenlets
    (requests, tasks) run meanwhile.  ``suspend(0)`` yields to them once."""

    __slots__ = ("ms", "where")

    def __init__(self, ms):
        if ms.__class__ is not int:
            _check_ms("kore.suspend", ms)
        elif ms < 0:
            raise ValueError("kore.suspend: milliseconds must be >= 0")
        self.ms = ms
        f = _getframe(1)
        self.where = (f.f_code.co_filename, f.f_lineno)

    def __del__(self):
        # created and dropped without ``await``: a sleep that never happened
        # (no ``where`` when __init__ refused the argument)
        if getattr(self, "where", None) is not None:
            _log_never_awaited(self, self.where)

    def __await__(self):
        self.where = None
        # Blocks, then hands ``await`` an exhausted iterator: the value is
        # None and no generator is created (this is the hottest awaitable).
        if _task._tracing:
            _task._trace("suspended")
            _sleep(self.ms / 1000.0 if self.ms else 0)
            _task._trace("wokeup")
        else:
            _sleep(self.ms / 1000.0 if self.ms else 0)
        return _DONE

    def __repr__(self):
        return "<kore.suspend %d ms>" % self.ms


# ---------------------------------------------------------------------------
# gather
# ---------------------------------------------------------------------------

class TaskKilled(Exception):
    """The value gather() returns for a child killed with task_kill()."""


class gather:
    """``await kore.gather(*coros, concurrency=N)``: run the coroutines as
    tasks, at most N at a time (0 = all), and return their results in
    argument order, exceptions as values."""

    __slots__ = ("tasks", "concurrency")

    def __init__(self, *coros, concurrency=0):
        if not isinstance(concurrency, int) or isinstance(concurrency, bool):
            self._close(coros)
            raise TypeError("concurrency level must be an integer")
        if concurrency < 0:
            self._close(coros)
            raise ValueError("concurrency level must be >= 0")
        for c in coros:
            if not isinstance(c, types.CoroutineType):
                self._close(coros)
                raise TypeError("kore.gather: not a coroutine: %r" % (c,))
        if _task.current() is None:
            self._close(coros)
            raise RuntimeError("kore.gather only available in coroutines")
        self.tasks = [_task.Task(c, kind="gather") for c in coros]
        self.concurrency = concurrency or len(coros)

    @staticmethod
    def _close(coros):
        for c in coros:
            if isinstance(c, types.CoroutineType):
                _task._close_unstarted(c)

    def __await__(self):
        tasks = self.tasks
        results = [None] * len(tasks)
        if not tasks:
            return results
        pool = gevent.pool.Pool(self.concurrency)

        def child(i, task):
            try:
                results[i] = _task.drive(task.coro, task)
            except GreenletExit:
                results[i] = TaskKilled("coroutine %d was killed" % task.id)
            except Exception as exc:
                results[i] = exc

        started = 0
        _task.suspended()
        try:
            for i, task in enumerate(tasks):
                pool.spawn(child, i, task)
                started = i + 1
            pool.join()
        finally:
            if started < len(tasks) or len(pool):
                # cancelled: kill the children, close those never started
                pool.kill(block=True)
                for task in tasks:
                    _task._close_unstarted(task.coro)
        _task.wokeup()
        return results
        yield  # noqa: unreachable

    def __repr__(self):
        return "<kore.gather of %d>" % len(self.tasks)



# ---------------------------------------------------------------------------
# timer
# ---------------------------------------------------------------------------

class timer:
    """``kore.timer(cb, ms, flags, data=obj)``: call ``cb(data)`` (or
    ``cb()``) every ``ms`` milliseconds (flags 0) or once
    (``kore.TIMER_ONESHOT``) until ``close()``."""

    __slots__ = ("callback", "ms", "flags", "data", "_greenlet", "_closed",
                 "_firing", "__weakref__")

    def __init__(self, callback, ms, flags=0, data=_NO_DATA):
        if not callable(callback):
            raise TypeError("kore.timer: callback must be callable")
        _check_ms("kore.timer", ms)
        if not isinstance(flags, int) or isinstance(flags, bool):
            raise TypeError("kore.timer: flags must be an int")
        if flags & ~1:
            raise RuntimeError("invalid flags")
        self.callback = callback
        self.ms = ms
        self.flags = flags
        self.data = data
        self._greenlet = None
        self._closed = False
        self._firing = False
        if _state.role == "master":
            _state.deferred.append((timer._start, (self,)))
        else:
            self._start()

    def _start(self):
        if not self._closed and self._greenlet is None:
            self._greenlet = gevent.spawn(self._run)

    def _run(self):
        interval = self.ms / 1000.0
        oneshot = self.flags & 1
        while not self._closed:
            gevent.sleep(interval)
            if self._closed:
                break
            if oneshot:
                self._closed = True
            self._fire()
            if oneshot:
                break
        self._greenlet = None

    def _fire(self):
        self._firing = True
        try:
            if self.data is _NO_DATA:
                ret = self.callback()
            else:
                ret = self.callback(self.data)
            if isinstance(ret, types.CoroutineType):
                _task.task_create(ret)
        except GreenletExit:
            raise
        except Exception:
            _task.report("timer")
        finally:
            self._firing = False

    def close(self):
        """Stop the timer (a running callback finishes)."""
        if self._closed and self._greenlet is None:
            return True
        self._closed = True
        g = self._greenlet
        if g is not None and not self._firing and g is not getcurrent():
            self._greenlet = None
            g.kill(block=False)
        return True

    def __repr__(self):
        return "<kore.timer %d ms%s%s>" % (
            self.ms, " oneshot" if self.flags & 1 else "",
            " closed" if self._closed else "")


# ---------------------------------------------------------------------------
# queue
# ---------------------------------------------------------------------------

class _QueuePop:
    __slots__ = ("queue",)

    def __init__(self, queue):
        self.queue = queue

    def __await__(self):
        return self.queue._pop()
        yield  # noqa: unreachable

    def __repr__(self):
        return "<kore.queue pop>"


class queue:
    """``kore.queue()``: a FIFO between coroutines of one worker.
    ``push(obj)``, ``await pop()`` (the first waiter is served first),
    ``popnow()`` (None when empty)."""

    __slots__ = ("_objects", "_waiters", "__weakref__")

    def __init__(self):
        self._objects = collections.deque()
        self._waiters = collections.deque()

    def push(self, obj):
        """Append ``obj``; wakes the coroutine that waited first."""
        if self._waiters:
            self._waiters.popleft().set(obj)
        else:
            self._objects.append(obj)
        return True

    def pop(self):
        """Awaitable: the next object, waiting for one if needed."""
        return _QueuePop(self)

    def popnow(self):
        """The next object, or None if the queue is empty."""
        if self._objects:
            return self._objects.popleft()
        return None

    def _pop(self):
        if self._objects:
            return self._objects.popleft()
        waiter = AsyncResult()
        self._waiters.append(waiter)
        _task.suspended()
        try:
            obj = waiter.get()
        except BaseException:
            if waiter.ready():
                # Handed an object but cancelled before taking it: give it
                # to the next waiter, or back to the head of the queue.
                obj = waiter.value
                if self._waiters:
                    self._waiters.popleft().set(obj)
                else:
                    self._objects.appendleft(obj)
            else:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass
            raise
        _task.wokeup()
        return obj

    def __len__(self):
        return len(self._objects)

    def __repr__(self):
        return "<kore.queue %d objects, %d waiting>" % (
            len(self._objects), len(self._waiters))


# ---------------------------------------------------------------------------
# lock
# ---------------------------------------------------------------------------

class _LockAcquire:
    __slots__ = ("lock",)

    def __init__(self, lock):
        self.lock = lock

    def __await__(self):
        return self.lock._acquire()
        yield  # noqa: unreachable

    def __repr__(self):
        return "<kore.lock acquire>"


class _LockRelease:
    __slots__ = ()

    def __await__(self):
        return None
        yield  # noqa: unreachable


class lock:
    """``kore.lock()``: a lock between coroutines of one worker, owned by the
    coroutine that took it.  ``async with lock:``, ``await acquire()``,
    ``release()``, ``trylock()``."""

    __slots__ = ("_owner", "_waiters", "__weakref__")

    def __init__(self):
        self._owner = None
        self._waiters = collections.deque()

    @property
    def locked(self):
        return self._owner is not None

    def trylock(self):
        """Take the lock if it is free: True, else False."""
        if self._owner is not None:
            return False
        self._owner = _task.owner_key()
        return True

    def acquire(self):
        """Awaitable: take the lock, waiting in line for it if needed."""
        if self._owner is not None and self._owner is _task.owner_key():
            raise RuntimeError("recursive lock detected")
        return _LockAcquire(self)

    def release(self):
        """Release the lock; the first waiter gets it."""
        if self._owner is None:
            raise RuntimeError("no lock owner set")
        if self._owner is not _task.owner_key():
            raise RuntimeError("lock not owned by caller")
        self._handoff()
        return None

    def _handoff(self):
        if self._waiters:
            key, waiter = self._waiters.popleft()
            self._owner = key
            waiter.set(True)
        else:
            self._owner = None

    def _acquire(self):
        me = _task.owner_key()
        if self._owner is None:
            self._owner = me
            return True
        if self._owner is me:
            raise RuntimeError("recursive lock detected")
        waiter = AsyncResult()
        entry = (me, waiter)
        self._waiters.append(entry)
        _task.suspended()
        try:
            waiter.get()
        except BaseException:
            if self._owner is me:
                self._handoff()   # it was handed to us as we were cancelled
            else:
                try:
                    self._waiters.remove(entry)
                except ValueError:
                    pass
            raise
        _task.wokeup()
        return True

    def __aenter__(self):
        return self.acquire()

    def __aexit__(self, etype, value, tb):
        if self._owner is None or self._owner is not _task.owner_key():
            raise RuntimeError("invalid lock owner")
        self._handoff()
        return _LockRelease()

    def __repr__(self):
        return "<kore.lock %s, %d waiting>" % (
            "locked" if self._owner is not None else "free", len(self._waiters))

"""Waiting for a file descriptor on the gevent hub, cancellable by close()."""

from gevent import Timeout
from gevent.hub import get_hub

from . import _task

READ = 1
WRITE = 2


class Closed(Exception):
    """Raised in a waiting greenlet when its object was closed under it."""


class TimedOut(Exception):
    """Internal: a wait reached its deadline."""


class FdWaits:
    """The watchers currently waited on for one object, by direction, so
    close() can wake the waiters before the descriptor goes away."""

    __slots__ = ("watchers",)

    def __init__(self):
        self.watchers = {}

    def wait(self, fd, event, seconds=None):
        """Block until ``fd`` is ready for ``event``; TimedOut after
        ``seconds`` (None = forever); Closed if cancel_all() ran."""
        hub = get_hub()
        watcher = hub.loop.io(fd, event)
        self.watchers[event] = watcher
        _task.suspended()
        try:
            if seconds is None:
                hub.wait(watcher)
            else:
                if seconds <= 0:
                    raise TimedOut()
                with Timeout(seconds, TimedOut()):
                    hub.wait(watcher)
        finally:
            if self.watchers.get(event) is watcher:
                del self.watchers[event]
            watcher.close()
        _task.wokeup()

    def cancel(self, event):
        """Wake the greenlet waiting for ``event`` with Closed."""
        watcher = self.watchers.pop(event, None)
        if watcher is not None:
            get_hub().cancel_wait(watcher, Closed())

    def cancel_all(self):
        for event in list(self.watchers):
            self.cancel(event)

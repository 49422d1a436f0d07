"""pycurl's multi interface driven by the gevent loop.

One ``Multi`` per process and hub (a worker creates its own after fork; one
is never shared across fork).  libcurl tells us which sockets to watch
(``M_SOCKETFUNCTION``) and when to wake it up (``M_TIMERFUNCTION``); we map
that onto gevent io watchers and one gevent timer.  Their callbacks run in
the hub and call ``socket_action``, then collect finished transfers with
``info_read``.  A greenlet that runs a transfer adds its easy handle and
waits on a ``gevent.hub.Waiter``: only that greenlet blocks, never the hub.

Rules kept here (pycurl on gevent):

* ``socket_action`` is never called from inside the socket or timer
  callbacks (those run inside ``socket_action``): they only (re)arm watchers;
* an fd never has two live watchers: the old one is stopped and closed
  before a new one is armed;
* watcher callbacks never block or switch greenlets; waking a waiting
  greenlet is scheduled with ``loop.run_callback``;
* a transfer whose greenlet is killed (``GreenletExit``) is removed from the
  multi handle before the exception travels on.
"""

import os
import weakref

import pycurl
from gevent import get_hub
from gevent.hub import Waiter

from kore.log import LOG_ERR, LOG_WARNING, log

_READ = 1   # libev/libuv READ; equal to CSELECT_IN and POLL_IN
_WRITE = 2  # libev/libuv WRITE; equal to CSELECT_OUT and POLL_OUT

# one Multi per hub (native thread) in this process
_multis = weakref.WeakKeyDictionary()
_pid = None
_inherited = []  # libcurl objects inherited through fork, never cleaned up

# transfers of this process that ended, by outcome (metrics): ok, error
# (including transfers cancelled by their greenlet), timeout
OUTCOMES = ("ok", "error", "timeout")
finished = [0, 0, 0]

EASY_POOL_MAX = 64
MAXCONNECTS = 500


class Transfer:
    """One easy handle in flight and the greenlet waiting for it."""

    __slots__ = ("waiter", "errno", "error", "done")

    def __init__(self, hub):
        self.waiter = Waiter(hub)
        self.errno = 0
        self.error = None
        self.done = False


class Multi:
    """A ``pycurl.CurlMulti`` bound to one gevent hub."""

    def __init__(self, hub=None):
        self.hub = hub if hub is not None else get_hub()
        self.loop = self.hub.loop
        self.pid = os.getpid()
        self.watchers = {}      # fd -> (events, io watcher)
        self.timer = None
        self.active = {}        # pycurl.Curl -> Transfer
        self.pool = []          # reusable easy handles (reset)
        self.closed = False
        m = pycurl.CurlMulti()
        m.setopt(pycurl.M_SOCKETFUNCTION, self._on_socket)
        m.setopt(pycurl.M_TIMERFUNCTION, self._on_timer)
        m.setopt(pycurl.M_MAXCONNECTS, MAXCONNECTS)
        self.multi = m

    # -- libcurl callbacks (run inside socket_action / add / remove) ---------

    def _on_socket(self, what, fd, multi, socketp):
        old = self.watchers.get(fd)
        if what == pycurl.POLL_REMOVE:
            if old is not None:
                del self.watchers[fd]
                old[1].stop()
                old[1].close()
            return 0
        events = what & (_READ | _WRITE)
        if old is not None:
            if old[0] == events:
                return 0
            del self.watchers[fd]
            old[1].stop()
            old[1].close()
        if not events:
            return 0
        watcher = self.loop.io(fd, events)
        watcher.start(self._on_io, fd, pass_events=True)
        self.watchers[fd] = (events, watcher)
        return 0

    def _on_timer(self, timeout_ms):
        if self.timer is not None:
            self.timer.stop()
            self.timer.close()
            self.timer = None
        if timeout_ms >= 0:
            timer = self.loop.timer(timeout_ms / 1000.0)
            timer.start(self._on_timeout)
            self.timer = timer
        return 0

    # -- loop callbacks (run in the hub) --------------------------------------

    def _on_io(self, events, fd):
        try:
            self.multi.socket_action(fd, events & (_READ | _WRITE))
        except pycurl.error as exc:
            log(LOG_ERR, "curl: socket_action(%d) failed: %s" % (fd, exc))
        self._collect()

    def _on_timeout(self):
        timer = self.timer
        self.timer = None
        if timer is not None:
            timer.close()
        try:
            self.multi.socket_action(pycurl.SOCKET_TIMEOUT, 0)
        except pycurl.error as exc:
            log(LOG_ERR, "curl: socket_action(timeout) failed: %s" % (exc,))
        self._collect()

    def _collect(self):
        multi = self.multi
        while True:
            queued, ok, failed = multi.info_read()
            for easy in ok:
                self._finish(easy, 0, None)
            for easy, errno, error in failed:
                self._finish(easy, errno, error)
            if not queued:
                break

    def _finish(self, easy, errno, error):
        transfer = self.active.pop(easy, None)
        try:
            self.multi.remove_handle(easy)
        except pycurl.error:
            pass
        if transfer is None:
            return
        transfer.errno = errno
        transfer.error = error
        transfer.done = True
        self.loop.run_callback(transfer.waiter.switch, None)

    # -- greenlet side ---------------------------------------------------------

    def perform(self, easy):
        """Run ``easy`` to completion, blocking only the calling greenlet.

        Returns ``(errno, message)``: ``(0, None)`` on success.
        """
        if self.closed:
            finished[1] += 1
            return pycurl.E_ABORTED_BY_CALLBACK, "curl engine was shut down"
        transfer = Transfer(self.hub)
        self.active[easy] = transfer
        try:
            self.multi.add_handle(easy)
        except pycurl.error as exc:
            del self.active[easy]
            finished[1] += 1
            return exc.args[0], exc.args[1] if len(exc.args) > 1 else str(exc)
        try:
            transfer.waiter.get()
        except BaseException:
            finished[1] += 1
            raise
        finally:
            if not transfer.done:
                # cancelled (GreenletExit) or torn down: take it out
                self.active.pop(easy, None)
                try:
                    self.multi.remove_handle(easy)
                except pycurl.error:
                    pass
        errno = transfer.errno
        finished[0 if not errno else 2 if errno == pycurl.E_OPERATION_TIMEDOUT else 1] += 1
        return errno, transfer.error

    def easy(self):
        """An easy handle from the pool (reset) or a new one."""
        if self.pool:
            return self.pool.pop()
        return pycurl.Curl()

    def release(self, easy):
        """Give an easy handle that is not in the multi handle back."""
        if self.closed or easy in self.active or len(self.pool) >= EASY_POOL_MAX:
            easy.close()
            return
        easy.reset()
        self.pool.append(easy)

    def pending(self):
        return len(self.active)

    def close(self):
        """Abort what is in flight, stop every watcher, free libcurl."""
        if self.closed:
            return
        self.closed = True
        for easy, transfer in list(self.active.items()):
            try:
                self.multi.remove_handle(easy)
            except pycurl.error:
                pass
            transfer.errno = pycurl.E_ABORTED_BY_CALLBACK
            transfer.error = "curl engine was shut down"
            transfer.done = True
            self.loop.run_callback(transfer.waiter.switch, None)
        self.active.clear()
        self._drop_watchers()
        for easy in self.pool:
            easy.close()
        self.pool = []
        try:
            self.multi.close()
        except pycurl.error:
            pass
        self._drop_watchers()

    def _drop_watchers(self):
        for _events, watcher in self.watchers.values():
            watcher.stop()
            watcher.close()
        self.watchers.clear()
        if self.timer is not None:
            self.timer.stop()
            self.timer.close()
            self.timer = None

    def forget(self):
        """After fork: drop the parent's state without touching libcurl.

        The connections are the parent's: cleaning the multi handle up here
        would close them (and send TLS close_notify on the parent's behalf),
        so the objects are kept alive, unused, until this process exits.
        """
        self.closed = True
        for _events, watcher in self.watchers.values():
            watcher.stop()
        self.watchers.clear()
        if self.timer is not None:
            self.timer.stop()
            self.timer = None
        _inherited.append((self.multi, list(self.active), self.pool))
        self.active.clear()
        self.pool = []


def get_multi():
    """The ``Multi`` of this process and hub, created on first use."""
    global _pid
    pid = os.getpid()
    if _pid != pid:
        # a fork happened since: whatever we hold is the parent's
        for m in list(_multis.values()):
            m.forget()
        _multis.clear()
        _pid = pid
    hub = get_hub()
    m = _multis.get(hub)
    if m is None or m.closed:
        m = Multi(hub)
        _multis[hub] = m
        _warn_blocking_dns()
    return m


_warned = []


def _warn_blocking_dns():
    if not _warned and not pycurl.version_info()[4] & pycurl.VERSION_ASYNCHDNS:
        _warned.append(True)
        log(LOG_WARNING, "curl: this libcurl resolves names synchronously: "
            "a lookup blocks the whole worker (use addresses, CURLOPT_RESOLVE "
            "or a pycurl built with the threaded resolver or c-ares)")


def current_multi():
    """The ``Multi`` of this process and hub if one exists, else None."""
    if _pid != os.getpid():
        return None
    try:
        hub = get_hub()
    except Exception:
        return None
    return _multis.get(hub)


def reset_after_fork():
    """Forget every Multi inherited from the parent (kore_worker_init)."""
    global _pid
    for m in list(_multis.values()):
        m.forget()
    _multis.clear()
    finished[:] = [0, 0, 0]     # this worker counts its own transfers
    _pid = os.getpid()


def in_flight():
    """Transfers running in this process (every hub)."""
    if _pid != os.getpid():
        return 0
    return sum(len(m.active) for m in list(_multis.values()))


def shutdown():
    """Close this process's Multi objects (kore_worker_shutdown)."""
    if _pid != os.getpid():
        return
    for m in list(_multis.values()):
        m.close()
    _multis.clear()

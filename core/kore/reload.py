"""Rolling reloads (SIGHUP, ``--reload``): the state of one reload and the
probe that loads the new application in a throwaway child first.

A reload starts a new *generation* of workers next to the running ones.  It
completes when as many new workers as configured reported ready: the old
generation is then retired (TERM, graceful).  It is aborted when a new
worker fails to boot or the deadline passes: the new generation is killed
and the old workers, which never stopped serving, take their slots back.
``Reload`` holds that state and decides; the arbiter acts on the decision.
"""

from __future__ import annotations

import io
import os
import signal
import time
from typing import Any, Callable, Iterable, List, Optional

import gevent
from gevent import monkey

_fork = monkey.get_original("os", "fork")
_waitpid = monkey.get_original("os", "waitpid")

#: a reload never waits less than this for the new workers (seconds)
MIN_RELOAD_WAIT = 30.0

COMPLETE = "complete"
EXPIRED = "expired"


class Reload:
    """One reload in progress.

    ``generation`` is the new workers' generation, ``old`` the slots (see
    ``kore.arbiter.WorkerSlot``: ``generation``, ``ready``, ``pid``,
    ``retiring``) of the workers being replaced, ``deadline`` the monotonic
    time after which the reload is given up.
    """

    __slots__ = ("generation", "old", "deadline")

    def __init__(self, generation: int, old: Iterable, deadline: float) -> None:
        self.generation = generation
        self.old: List = list(old)
        self.deadline = deadline

    @classmethod
    def begin(cls, generation: int, procs: Iterable, graceful_timeout: float,
              now: Optional[float] = None) -> "Reload":
        """A reload to ``generation`` replacing every older worker in ``procs``."""
        now = time.monotonic() if now is None else now
        old = [wp for wp in procs if wp.generation < generation]
        return cls(generation, old, now + max(MIN_RELOAD_WAIT, graceful_timeout))

    def is_new(self, wp) -> bool:
        return wp.generation == self.generation

    def outcome(self, procs: Iterable, num_workers: int,
                now: Optional[float] = None) -> Optional[str]:
        """``COMPLETE`` when ``num_workers`` new workers are all ready,
        ``EXPIRED`` when the deadline passed first, else None (waiting)."""
        new = [wp for wp in procs if self.is_new(wp)]
        if new and len(new) >= num_workers and all(wp.ready for wp in new):
            return COMPLETE
        now = time.monotonic() if now is None else now
        if now > self.deadline:
            return EXPIRED
        return None

    def to_retire(self, alive: Callable[[Any], bool]) -> list:
        """On completion: the old workers still running (to stop gracefully)."""
        old, self.old = self.old, []
        return [wp for wp in old if alive(wp)]

    def to_kill(self, procs: Iterable) -> list:
        """On abort: the new generation's workers."""
        return [wp for wp in procs if self.is_new(wp)]

    def to_restore(self, alive: Callable[[Any], bool]) -> list:
        """On abort: the old workers that keep (take back) their slots."""
        old, self.old = self.old, []
        return [wp for wp in old if alive(wp) and not wp.retiring]


def probe(loader: Callable[[], object], after_fork: Callable[[], None],
          timeout: float = 120.0) -> Optional[str]:
    """Load the application once in a throwaway child first.

    Loading resets the master's application state before importing, so a
    load that fails half-way in the master would leave it with a broken
    application, which every worker it later forks (a crashed one, TTIN)
    would get.  The child's output is discarded (the real load prints it
    again); it reports its outcome through a pipe: ``+`` when the
    application loaded, ``-`` and the error text when not.  Returns None when
    the application loads, else the error.

    The outcome is read from the pipe, not from the child's exit status: a
    SIGCHLD handler that reaps every child (the arbiter's, gevent's once a
    ``gevent.subprocess`` ran in this process) may collect the child first,
    and its status is then unknown here.
    """
    r, w = os.pipe()
    pid = _fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, 1)
            os.dup2(null, 2)
            after_fork()
            from .log import LOG
            LOG.stream = io.StringIO()
            try:
                loader()
            except BaseException as exc:
                code = 1
                text = str(exc) or type(exc).__name__
                os.write(w, b"-" + text.encode("utf-8", "replace")[:8000])
            else:
                os.write(w, b"+")
        finally:
            os._exit(code)
    os.close(w)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        os.set_blocking(r, False)
        from gevent.socket import wait_read
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                _kill(pid)
                return "the application did not load within %d s" % timeout
            try:
                wait_read(r, timeout=min(left, 1.0))
            except Exception:
                continue            # timed out waiting: check the deadline
            try:
                data = os.read(r, 65536)
            except BlockingIOError:
                continue
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(r)
    status = _wait(pid)
    data = b"".join(chunks)
    if data[:1] == b"-":
        return data[1:].decode("utf-8", "replace") or "the application failed to load"
    if data == b"+":
        return None
    # the child ended before it reported (killed, or exited in a hook)
    if status is None:
        return "the application loader ended without reporting (status unknown)"
    return "the application loader exited with status %s" % status


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _wait(pid)


def _wait(pid: int, timeout: float = 10.0) -> Optional[int]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            done, status = _waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None             # reaped elsewhere
        if done:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            return None
        gevent.sleep(0.02)

"""Buffered access-log files (nginx's ``access_log ... buffer= flush=``).

Lines are kept in memory and written with one ``write(2)`` when the buffer
holds ``http_access_log_buffer`` bytes, every ``http_access_log_flush``
seconds (a greenlet), when the worker stops (SIGTERM, SIGHUP reload,
recycling: ``kore_worker_shutdown``) and before the log files are reopened
(SIGUSR1).  A buffer of 0 writes every line at once.  Files are opened with
``O_APPEND`` and written in whole lines, so the workers' lines never
interleave inside a line.  A worker killed with SIGKILL loses at most the
lines of the last flush interval.
"""

import os
import sys

import gevent


class Sink:
    """One log file (or stdout for ``-``) and its pending lines."""

    __slots__ = ("path", "fd", "lines", "size", "limit")

    def __init__(self, path, limit):
        self.path = path
        self.fd = -1
        self.lines = []
        self.size = 0
        self.limit = limit

    def write(self, line):
        self.lines.append(line)
        self.size += len(line) + 1
        if self.size >= self.limit:
            self.flush()

    def flush(self):
        if not self.lines:
            return
        data = ("\n".join(self.lines) + "\n").encode("utf-8", "backslashreplace")
        self.lines = []
        self.size = 0
        try:
            if self.path == "-":
                out = sys.stdout
                out.write(data.decode("utf-8"))
                out.flush()
                return
            if self.fd < 0:
                self._open()
            view = memoryview(data)
            while view:
                n = os.write(self.fd, view)
                view = view[n:]
        except (OSError, ValueError) as exc:
            _warn("access log %s: %s" % (self.path, exc))

    def _open(self):
        d = os.path.dirname(self.path)
        if d:
            os.makedirs(d, exist_ok=True)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                          0o644)

    def close(self):
        self.flush()
        if self.fd >= 0:
            try:
                os.close(self.fd)
            except OSError:
                pass
            self.fd = -1


_warned = set()


def _warn(msg):
    if msg in _warned:
        return
    _warned.add(msg)
    try:
        from kore.log import error
        error(msg)
    except Exception:
        pass


class Buffers:
    """Every sink of this worker and the flush timer."""

    def __init__(self):
        self.sinks = {}
        self.limit = 65536
        self.interval = 1.0
        self.timer = None

    def configure(self, limit, interval):
        self.limit = limit
        self.interval = interval
        for s in self.sinks.values():
            s.limit = limit

    def sink(self, path):
        s = self.sinks.get(path)
        if s is None:
            s = self.sinks[path] = Sink(path, self.limit)
            if self.timer is None and self.limit > 0 and self.interval > 0:
                self.timer = gevent.spawn(self._loop)
        return s

    def _loop(self):
        while True:
            gevent.sleep(self.interval)
            self.flush()

    def flush(self):
        for s in list(self.sinks.values()):
            s.flush()

    def reopen(self):
        """Write what is pending, then close the files (the next line opens
        them again: SIGUSR1 after logrotate moved them)."""
        for s in list(self.sinks.values()):
            s.close()

    def stop(self):
        """Write everything (worker shutdown) and stop the timer."""
        t, self.timer = self.timer, None
        if t is not None and t is not gevent.getcurrent():
            t.kill(block=False)
        for s in list(self.sinks.values()):
            s.close()
        self.sinks.clear()


BUFFERS = Buffers()

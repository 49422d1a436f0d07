"""kore.proc: a child process with a pipe to its stdin and one from its
stdout and stderr (shared), awaited without blocking the worker."""

import errno
import os
import signal
from time import monotonic


from . import _io, _task

EXITED_MSG = "timeout before process exited"
OP_TIMEOUT_MSG = "timeout before operation completed"


def split_command(cmd):
    """Split a kore.proc command line: words are separated by spaces and a
    double-quoted part is kept together (quotes removed)."""
    args = []
    word = []
    have = False
    i = 0
    n = len(cmd)
    while i < n:
        c = cmd[i]
        if c == " ":
            if have:
                args.append("".join(word))
                word = []
                have = False
        elif c == '"':
            end = cmd.find('"', i + 1)
            if end == -1:
                end = n
            word.append(cmd[i + 1:end])
            have = True
            i = end
        else:
            word.append(c)
            have = True
        i += 1
    if have:
        args.append("".join(word))
    return args


def _env_dict(env):
    if env is None:
        return None
    if not isinstance(env, (list, tuple)):
        raise TypeError("kore.proc: env must be a list of 'NAME=value' strings")
    out = {}
    for item in env:
        if not isinstance(item, str) or "=" not in item or item.startswith("="):
            raise ValueError("kore.proc: env entries must be 'NAME=value' strings, "
                             "got %r" % (item,))
        k, v = item.split("=", 1)
        out[k] = v
    return out


class ExitCode(int):
    """A process's exit code that ``await`` also accepts (``proc.reap()``)."""

    __slots__ = ()

    def __await__(self):
        return int(self)
        yield  # noqa: unreachable


class _ProcOp:
    __slots__ = ("fn", "args", "name")

    def __init__(self, name, fn, *args):
        self.name = name
        self.fn = fn
        self.args = args

    def __await__(self):
        return self.fn(*self.args)
        yield  # noqa: unreachable

    def __repr__(self):
        return "<kore.proc %s>" % self.name


def _cancelling(method):
    """Cancellation (GreenletExit and other BaseExceptions) while awaiting
    an operation kills and reaps the process."""
    def wrapper(self, *args):
        try:
            return method(self, *args)
        except Exception:
            raise
        except BaseException:
            self._abandon()
            raise
    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


class proc:
    """``kore.proc(cmd, timeout_ms=-1, env=[...])``."""

    __slots__ = ("_popen", "_in", "_out", "_deadline", "_reaping", "_status",
                 "_waits", "cmd", "__weakref__")

    def __init__(self, cmd, timeout_ms=-1, env=None):
        if not isinstance(cmd, str):
            raise TypeError("kore.proc: command must be a str")
        if not isinstance(timeout_ms, int) or isinstance(timeout_ms, bool):
            raise TypeError("kore.proc: timeout must be an int (milliseconds)")
        argv = split_command(cmd)
        if not argv:
            raise ValueError("kore.proc: empty command")
        envd = _env_dict(env)
        self.cmd = cmd
        self._popen = None
        self._in = self._out = None
        self._reaping = False
        self._status = None
        self._waits = _io.FdWaits()
        from gevent import subprocess
        in_r, in_w = os.pipe()
        out_r, out_w = os.pipe()
        try:
            self._popen = subprocess.Popen(
                argv, stdin=in_r, stdout=out_w, stderr=out_w, env=envd,
                close_fds=True, bufsize=0)
        except OSError as exc:
            os.close(in_w)
            os.close(out_r)
            raise RuntimeError("kore.proc: cannot execute '%s': %s"
                               % (argv[0], exc.strerror or exc)) from None
        finally:
            os.close(in_r)
            os.close(out_w)
        os.set_blocking(in_w, False)
        os.set_blocking(out_r, False)
        self._in = in_w
        self._out = out_r
        self._deadline = monotonic() + timeout_ms / 1000.0 if timeout_ms > 0 else None

    # -- properties -----------------------------------------------------

    @property
    def pid(self):
        """The child's process id."""
        return self._popen.pid

    # -- operations ------------------------------------------------------

    def recv(self, n, timeout_ms=-1):
        """Awaitable: up to ``n`` bytes of the child's output, None at EOF.
        TimeoutError after ``timeout_ms`` (-1 = none) or when the process
        timeout expires."""
        if self._out is None:
            raise RuntimeError("stdout closed")
        if not isinstance(n, int) or n <= 0:
            raise ValueError("kore.proc.recv: length must be a positive int")
        return _ProcOp("recv", self._recv, n, timeout_ms)

    def send(self, data):
        """Awaitable: write all of ``data`` to the child's stdin;
        RuntimeError("socket EOF") if the child closed its stdin."""
        if self._in is None:
            raise RuntimeError("stdin closed")
        data = memoryview(data).cast("B")
        return _ProcOp("send", self._send, data)

    def close_stdin(self):
        """Close the pipe to the child's stdin (it sees EOF)."""
        if self._in is not None:
            self._waits.cancel(_io.WRITE)
            fd, self._in = self._in, None
            os.close(fd)
        return True

    def reap(self):
        """Wait for the child to exit: its exit code, or the signal number
        if a signal ended it.  Both forms of Kore's pages work: ``retcode =
        proc.reap()`` (the wait blocks this greenlet) and ``retcode = await
        proc.reap()`` (the result is an int that is also awaitable)."""
        if self._reaping:
            raise RuntimeError("process %d already being reaped" % self.pid)
        return ExitCode(self._reap())

    def kill(self):
        """Send SIGKILL to the child (if it still runs)."""
        if self._popen is not None and self._popen.returncode is None:
            try:
                os.kill(self._popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return True

    # -- implementation -------------------------------------------------

    def _wait_fd(self, fd, event, op_deadline):
        pdl = self._deadline
        if op_deadline is None and pdl is None:
            seconds = None
        elif op_deadline is None:
            seconds = pdl - monotonic()
        elif pdl is None:
            seconds = op_deadline - monotonic()
        else:
            seconds = min(op_deadline, pdl) - monotonic()
        try:
            self._waits.wait(fd, event, seconds)
        except _io.TimedOut:
            self._timed_out(op_deadline)

    def _timed_out(self, op_deadline):
        if self._deadline is not None and monotonic() >= self._deadline - 0.0005:
            self._deadline = None   # raised once, as Kore's process timer
            raise TimeoutError(EXITED_MSG) from None
        raise TimeoutError(OP_TIMEOUT_MSG) from None

    @_cancelling
    def _recv(self, n, timeout_ms):
        op_deadline = monotonic() + timeout_ms / 1000.0 if timeout_ms >= 0 else None
        while True:
            fd = self._out
            if fd is None:
                return None
            try:
                data = os.read(fd, n)
            except BlockingIOError:
                try:
                    self._wait_fd(fd, _io.READ, op_deadline)
                except _io.Closed:
                    return None
                continue
            except OSError as exc:
                raise RuntimeError(exc.strerror) from None
            return data or None

    @_cancelling
    def _send(self, data):
        off = 0
        total = len(data)
        while off < total:
            fd = self._in
            if fd is None:
                raise RuntimeError("stdin closed")
            try:
                off += os.write(fd, data[off:])
            except BlockingIOError:
                try:
                    self._wait_fd(fd, _io.WRITE, None)
                except _io.Closed:
                    raise RuntimeError("stdin closed") from None
            except (BrokenPipeError, ConnectionResetError):
                raise RuntimeError("socket EOF") from None
            except OSError as exc:
                raise RuntimeError(exc.strerror) from None
        return None

    @_cancelling
    def _reap(self):
        if self._status is not None:
            return self._status
        from gevent import subprocess
        self._reaping = True
        try:
            if self._deadline is None:
                _task.suspended()
                rc = self._popen.wait()
            else:
                left = self._deadline - monotonic()
                _task.suspended()
                try:
                    if left <= 0:
                        raise subprocess.TimeoutExpired(self.cmd, 0)
                    rc = self._popen.wait(left)
                except subprocess.TimeoutExpired:
                    self._deadline = None
                    raise TimeoutError(EXITED_MSG) from None
            _task.wokeup()
        finally:
            self._reaping = False
        self._status = rc if rc >= 0 else -rc
        self._deadline = None
        return self._status

    def _abandon(self):
        """The awaiting coroutine was cancelled: kill, reap, close."""
        self.kill()
        try:
            if self._popen is not None and self._popen.returncode is None:
                rc = self._popen.wait(5)
                self._status = rc if rc >= 0 else -rc
        except BaseException:
            pass
        self._close_fds()

    def _close_fds(self):
        self._waits.cancel_all()
        for name in ("_in", "_out"):
            fd = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                try:
                    os.close(fd)
                except OSError:
                    pass

    def __del__(self):
        try:
            if self._popen is not None and self._popen.returncode is None:
                try:
                    os.kill(self._popen.pid, signal.SIGKILL)
                except OSError as exc:
                    if exc.errno != errno.ESRCH:
                        raise
            for fd in (self._in, self._out):
                if fd is not None:
                    os.close(fd)
            self._in = self._out = None
        except Exception:
            pass

    def __repr__(self):
        return "<kore.proc pid %s %r>" % (
            self._popen.pid if self._popen else "?", self.cmd)

"""The master's side of the workers' seccomp filters (Linux 5.6+).

A worker's filter sends every syscall outside its policy to a listener (a
seccomp user notification).  The worker announces the listener's fd
number; the master copies it (``pidfd_getfd``), answers ``held`` and from
then on, in one greenlet per worker:

* reads the notification (the syscall is suspended meanwhile),
* logs ``seccomp violation, wrk N pid=P, syscall=NR:name`` (Kore's line;
  ``<child>`` for a process the worker started, such as a ``kore.proc``),
* with ``seccomp_tracing``: lets the syscall run (Kore's tracing mode);
  otherwise kills the process with SIGKILL before the syscall runs (Kore's
  default) and, for a worker, remembers why so that the death is logged
  with the syscall; the arbiter then respawns the worker.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import select
import signal
import struct
from typing import Any, Dict, Optional, Tuple

import gevent
from gevent import monkey
from gevent.socket import wait_read

from . import _state, ipc
from .log import error, notice, warning
from .sandbox import MSG_HELD

_poll = monkey.get_original("select", "poll")
_NOTIF = struct.Struct("=QIIiIQ6Q")          # struct seccomp_notif (80 bytes)
_RESP = struct.Struct("=QqiI")               # struct seccomp_notif_resp (24 bytes)
_IOCTL_RECV = 0xC0502100                     # SECCOMP_IOCTL_NOTIF_RECV
_IOCTL_SEND = 0xC0182101                     # SECCOMP_IOCTL_NOTIF_SEND
_FLAG_CONTINUE = 1                           # SECCOMP_USER_NOTIF_FLAG_CONTINUE
_SYS_PIDFD_GETFD = 438                       # the same number on every architecture


def syscall_name(arch: int, nr: int) -> str:
    """libseccomp's name for syscall ``nr``.  Called straight through
    ctypes: importing pyseccomp in the master would run ``find_library``,
    whose subprocesses make gevent install a SIGCHLD child watcher that
    reaps the workers before the arbiter's own waitpid loop sees them."""
    global _libseccomp
    try:
        if _libseccomp is None:
            lib = ctypes.CDLL("libseccomp.so.2")
            lib.seccomp_syscall_resolve_num_arch.restype = ctypes.c_void_p
            lib.seccomp_syscall_resolve_num_arch.argtypes = (ctypes.c_uint32, ctypes.c_int)
            _libseccomp = lib
        ptr = _libseccomp.seccomp_syscall_resolve_num_arch(arch, nr)
        if not ptr:
            return "unknown"
        try:
            return ctypes.string_at(ptr).decode("ascii", "replace")
        finally:
            _libc().free(ctypes.c_void_p(ptr))
    except (OSError, AttributeError):
        return "unknown"


_libseccomp: Any = None
_libc_handle: Any = None


def _libc() -> Any:
    global _libc_handle
    if _libc_handle is None:
        _libc_handle = ctypes.CDLL(None, use_errno=True)
        _libc_handle.free.argtypes = (ctypes.c_void_p,)
    return _libc_handle


def _pidfd_getfd(pid: int, fd: int) -> int:
    nr = _SYS_PIDFD_GETFD
    libc = _libc()
    pidfd = os.pidfd_open(pid)
    try:
        got = libc.syscall(nr, pidfd, fd, 0)
        if got < 0:
            err = ctypes.get_errno()
            raise OSError(err, "pidfd_getfd: %s" % os.strerror(err))
        return got
    finally:
        os.close(pidfd)


def _tgid(tid: int) -> int:
    try:
        with open("/proc/%d/status" % tid) as fh:
            for line in fh:
                if line.startswith("Tgid:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return tid


class Supervisor:
    """One per master: the listeners it holds, by worker pid."""

    def __init__(self, spawn: Any = gevent.spawn) -> None:
        self.spawn = spawn              # the arbiter's: not inherited by workers
        self.listeners: Dict[int, Tuple[int, gevent.Greenlet]] = {}
        self.violations: Dict[int, str] = {}

    def adopt(self, wp: Any, payload: bytes) -> None:
        """A worker announced its listener: copy it and start serving it."""
        reply = b""
        try:
            fd = _pidfd_getfd(wp.pid, int(payload))
        except (OSError, ValueError, AttributeError) as exc:
            reply = ("the master cannot take the seccomp listener (%s): Linux 5.6 "
                     "or later is needed; set seccomp = no" % exc).encode()
        else:
            self.listeners[wp.pid] = (fd, self.spawn(self._serve, wp, fd))
        try:
            wp.channel.send(ipc.Message(MSG_HELD, reply, dst=wp.id))
        except ipc.ChannelClosed:
            pass

    def forget(self, pid: int) -> Optional[str]:
        """The process ``pid`` was reaped: close its listener and return the
        violation that killed it, if one did."""
        entry = self.listeners.pop(pid, None)
        if entry is not None:
            fd, glet = entry
            glet.kill(block=False)
            try:
                os.close(fd)
            except OSError:
                pass
        return self.violations.pop(pid, None)

    def close_all(self) -> None:
        for pid in list(self.listeners):
            self.forget(pid)

    def drop_inherited(self) -> None:
        """In a freshly forked worker: close the other workers' listeners
        (their greenlets died with the arbiter's groups)."""
        for fd, _glet in self.listeners.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self.listeners.clear()
        self.violations.clear()

    def _serve(self, wp: Any, fd: int) -> None:
        # the real poll(2): gevent's (monkey-patched) one hides POLLHUP
        poller = _poll()
        poller.register(fd, select.POLLIN)
        while True:
            try:
                wait_read(fd)
            except Exception:
                return
            events = poller.poll(0)
            if not events:
                continue
            if events[0][1] & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                return                     # nothing uses the filter any more
            buf = bytearray(_NOTIF.size)
            try:
                fcntl.ioctl(fd, _IOCTL_RECV, buf, True)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.EINTR):
                    continue               # the caller died meanwhile
                error("seccomp listener of worker %d: %s" % (wp.id, exc))
                return
            self._violation(wp, fd, _NOTIF.unpack(buf))

    def _violation(self, wp: Any, fd: int, notif: tuple) -> None:
        nid, tid, _flags, nr, arch = notif[:5]
        tgid = _tgid(tid)
        who = "wrk %d" % wp.id if tgid == wp.pid else "<child>"
        name = syscall_name(arch, nr)
        tracing = _state.registry.get("seccomp_tracing")
        notice("seccomp violation, %s pid=%d, syscall=%d:%s%s"
               % (who, tgid, nr, name, "" if tracing else ", killing it"))
        if tracing:
            resp = _RESP.pack(nid, 0, 0, _FLAG_CONTINUE)
        else:
            if tgid == wp.pid:
                self.violations[wp.pid] = "syscall=%d:%s" % (nr, name)
            try:
                os.kill(tgid, signal.SIGKILL)
            except OSError as exc:
                warning("cannot kill pid %d after its seccomp violation: %s" % (tgid, exc))
            resp = _RESP.pack(nid, 0, -errno.EPERM, 0)
        try:
            fcntl.ioctl(fd, _IOCTL_SEND, bytearray(resp), True)
        except OSError:
            pass                           # killed meanwhile (ENOENT)


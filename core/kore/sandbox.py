"""Sandboxed workers: Kore's seccomp filter (Linux only).

Every worker, once it has booted (privileges dropped, ``kore_worker_init``
hooks, ``koreapp.workerstart()``, listeners started) and before it reports
ready, loads a seccomp filter built with libseccomp (through the
``pyseccomp`` binding).  The filter is the default policy
(``kore.sandbox_policy``), the additions of plugins (hook
``kore_worker_seccomp``) and of the application (``koreapp.seccomp(seccomp)``
with Kore's method names: ``allow``, ``allow_arg``, ``allow_flag``,
``allow_mask``, ``deny``, ``deny_arg``, ``deny_flag``, ``deny_mask``).

A syscall outside the policy is handed to the master (a seccomp user
notification; the worker passes its listener to the master, which takes a
copy with ``pidfd_getfd``).  The master logs
``seccomp violation, wrk N pid=P, syscall=NR:name`` and then, as Kore does,
kills the process (SIGKILL; the syscall never runs) and respawns the
worker; with ``seccomp_tracing`` it lets the syscall run instead.  See
``kore.sandbox_master``.

``seccomp = no`` turns the filter off (Kore itself has no such switch).
"""

from __future__ import annotations

import errno as _errno
import os
import sys
from typing import Any, Optional

from . import _state
from .log import info
from .sandbox_policy import ALLOW, default_rules

MSG_LISTENER = "kore.seccomp"           # worker -> master: the listener fd
MSG_HELD = "kore.seccomp.held"          # master -> worker: copy taken

_listener_fd: Optional[int] = None
_held: Any = None


def supported() -> bool:
    return sys.platform.startswith("linux")


_SONAMES = {"c": "libc.so.6", "seccomp": "libseccomp.so.2"}


def _lib() -> Any:
    """pyseccomp, imported without its ``ctypes.util.find_library`` calls:
    those run ldconfig and a compiler in subprocesses (about 0.4 s per worker
    start) when the usual sonames load directly."""
    import ctypes
    import ctypes.util
    original = ctypes.util.find_library

    def find(name: str) -> Optional[str]:
        soname = _SONAMES.get(name)
        if soname is not None:
            try:
                ctypes.CDLL(soname)
                return soname
            except OSError:
                pass
        return original(name)

    ctypes.util.find_library = find
    try:
        import pyseccomp
    except (ImportError, OSError) as exc:
        raise RuntimeError("seccomp: libseccomp could not be loaded (%s); install "
                           "libseccomp2 and pyseccomp, or set seccomp = no" % exc) from exc
    finally:
        ctypes.util.find_library = original
    return pyseccomp


def preload() -> None:
    """In the master before the workers fork: import libseccomp's binding
    once, so that each worker does not pay for it (a failure is reported by
    the worker that needs it)."""
    if supported() and _state.registry.get("seccomp"):
        try:
            _lib()
        except RuntimeError:
            pass


def _resolve(name: str) -> int:
    if not isinstance(name, str) or not name:
        raise TypeError("kore.seccomp: the syscall must be a name (str), got %r" % (name,))
    lib = _lib()
    try:
        nr = lib.resolve_syscall(lib.system_arch(), name)
    except Exception:
        nr = -1
    if nr < 0:
        raise RuntimeError("system call '%s' does not exist" % name)
    return nr


def _check_arg(arg: Any) -> int:
    if not isinstance(arg, int) or isinstance(arg, bool) or not 0 <= arg <= 5:
        raise ValueError("kore.seccomp: the argument index must be 0-5, got %r" % (arg,))
    return arg


def _u64(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError("kore.seccomp: the value must be an int, got %r" % (value,))
    return value & 0xFFFFFFFFFFFFFFFF


def _errno_of(kwargs: dict) -> int:
    unknown = set(kwargs) - {"errno"}
    if unknown:
        raise TypeError("kore.seccomp: unexpected keyword %s (only errno=)"
                        % ", ".join(sorted(unknown)))
    err = kwargs.get("errno", _errno.EACCES)
    if not isinstance(err, int) or isinstance(err, bool) or not 0 < err < 4096:
        raise ValueError("kore.seccomp: errno must be an errno number, got %r" % (err,))
    return err


class seccomp:          # noqa: N801 (Kore's type is named kore.seccomp)
    """The filter being built: ``koreapp.seccomp(seccomp)`` receives one.

    Rules the application (or a plugin) gives for a syscall replace the
    default policy's rules for that syscall.  Within one syscall an
    unconditional rule wins over conditional ones (libseccomp's rule).
    """

    def __init__(self) -> None:
        self.rules: dict = {}

    def _add(self, name: str, action: Any, conds: list) -> None:
        _resolve(name)
        self.rules.setdefault(name, []).append((action, conds))

    # allow ...
    def allow(self, syscall: str) -> None:
        """Allow ``syscall``."""
        self._add(syscall, ALLOW, [])

    def allow_arg(self, syscall: str, arg: int, value: int) -> None:
        """Allow ``syscall`` when argument ``arg`` equals ``value``."""
        self._add(syscall, ALLOW, [(_check_arg(arg), "EQ", _u64(value), 0)])

    def allow_flag(self, syscall: str, arg: int, flag: int) -> None:
        """Allow ``syscall`` when argument ``arg`` has every bit of ``flag``."""
        flag = _u64(flag)
        self._add(syscall, ALLOW, [(_check_arg(arg), "MASKED_EQ", flag, flag)])

    def allow_mask(self, syscall: str, arg: int, mask: int) -> None:
        """Allow ``syscall`` when argument ``arg`` has no bit outside ``mask``."""
        self._add(syscall, ALLOW, [(_check_arg(arg), "MASKED_EQ",
                                    ~_u64(mask) & 0xFFFFFFFFFFFFFFFF, 0)])

    # deny ... (the syscall fails with errno, EACCES unless errno= says)
    def deny(self, syscall: str, **kwargs: Any) -> None:
        """Make ``syscall`` fail with ``errno`` (default EACCES)."""
        self._add(syscall, ("errno", _errno_of(kwargs)), [])

    def deny_arg(self, syscall: str, arg: int, value: int, **kwargs: Any) -> None:
        self._add(syscall, ("errno", _errno_of(kwargs)),
                  [(_check_arg(arg), "EQ", _u64(value), 0)])

    def deny_flag(self, syscall: str, arg: int, flag: int, **kwargs: Any) -> None:
        flag = _u64(flag)
        self._add(syscall, ("errno", _errno_of(kwargs)),
                  [(_check_arg(arg), "MASKED_EQ", flag, flag)])

    def deny_mask(self, syscall: str, arg: int, mask: int, **kwargs: Any) -> None:
        self._add(syscall, ("errno", _errno_of(kwargs)),
                  [(_check_arg(arg), "MASKED_EQ", ~_u64(mask) & 0xFFFFFFFFFFFFFFFF, 0)])

    def bpf_stmt(self, code: int, k: int) -> None:
        """Kore appends a raw BPF statement; the filter here is compiled by
        libseccomp, which takes rules, not instructions."""
        raise NotImplementedError(
            "kore.seccomp.bpf_stmt(): raw BPF statements cannot be added to a "
            "filter compiled by libseccomp; use allow/deny and their _arg, "
            "_flag and _mask forms")

    def __repr__(self) -> str:
        return "<kore.seccomp: %d syscalls with rules>" % len(self.rules)


def build(app: Any, worker: Any) -> dict:
    """The complete rule set of a worker: defaults, then plugins' and the
    application's rules (which replace the defaults of their syscalls)."""
    from .runtime import call_reported
    extra = seccomp()
    if _state.pm is not None:
        call_reported("kore_worker_seccomp", where="worker seccomp", worker=worker,
                      seccomp=extra)
    if app is not None:
        app.call("seccomp", extra)
    rules = default_rules()
    rules.update(extra.rules)
    return rules


def _compile(lib: Any, rules: dict) -> Any:
    flt = lib.SyscallFilter(lib.NOTIFY)
    flt.set_attr(lib.Attr.CTL_TSYNC, 1)     # gevent's threadpool, libcurl's resolver
    arch = lib.system_arch()
    for name, spec in rules.items():
        try:
            if lib.resolve_syscall(arch, name) < 0:
                continue
        except Exception:
            continue
        for action, conds in ([(ALLOW, [])] if spec == ALLOW else spec):
            act = lib.ALLOW if action == ALLOW else lib.ERRNO(action[1])
            args = [lib.Arg(a, getattr(lib, op), x, y) for a, op, x, y in conds]
            flt.add_rule(act, name, *args)
    return flt


def _notify_fd(lib: Any, flt: Any) -> int:
    """libseccomp's seccomp_notify_fd(): the official binding calls it
    get_notify_fd(); pyseccomp has it only on its ctypes handle."""
    if hasattr(flt, "get_notify_fd"):
        return flt.get_notify_fd()
    return lib._libseccomp.seccomp_notify_fd(flt._filter)


_loaded_filters: list = []


def enable(worker: Any, app: Any) -> None:
    """Load the filter in this worker and hand the listener to the master.
    Raises RuntimeError with the reason when the kernel refuses."""
    global _listener_fd, _held
    if not supported() or not _state.registry.get("seccomp"):
        return
    lib = _lib()
    rules = build(app, worker)
    flt = _compile(lib, rules)
    try:
        flt.load()
    except OSError as exc:
        raise RuntimeError("seccomp: the kernel refused the worker's filter (%s); "
                           "set seccomp = no to run without it" % exc) from exc
    _loaded_filters.append(flt)                 # libseccomp's context lives on
    fd = _notify_fd(lib, flt)
    if fd < 0:
        raise RuntimeError("seccomp: no notification listener (libseccomp %s)" % fd)
    _listener_fd = fd
    from gevent.event import AsyncResult
    from . import ipc
    _held = AsyncResult()
    worker.send(ipc.Message(MSG_LISTENER, b"%d" % fd))
    try:
        refusal = _held.get(timeout=30)
    except Exception:
        refusal = "the master did not take the seccomp listener within 30 s"
    if refusal:
        raise RuntimeError(refusal)
    info("seccomp filter loaded (%d syscalls with rules%s)"
         % (len(rules), ", tracing" if _state.registry.get("seccomp_tracing") else ""))


def listener_held(payload: bytes) -> None:
    """The master holds its copy (empty payload) or says why not: drop ours,
    so that the worker's pending violations fail (ENOSYS) instead of
    hanging should the master die."""
    global _listener_fd
    if _held is not None:
        _held.set(payload.decode("utf-8", "replace"))
    if _listener_fd is not None:
        try:
            os.close(_listener_fd)
        except OSError:
            pass
        _listener_fd = None

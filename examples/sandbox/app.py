"""Sandboxed workers (Linux): Kore's seccomp filter and koreapp.seccomp.

    korectl run --bind 127.0.0.1:8888 examples/sandbox/app.py
    curl http://127.0.0.1:8888/            # served under the default policy
    curl http://127.0.0.1:8888/priority    # getpriority: denied by this app (EPERM)
    curl http://127.0.0.1:8888/forbidden   # ptrace: the worker is killed, the
                                           # log names the syscall, a new one serves

With ``KORE_SECCOMP_TRACING=yes`` (or ``kore.config.seccomp_tracing = "yes"``)
the forbidden call is logged and allowed instead.
"""

import ctypes
import errno
import os

import kore

libc = ctypes.CDLL(None, use_errno=True)


class App:
    def seccomp(self, seccomp):
        # Kore's method names: allow/deny and their _arg, _flag, _mask forms
        seccomp.deny("getpriority", errno=errno.EPERM)


koreapp = App()


@kore.route("/", methods=["get"])
def index(req):
    req.response(200, b"worker %d (pid %d) runs sandboxed\n" % (kore.worker(), os.getpid()))


@kore.route("/priority", methods=["get"])
def priority(req):
    try:
        os.getpriority(os.PRIO_PROCESS, 0)
        req.response(200, b"getpriority allowed\n")
    except PermissionError:
        req.response(200, b"getpriority denied with EPERM\n")


@kore.route("/forbidden", methods=["get"])
def forbidden(req):
    rc = libc.ptrace(16, 0x7FFFFFF0, None, None)      # PTRACE_ATTACH: not in the policy
    req.response(200, b"ptrace returned %d (tracing mode)\n" % rc)

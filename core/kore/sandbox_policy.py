"""The default seccomp policy of a worker (Linux).

Kore's own list (``src/seccomp.c`` plus its Python filter) is the bare
minimum of a C event loop.  A worker here is a CPython interpreter running
gevent, and the plugins bring libpq (psycopg2) and libcurl (pycurl), so the
list is longer; everything a normal network server needs is in it, and
nothing that changes the machine, another process or the sandbox itself:
``ptrace``, ``mount``, ``setuid``, ``chroot``, ``unshare``/``setns``,
``bpf``, ``perf_event_open``, module loading, ``reboot``, ``keyctl``,
``io_uring``, ``process_vm_*``, ``chown``, ``mknod``, clock setting ...
are not, so they hit the default action (the worker is killed, or logged
with ``seccomp_tracing``).

Each entry is a syscall name and its rules: ``ALLOW`` alone, or a list of
``(action, conditions)`` where a condition is ``(arg, op, a, b)`` in
libseccomp's terms.  Names that do not exist on this architecture are
skipped (``open`` is absent on aarch64, for example).
"""

from __future__ import annotations

import errno
import socket

ALLOW = "allow"

# (arg, op, datum_a, datum_b); op names are libseccomp's
PROT_WX = 0x2 | 0x4     # PROT_WRITE | PROT_EXEC


def _wx_rules():
    """mmap/mprotect: writable *and* executable memory is refused with
    EINVAL, as Kore does; every other protection is allowed."""
    return [(ALLOW, [(2, "MASKED_EQ", PROT_WX, 0)]),
            (ALLOW, [(2, "MASKED_EQ", PROT_WX, 0x2)]),
            (ALLOW, [(2, "MASKED_EQ", PROT_WX, 0x4)]),
            (("errno", errno.EINVAL), [(2, "MASKED_EQ", PROT_WX, PROT_WX)])]


_FAMILIES = [socket.AF_UNIX, socket.AF_INET, socket.AF_INET6]
if hasattr(socket, "AF_NETLINK"):
    _FAMILIES.append(socket.AF_NETLINK)    # getaddrinfo(AI_ADDRCONFIG), if_nameindex

_PLAIN = """
read write readv writev pread64 pwrite64 preadv pwritev preadv2 pwritev2
open openat openat2 close close_range creat
stat fstat lstat newfstatat statx statfs fstatfs access faccessat faccessat2
lseek _llseek getdents getdents64 fcntl fcntl64 dup dup2 dup3 pipe pipe2
readlink readlinkat getcwd chdir fchdir umask
unlink unlinkat rename renameat renameat2 mkdir mkdirat rmdir
link linkat symlink symlinkat chmod fchmod fchmodat utime utimes utimensat futimesat
fsync fdatasync sync_file_range ftruncate truncate fallocate flock fadvise64
getxattr lgetxattr fgetxattr listxattr llistxattr flistxattr
sendfile sendfile64 copy_file_range splice tee memfd_create
eventfd eventfd2 inotify_init inotify_init1 inotify_add_watch inotify_rm_watch
brk munmap mremap madvise msync mincore membarrier
exit exit_group getpid gettid getppid getuid geteuid getgid getegid getgroups
getresuid getresgid getpgrp getpgid getsid setsid setpgid
kill tgkill tkill wait4 waitid clone clone3 vfork execve execveat
pidfd_open pidfd_send_signal
set_tid_address set_robust_list get_robust_list rseq prctl arch_prctl
sched_yield sched_getaffinity sched_getparam sched_getscheduler getcpu
getrlimit prlimit64 getrusage times uname sysinfo getpriority capget
nanosleep clock_nanosleep clock_gettime clock_getres gettimeofday time
alarm setitimer getitimer timer_create timer_settime timer_gettime timer_delete
timerfd_create timerfd_settime timerfd_gettime futex futex_waitv restart_syscall
getrandom ioctl
rt_sigaction rt_sigprocmask rt_sigreturn sigreturn sigaltstack rt_sigpending
rt_sigtimedwait rt_sigsuspend signalfd signalfd4 pause
socketpair connect accept accept4 bind listen shutdown
getsockname getpeername getsockopt setsockopt
send sendto sendmsg sendmmsg recv recvfrom recvmsg recvmmsg
poll ppoll select _newselect pselect6 epoll_create epoll_create1 epoll_ctl
epoll_wait epoll_pwait epoll_pwait2
"""


def default_rules() -> dict:
    """The default policy: ``{syscall name: ALLOW or [(action, conds), ...]}``."""
    rules: dict = {name: ALLOW for name in _PLAIN.split()}
    rules["socket"] = [(ALLOW, [(0, "EQ", family, 0)]) for family in _FAMILIES]
    rules["mmap"] = _wx_rules()
    rules["mmap2"] = _wx_rules()
    rules["mprotect"] = _wx_rules()
    return rules

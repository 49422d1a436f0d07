"""Load a certificate chain and its key into an ``ssl.SSLContext`` from memory.

Python's ``SSLContext.load_cert_chain`` only takes paths.  Workers get an
issued chain and key from the master over the IPC socketpair and must never
open a key file, so the PEM bytes go into an anonymous memory file
(``memfd_create``, Linux) that only this process holds, loaded through its
``/proc/self/fd/N`` name, and closed right after: nothing is written to any
file system and no other process can open it.  Where ``memfd_create`` does
not exist, two pipes are used instead (``/dev/fd/N``; OpenSSL reads the
chain and the key once each, and both fit in a pipe's buffer).

The key does end up in the worker's memory: OpenSSL needs it there to
sign handshakes (Python's ssl module has no way to have another process
sign, as Kore's keymgr does).
"""

import os

_FD_DIR = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
_PIPE_MAX = 60000


class MemoryLoadError(Exception):
    pass


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def load(ctx, chain_pem, key_pem):
    """``ctx.load_cert_chain`` from PEM bytes; raises ssl.SSLError for bad
    PEM, MemoryLoadError when no in-memory file can be made."""
    memfd = getattr(os, "memfd_create", None)
    if memfd is not None and os.path.isdir("/proc/self/fd"):
        fd = memfd("kore-acme", getattr(os, "MFD_CLOEXEC", 1))
        try:
            _write_all(fd, chain_pem + b"\n" + key_pem)
            ctx.load_cert_chain("/proc/self/fd/%d" % fd)
        finally:
            os.close(fd)
        return
    if len(chain_pem) > _PIPE_MAX or len(key_pem) > _PIPE_MAX:
        raise MemoryLoadError("certificate chain too large for a pipe")
    if not os.path.isdir(_FD_DIR):
        raise MemoryLoadError("neither memfd_create nor %s is available (a chroot "
                              "without /proc or /dev/fd?)" % _FD_DIR)
    fds = []
    try:
        names = []
        for data in (chain_pem, key_pem):
            r, w = os.pipe()
            fds += [r, w]
            _write_all(w, data)
            os.close(w)
            fds.remove(w)
            names.append("%s/%d" % (_FD_DIR, r))
        ctx.load_cert_chain(names[0], names[1])
    finally:
        for fd in fds:
            os.close(fd)

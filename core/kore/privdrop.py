"""Privilege separation of the workers (Kore's ``root`` / ``runas``).

In production a worker started as root chroots into ``root`` and drops to the
user ``runas``; in development it only changes directory into ``root``.
``kore.privsep("worker", root=..., runas=..., skip=["chroot"])`` sets the
same options.
"""

import os
import pwd

from .config import ConfigError

SKIP = set()


def check(root, runas):
    """Validate in the master, so mistakes stop start-up."""
    if root and not os.path.isdir(root):
        raise ConfigError("option 'root': directory '%s' does not exist" % root)
    if runas:
        try:
            pw = pwd.getpwnam(runas)
        except KeyError:
            raise ConfigError("option 'runas': no such user '%s'" % runas) from None
        if os.geteuid() != 0 and pw.pw_uid != os.geteuid():
            raise ConfigError("option 'runas': must start as root to run as '%s'"
                              % runas)


def drop(root, runas, production):
    if root:
        if production and os.geteuid() == 0 and "chroot" not in SKIP:
            os.chroot(root)
            os.chdir("/")
        else:
            os.chdir(root)
    if runas and os.geteuid() == 0 and "runas" not in SKIP:
        pw = pwd.getpwnam(runas)
        os.initgroups(pw.pw_name, pw.pw_gid)
        os.setresgid(pw.pw_gid, pw.pw_gid, pw.pw_gid)
        os.setresuid(pw.pw_uid, pw.pw_uid, pw.pw_uid)
        os.environ["HOME"] = pw.pw_dir
        os.environ["USER"] = os.environ["LOGNAME"] = pw.pw_name

"""Daemon control: ``korectl start | stop | restart | status | reload -p PIDFILE``
(Skitai's ``-d start|stop|restart|status``), the pidfile check done before
anything binds, the daemonising fork that returns once the server serves,
and the policy for a master started as root.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any, Optional

from . import exitcodes
from .config import ConfigError

#: LSB init-script exit codes of ``status``
STATUS_RUNNING = 0
STATUS_DEAD = 1          # the pidfile exists, its process does not
STATUS_STOPPED = 3       # no pidfile

#: seconds ``korectl start`` waits for the daemon to serve
START_WAIT = 120.0


def _say(msg: str) -> None:
    sys.stderr.write("korectl: %s\n" % msg)
    sys.stderr.flush()


def read_pid(path: str) -> Optional[int]:
    try:
        with open(path) as f:
            return int(f.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def running(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:        # a zombie (not yet reaped by its parent) is not running
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def pidfile_owner(path: str) -> Optional[int]:
    """The pid of the running process ``path`` names, else None."""
    if not path:
        return None
    pid = read_pid(path)
    if pid and pid != os.getpid() and running(pid):
        return pid
    return None


def check_root(reg: Any, warn: Any) -> None:
    """As Kore: a production master started as root needs ``runas`` (or an
    explicit ``keep_root``); in development it warns once."""
    if os.geteuid() != 0 or reg.get("runas") or reg.get("keep_root"):
        return
    if reg.get("deployment") == "production":
        raise ConfigError(
            "started as root with deployment 'production' and no 'runas': the "
            "workers would serve as root. Set the user to drop to (korectl -u "
            "USER, KORE_RUNAS=USER or kore.config.runas = 'USER'), or keep root "
            "explicitly with --keep-root (option keep_root = yes)")
    warn("running as root without 'runas': the workers keep root privileges "
         "(set runas, korectl -u USER, to drop them)")


# -- the daemonising fork ----------------------------------------------------

def daemonize(pidfile: str, announce: bool) -> int:
    """Fork into the background.  In the daemon: return the write end of a
    pipe the arbiter reports on (``b"ready"`` once every worker serves,
    ``b"exit N"`` when it stops first).  The foreground process never
    returns: it waits for that report and exits 0 once the server serves, or
    with the daemon's exit code."""
    import gevent
    from gevent import monkey
    fork = monkey.get_original("os", "fork")
    rfd, wfd = os.pipe()
    if fork():
        os.close(wfd)
        os._exit(_wait_started(rfd, pidfile, announce))
    os.close(rfd)
    os.setsid()
    if fork():
        os._exit(0)
    gevent.reinit()
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    os.close(devnull)
    return wfd


def _wait_started(rfd: int, pidfile: str, announce: bool) -> int:
    os.set_blocking(rfd, False)
    deadline = time.monotonic() + START_WAIT
    data = b""
    while True:
        try:
            chunk = os.read(rfd, 64)
        except BlockingIOError:
            if time.monotonic() > deadline:
                _say("the server has not reported ready after %d s; it is still "
                     "starting (pidfile %s)" % (START_WAIT, pidfile or "none"))
                return exitcodes.FATAL
            time.sleep(0.02)
            continue
        if not chunk:
            break
        data += chunk
    text = data.decode("ascii", "replace").strip()
    if text.startswith("ready"):
        if announce:
            pid = read_pid(pidfile) if pidfile else None
            sys.stdout.write("korectl: serving, master pid %s\n" % (pid or "?"))
            sys.stdout.flush()
        return exitcodes.OK
    code = exitcodes.FATAL
    if text.startswith("exit "):
        try:
            code = int(text.split()[1]) or exitcodes.FATAL
        except ValueError:
            pass
    _say("the server stopped during start-up (exit code %d): see its log "
         "(logfile, or syslog in production)" % code)
    return code


# -- the commands --------------------------------------------------------------

def command_file(pidfile: str) -> str:
    return os.path.abspath(pidfile) + ".cmd"


def save_command(pidfile: str, argv: list) -> None:
    """Remember how ``korectl start`` was called, for ``korectl restart``."""
    env = {k: v for k, v in os.environ.items() if k.startswith("KORE_")}
    path = command_file(pidfile)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"argv": argv, "cwd": os.getcwd(), "env": env}, f)
    os.replace(tmp, path)


def cmd_status(args: Any) -> int:
    pid = read_pid(args.pidfile)
    if pid is None:
        sys.stdout.write("not running (no pidfile %s)\n" % args.pidfile)
        return STATUS_STOPPED
    if running(pid):
        sys.stdout.write("running (master pid %d)\n" % pid)
        return STATUS_RUNNING
    sys.stdout.write("not running (stale pidfile %s names pid %d)\n" % (args.pidfile, pid))
    return STATUS_DEAD


def stop(pidfile: str, wait: float) -> int:
    pid = read_pid(pidfile)
    if not running(pid):
        sys.stdout.write("not running\n")
        return exitcodes.OK
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait
    while running(pid):
        if time.monotonic() > deadline:
            _say("master %d has not stopped after %g s (graceful_timeout too "
                 "long? kill -QUIT %d stops it at once)" % (pid, wait, pid))
            return exitcodes.FATAL
        time.sleep(0.05)
    sys.stdout.write("stopped (master pid %d)\n" % pid)
    return exitcodes.OK


def cmd_stop(args: Any) -> int:
    return stop(args.pidfile, args.wait)


def cmd_reload(args: Any) -> int:
    pid = read_pid(args.pidfile)
    if not running(pid):
        _say("not running (pidfile %s)" % args.pidfile)
        return STATUS_STOPPED
    os.kill(pid, signal.SIGHUP)
    sys.stdout.write("reload requested (HUP to master pid %d)\n" % pid)
    return exitcodes.OK


def cmd_restart(args: Any) -> int:
    try:
        with open(command_file(args.pidfile)) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        _say("no saved start command next to %s (%s): start it once with "
             "korectl start -p %s APP" % (args.pidfile, command_file(args.pidfile),
                                          args.pidfile))
        return exitcodes.CONFIG_ERROR
    code = stop(args.pidfile, args.wait)
    if code:
        return code
    import subprocess
    env = dict(os.environ)
    env.update(saved.get("env", {}))
    cmd = [sys.executable, "-c", "import korectl, sys; sys.exit(korectl.main())"]
    return subprocess.call(cmd + list(saved["argv"]), cwd=saved.get("cwd"), env=env)


def add_commands(sub: Any, app_arguments: Any) -> None:
    """``start`` takes ``run``'s arguments; the others a pidfile."""
    start = sub.add_parser("start", help="run APP as a daemon; returns once it serves",
                           description="Like run, in the background: returns 0 "
                           "once every worker serves, else the exit code.")
    app_arguments(start)
    for name, helptext in (("status", "exit 0 if the server runs, 3 (1 if "
                            "the pidfile is stale) otherwise"),
                           ("stop", "graceful stop (TERM), wait until stopped"),
                           ("restart", "stop, then start as korectl start did"),
                           ("reload", "reload the app (HUP)")):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("-p", "--pid", dest="pidfile", required=True, metavar="PIDFILE")
        if name in ("stop", "restart"):
            p.add_argument("--wait", type=float, default=60.0, metavar="S",
                           help="seconds to wait for the stop (default 60)")

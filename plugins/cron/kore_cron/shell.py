"""Shell jobs: child processes of the master, their output and their end.

Each run is ``/bin/sh -c COMMAND`` (option ``cron_shell``) in a session and
process group of its own, with stdin from /dev/null, in the application's
working directory (option ``root``, else the directory ``korectl`` was
started in) and, when the master runs as root with ``runas`` set, as that
user (the workers' user; no chroot).  stdout and stderr are read by
greenlets of the master and logged line by line with the job's name.

The master's supervision loop reaps every child (``waitpid(-1)``); the exit
status of a job's process comes back through ``kore_master_child_exit``.
"""

import errno
import fcntl
import os
import pwd
import signal
import time

import gevent
from gevent import monkey
from gevent.event import Event
from gevent.socket import wait_read

from kore import runtime
from kore.log import info, notice

MAX_LINE = 8192
MAX_FD = 1 << 20

# The master forks with the original os.fork, as it does for workers:
# korectl monkey-patches os and subprocess, and gevent's versions install
# libev's SIGCHLD reaper, which races the master's waitpid(-1) for the
# workers' exit statuses.
_fork = monkey.get_original("os", "fork")
# gevent's os.close (25.8+) defers the close to the event loop; the write
# ends must be closed before the parent waits for the child's exec.
_close = monkey.get_original("os", "close")

class ShellRun:
    """One running shell job."""

    def __init__(self, job, scheduled):
        self.job = job
        self.scheduled = scheduled
        self.pid = None
        self.started = None           # monotonic
        self.status = None            # raw wait status once reaped
        self.exited = Event()
        self.timed_out = False
        self.term_sent = None         # monotonic time TERM went to the group
        self.killed = False
        self._fds = []                # read ends no greenlet reads now
        self.open_fds = set()         # every read end still open
        self.carry = {}               # fd -> partial line read before a kill

    @property
    def done(self):
        return self.exited.is_set()

    def describe_status(self):
        st = self.status
        if st is None:
            return "ended (status unknown)"
        if os.WIFSIGNALED(st):
            sig = os.WTERMSIG(st)
            try:
                name = signal.Signals(sig).name
            except ValueError:
                name = str(sig)
            return "killed by signal %d (%s)" % (sig, name)
        return "exited with status %d" % os.WEXITSTATUS(st)

    def exit_code(self):
        if self.status is None:
            return None
        return os.waitstatus_to_exitcode(self.status)


def _user_settings():
    runas = runtime.option("runas")
    if not runas or os.geteuid() != 0:
        return {}, {}
    from kore import privdrop
    if "runas" in privdrop.SKIP:
        return {}, {}
    pw = pwd.getpwnam(runas)
    kw = {"user": pw.pw_uid, "group": pw.pw_gid,
          "extra_groups": os.getgrouplist(pw.pw_name, pw.pw_gid)}
    env = {"HOME": pw.pw_dir, "USER": pw.pw_name, "LOGNAME": pw.pw_name}
    return kw, env


def working_directory():
    root = runtime.option("root")
    return os.path.abspath(root) if root else os.getcwd()


def start(run):
    """Start the process of ``run``; OSError when it cannot be started."""
    job = run.job
    env = dict(os.environ)
    env.pop("KORE_CRON_CLOCK", None)
    user_kw, user_env = _user_settings()
    env.update(user_env)
    env["KORE_CRON_JOB"] = job.name
    env["KORE_CRON_SCHEDULED"] = run.scheduled.isoformat()
    argv = [runtime.option("cron_shell"), "-c", job.command]
    cwd = working_directory()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    rep_r, rep_w = os.pipe()        # the child's exec failure, if any
    for fd in (out_r, err_r, rep_r, rep_w):
        fcntl.fcntl(fd, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
    try:
        pid = _fork()
    except BaseException:
        for fd in (out_r, out_w, err_r, err_w, rep_r, rep_w):
            _close(fd)
        raise
    if pid == 0:
        _child(argv, env, cwd, out_w, err_w, rep_w, user_kw)
    for fd in (out_w, err_w, rep_w):
        _close(fd)
    try:
        failure = _read_all(rep_r)
    finally:
        _close(rep_r)
    if failure:
        _reap_now(pid)
        _close(out_r)
        _close(err_r)
        raise OSError(failure.decode("utf-8", "replace"))
    run.pid = pid
    run.started = time.monotonic()
    run._fds = [out_r, err_r]
    run.open_fds.update(run._fds)
    for fd in run._fds:
        os.set_blocking(fd, False)
    return run


def _child(argv, env, cwd, out_w, err_w, rep_w, user_kw):
    """In the forked child: become the job's process; never returns."""
    try:
        os.setsid()
        for signo in (signal.SIGPIPE, signal.SIGINT, signal.SIGTERM, signal.SIGHUP,
                      signal.SIGQUIT, signal.SIGCHLD, signal.SIGUSR1, signal.SIGTTIN,
                      signal.SIGTTOU):
            signal.signal(signo, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        keep = rep_w
        os.closerange(3, keep)
        os.closerange(keep + 1, MAX_FD)
        os.chdir(cwd)
        if user_kw:
            os.setgroups(user_kw["extra_groups"])
            os.setresgid(user_kw["group"], user_kw["group"], user_kw["group"])
            os.setresuid(user_kw["user"], user_kw["user"], user_kw["user"])
        os.execve(argv[0], argv, env)
    except BaseException as exc:
        try:
            os.write(rep_w, ("%s: %s" % (argv[0], exc)).encode("utf-8", "replace"))
        except BaseException:
            pass
    finally:
        os._exit(127)


def _read_all(fd):
    chunks = []
    while True:
        try:
            data = os.read(fd, 4096)
        except InterruptedError:
            continue
        if not data:
            return b"".join(chunks)
        chunks.append(data)


def _reap_now(pid):
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def read_output(run, spawn):
    """Start one reader greenlet per pipe with ``spawn``; return them."""
    fds, run._fds = run._fds, []
    return [spawn(_read_lines, run, fd, stream)
            for fd, stream in zip(fds, ("stdout", "stderr"))]


def _read_lines(run, fd, stream):
    """Log the lines of one pipe until EOF, then close it.

    A kill (GreenletExit) leaves the pipe open and hands it back to ``run``
    so the rest can still be read and logged while the server stops.
    """
    log = info if stream == "stdout" else notice
    name = run.job.name
    buf = run.carry.pop(fd, b"")
    closed = False
    try:
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                wait_read(fd)
                continue
            except OSError as exc:
                if exc.errno == errno.EINTR:
                    continue
                chunk = b""
            if not chunk:
                break
            buf += chunk
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    if len(buf) >= MAX_LINE:
                        nl = MAX_LINE
                        line, buf = buf[:nl], buf[nl:]
                    else:
                        break
                else:
                    line, buf = buf[:nl], buf[nl + 1:]
                log("cron job '%s' %s: %s"
                    % (name, stream, line.decode("utf-8", "replace").rstrip("\r")))
        if buf:
            log("cron job '%s' %s: %s" % (name, stream, buf.decode("utf-8", "replace")))
        closed = True
        run.open_fds.discard(fd)
        _close(fd)
    except gevent.GreenletExit:
        run.carry[fd] = buf
        run._fds.append(fd)
        raise
    finally:
        if not closed and fd not in run._fds:
            run.open_fds.discard(fd)
            try:
                _close(fd)
            except OSError:
                pass


def signal_group(run, signo):
    """Send ``signo`` to the job's process group; False if it is gone."""
    if run.pid is None or run.done:
        return False
    try:
        os.killpg(run.pid, signo)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return False


def reaped(run, status):
    """The master reaped the job's process."""
    run.status = status
    run.exited.set()


def try_reap(run):
    """Reap the job's process ourselves (the master's loop has ended)."""
    if run.done or run.pid is None:
        return run.done
    try:
        pid, status = os.waitpid(run.pid, os.WNOHANG)
    except ChildProcessError:
        reaped(run, None)
        return True
    if pid:
        reaped(run, status)
        return True
    return False

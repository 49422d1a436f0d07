"""The master's side of the agent: start it, restart it when it dies, stop it.

The agent is a fresh interpreter (``python -m kore_smtpda.run_agent``, started
with ``posix_spawn``, so nothing of the master's gevent hub or listeners is
inherited).  Two pipes connect them:

* the agent's stdin carries its settings (one JSON line, passwords included:
  they never touch the disk) and stays open; EOF tells the agent the master
  is gone;
* the agent holds the write end of a "liveness" pipe as fd 3: EOF on the read
  end tells the supervising greenlet that the agent died, however it died.

The kernel's supervision loop reaps every child with ``waitpid(-1)``, so the
agent's exit status is read here when possible and logged as unknown
otherwise.  A dead agent is restarted after 1 s, doubling up to 30 s while it
keeps dying within 10 s of its start.  On stop the agent gets TERM and
``STOP_TIMEOUT`` seconds, then KILL; what it was delivering stays in the
spool.
"""

import json
import os
import signal
import sys
import time

import gevent
from gevent import monkey
from gevent.socket import wait_read

from kore.log import error, notice, warning

STOP_TIMEOUT = 15.0
_posix_spawn = monkey.get_original("os", "posix_spawn")
_waitpid = monkey.get_original("os", "waitpid")


class Supervisor:
    def __init__(self, config):
        self.config = config
        self.master_pid = os.getpid()
        self.pid = None
        self.cfg_fd = None          # write end of the agent's stdin
        self.live_fd = None         # read end of the liveness pipe
        self.stopping = False
        self.greenlet = None
        self.restarts = 0
        self.planned = False

    def fds(self):
        return [fd for fd in (self.cfg_fd, self.live_fd) if fd is not None]

    def start(self):
        r_cfg, w_cfg = os.pipe()
        r_live, w_live = os.pipe()
        argv = [sys.executable, "-m", "kore_smtpda.run_agent"]
        env = dict(os.environ)
        try:
            pid = _posix_spawn(sys.executable, argv, env, file_actions=[
                (os.POSIX_SPAWN_DUP2, r_cfg, 0),
                (os.POSIX_SPAWN_DUP2, w_live, 3),
            ])
        finally:
            os.close(r_cfg)
            os.close(w_live)
        line = (json.dumps(self.config) + "\n").encode("utf-8")
        os.write(w_cfg, line)
        self.pid, self.cfg_fd, self.live_fd = pid, w_cfg, r_live
        self.started = time.monotonic()
        return pid

    def _wait_dead(self, timeout=None):
        """Wait for EOF on the liveness pipe; True when the agent is gone."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return False
            try:
                wait_read(self.live_fd, timeout=left if left is not None else 3600)
            except Exception:
                continue
            try:
                data = os.read(self.live_fd, 64)
            except BlockingIOError:
                continue
            if not data:
                return True

    def _status(self):
        """The exit status if this process can still reap the agent."""
        for _ in range(20):
            try:
                pid, status = _waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                return "exited"             # reaped by the master's loop
            if pid:
                if os.WIFSIGNALED(status):
                    return "killed by signal %d" % os.WTERMSIG(status)
                return "exited with status %d" % os.WEXITSTATUS(status)
            gevent.sleep(0.01)
        return "exited"

    def _close(self):
        for fd in self.fds():
            try:
                os.close(fd)
            except OSError:
                pass
        self.cfg_fd = self.live_fd = None

    def run(self):
        """The supervising greenlet (``arbiter.spawn``)."""
        delay = 1.0
        while not self.stopping:
            try:
                pid = self.start()
            except OSError as exc:
                error("smtpda: cannot start the delivery agent: %s" % exc)
                gevent.sleep(delay)
                delay = min(30.0, delay * 2)
                continue
            notice("smtpda agent started (pid %d)" % pid)
            self._wait_dead()
            if self.stopping:
                return
            how = self._status()
            self._close()
            if self.planned:
                self.planned = False
                notice("smtpda agent (pid %d) %s, starting it with the new settings"
                       % (pid, how))
                continue
            if time.monotonic() - self.started > 10:
                delay = 1.0             # it ran a while: not a crash loop
            wait, delay = delay, min(30.0, delay * 2)
            self.restarts += 1
            warning("smtpda agent (pid %d) %s, restarting it in %.0f s" % (pid, how, wait))
            gevent.sleep(wait)

    def restart(self, config):
        """Stop the running agent (new settings after a reload); run() starts
        the next one with ``config``."""
        self.config = config
        if self.pid is not None and self.live_fd is not None:
            self.planned = True
            self._signal(signal.SIGTERM)

    def reopen_logs(self):
        if self.pid is not None and self.live_fd is not None:
            self._signal(signal.SIGUSR1)

    def _signal(self, signo):
        try:
            os.kill(self.pid, signo)
        except ProcessLookupError:
            pass

    def stop(self, timeout=None):
        timeout = STOP_TIMEOUT if timeout is None else timeout
        self.stopping = True
        if self.greenlet is not None:
            self.greenlet.kill(block=False)
        if self.pid is None or self.live_fd is None:
            return
        self._signal(signal.SIGTERM)
        if not self._wait_dead(timeout):
            warning("smtpda agent (pid %d) did not stop in %g s, killing it"
                    % (self.pid, timeout))
            self._signal(signal.SIGKILL)
            self._wait_dead(5.0)
        self._status()
        self._close()

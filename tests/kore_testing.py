"""Helpers for tests: real ``korectl`` processes on free loopback ports.

Imported by tests as ``kore_testing`` (a unique name: several test folders
have a conftest.py of their own).
"""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.dirname(sys.executable)
KORECTL = os.path.join(BIN, "korectl")


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class PortTaken(Exception):
    """A port picked with free_port() was bound by another process before
    the program meant to listen on it started (see with_free_ports)."""


def with_free_ports(count, start, attempts=5, family=socket.AF_INET, host="127.0.0.1"):
    """``start(*ports)`` with ``count`` distinct ports from free_port(), for
    what must know its ports before it starts (an app naming an upstream's
    port in its configuration, an external daemon).  A port is only free
    when picked: when ``start`` raises PortTaken, it runs again with new
    ports.  Anything that can bind port 0 and report the port should (see
    KoreServer.listen_port, logged_port)."""
    for attempt in range(attempts):
        ports = set()
        while len(ports) < count:
            ports.add(free_port(family, host))
        try:
            return start(*sorted(ports))
        except PortTaken:
            if attempt == attempts - 1:
                raise


def _listen_inodes(port):
    """The socket inodes listening on TCP ``port`` (any address)."""
    inodes = set()
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 9 and f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(f[9])
    return inodes


def listens(proc, port):
    """True when the socket listening on ``port`` is held by process
    ``proc`` (a Popen) or one of its children: a connect alone cannot tell
    our server from another process that took the port first."""
    inodes = _listen_inodes(port)
    if not inodes:
        return False
    pids = [proc.pid]
    try:
        for task in os.listdir("/proc/%d/task" % proc.pid):
            with open("/proc/%d/task/%s/children" % (proc.pid, task)) as f:
                pids += [int(x) for x in f.read().split()]
    except OSError:
        pass
    for pid in pids:
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return True
    return False


def started_on(srv, ports, host="127.0.0.1", timeout=30.0):
    """Wait until KoreServer ``srv`` itself listens on every port of
    ``ports``; raise PortTaken (after stopping it) when it exited because
    one was taken meanwhile, AssertionError on any other failure."""
    for port in ports:
        ok = wait_port(host, port, timeout, srv.proc) and wait_for(
            lambda: srv.proc.poll() is not None or listens(srv.proc, port), timeout)
        if not ok or srv.proc.poll() is not None or not listens(srv.proc, port):
            log = srv.log()
            srv.cleanup()
            if "Address already in use" in log or "address already in use" in log:
                raise PortTaken(log)
            raise AssertionError("korectl did not start listening on %d:\n%s" % (port, log))
    return srv


def logged_port(text, server=None, host="127.0.0.1"):
    """The port of the last ``server 'NAME' listening on ...HOST:PORT`` line in
    ``text`` (a log's text, or a pathlib path to read), or None.  Servers bound to
    port 0 log the port the kernel chose: read it here instead of racing
    other processes for a "free" one."""
    import re
    if isinstance(text, os.PathLike):
        try:
            with open(text, errors="replace") as f:
                text = f.read()
        except OSError:
            return None
    rx = re.compile(r"server '%s' listening on (?:https?://)?\[?%s\]?:(\d+)"
                    % (re.escape(server) if server else "[^']+", re.escape(host)))
    found = rx.findall(text)
    return int(found[-1]) if found else None


def file_text(path):
    """The text of file ``path``, or None while it does not exist (a marker
    written by a test app: wait for its text, not for it to exist, since
    it exists before it is written)."""
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def read_to_eof(sock, size=65536):
    """Every byte ``sock`` receives until the peer closes (a response sent
    with ``Connection: close``)."""
    data = b""
    while True:
        chunk = sock.recv(size)
        if not chunk:
            return data
        data += chunk


def wait_port(host, port, timeout=15.0, proc=None):
    deadline = time.monotonic() + timeout
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(0.5)
                s.connect((host, port))
                return True
        except OSError:
            time.sleep(0.05)
    return False


def wait_for(pred, timeout=10.0, step=0.05):
    """Poll ``pred()`` until it is true (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


def every_worker(fetch, workers=2, timeout=60.0, batch=8):
    """``fetch()`` (one request on a new connection, returning ``(worker,
    value)``) in concurrent batches until ``workers`` distinct workers
    answered or ``timeout`` passed: {worker: value}.

    Which worker accepts a connection is the kernel's choice, and beside a
    busy process one worker can win dozens of sequential accepts in a row;
    several connections pending at once spread over the workers."""
    from concurrent.futures import ThreadPoolExecutor
    seen = {}
    deadline = time.monotonic() + timeout
    with ThreadPoolExecutor(batch) as pool:
        while len(seen) < workers and time.monotonic() < deadline:
            for worker, value in pool.map(lambda _i: fetch(), range(batch)):
                seen.setdefault(worker, value)
    return seen


def gevent_wait_for(pred, timeout=10.0, step=0.002):
    """wait_for for in-process gevent tests: poll ``pred()`` with
    gevent.sleep, so the greenlets the condition depends on run meanwhile
    (time.sleep would stop the hub).  True when it held, False after
    ``timeout`` seconds.  Also usable inside a coroutine driven by kore."""
    import gevent
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        gevent.sleep(step)


def _tcp_table():
    """Connected rows of /proc/net/tcp and tcp6 (not LISTEN or TIME_WAIT):
    ``((local_port, remote_port), tx_queue, rx_queue, inode)``."""
    rows = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(name) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10 or fields[3] in ("06", "0A"):
                continue
            lport = int(fields[1].rsplit(":", 1)[1], 16)
            rport = int(fields[2].rsplit(":", 1)[1], 16)
            tx, rx = (int(x, 16) for x in fields[4].split(":"))
            rows.append(((lport, rport), tx, rx, int(fields[9])))
    return rows


def _ends(sock):
    """(client row, server row) of the loopback TCP connection ``sock``
    (its client end), either None when not found."""
    mine = sock.getsockname()[1]
    peer = sock.getpeername()[1]
    client = server = None
    for ports, tx, rx, inode in _tcp_table():
        if ports == (mine, peer):
            client = (tx, rx, inode)
        elif ports == (peer, mine):
            server = (tx, rx, inode)
    return client, server


def accepted(sock):
    """True once the server end of the loopback TCP connection ``sock``
    was accept()ed by a process (a connection still in the listen backlog
    has no socket inode yet).  What a test waits on instead of sleeping
    "until the worker has accepted it"."""
    _, server = _ends(sock)
    return server is not None and server[2] != 0


def peer_read_all(sock):
    """True once the server process has read every byte sent on the
    loopback TCP connection ``sock``: nothing unacknowledged on the
    client's side, nothing unread in the server's receive queue.  What a
    test waits on instead of sleeping "until the server has read it"."""
    client, server = _ends(sock)
    return (client is not None and server is not None and server[2] != 0
            and client[0] == 0 and server[1] == 0)


def refuses(host, port):
    """True when a new TCP connection to ``host:port`` is refused (the
    server stopped listening); a connection that is accepted is closed."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(2)
            s.connect((host, port))
        return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False


class KoreServer:
    def __init__(self, tmp_path, app, extra=(), workers=1, env=None, args=(),
                 bind=True, timeout=20.0, wait=True, cwd=None):
        self.tmp_path = tmp_path
        if "\n" in app:
            path = tmp_path / "app.py"
            path.write_text(textwrap.dedent(app))
            app = str(path)
        self.app = app
        self.host = "127.0.0.1"
        # --bind HOST:0: the kernel picks a free port (no free_port() race with
        # other processes on the machine) and the log names it; ``port`` reads
        # it back on first use
        self._port = None if bind else free_port()
        KoreServer._count += 1
        self.logpath = tmp_path / ("korectl-%d-%d.log" % (os.getpid(), KoreServer._count))
        cmd = [KORECTL, "run"]
        if bind:
            cmd += ["--bind", "%s:0" % self.host]
        if workers is not None:
            cmd += ["--workers", str(workers)]
        cmd += list(args) + [app] + list(extra)
        self.cmd = cmd
        # a --log-file (or KORE_LOGFILE) takes the log off stdout: the port
        # line is read from there then
        self._logfile = (env or {}).get("KORE_LOGFILE")
        args = list(args)
        for flag in ("--log-file", "--error-logfile"):
            if flag in args and args.index(flag) + 1 < len(args):
                self._logfile = args[args.index(flag) + 1]
        e = dict(os.environ)
        e.setdefault("PYTHONUNBUFFERED", "1")
        e.update(env or {})
        self._logf = open(self.logpath, "wb")
        self.proc = subprocess.Popen(cmd, stdout=self._logf, stderr=subprocess.STDOUT,
                                     env=e, cwd=cwd or str(tmp_path),
                                     start_new_session=True)
        if wait and bind:
            try:
                port = self.port
            except AssertionError:
                self.kill()
                raise
            if not wait_port(self.host, port, timeout, self.proc):
                out = self.log()
                self.kill()
                raise AssertionError("korectl did not start listening on %d:\n%s"
                                     % (self.port, out))

    _count = 0

    @property
    def port(self):
        """The port the server listens on (read from its log)."""
        if self._port is None:
            import re
            rx = re.compile(r"listening on https?://%s:(\d+)" % re.escape(self.host))
            deadline = time.monotonic() + 30
            while self._port is None:
                text = self.log()
                if self._logfile:
                    try:
                        with open(self._logfile, errors="replace") as f:
                            text += f.read()
                    except OSError:
                        pass
                m = rx.search(text)
                if m:
                    self._port = int(m.group(1))
                    break
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError("korectl did not log its listening port:\n"
                                         + self.log())
                time.sleep(0.02)
        return self._port

    @port.setter
    def port(self, value):
        self._port = value

    def listen_port(self, server="default", host=None, timeout=30.0):
        """The port server ``server`` of the app listens on, read from the
        log (``server 'NAME' listening on ...``): an app declaring
        ``kore.server(NAME, ip=..., port=0)`` gets a port the kernel chose,
        so no test races another process for a "free" port.  Waits until
        the server listens (connects to it)."""
        host = host or self.host
        deadline = time.monotonic() + timeout
        while True:
            text = self.log()
            if self._logfile:
                try:
                    with open(self._logfile, errors="replace") as f:
                        text += f.read()
                except OSError:
                    pass
            port = logged_port(text, server, host)
            if port is not None:
                if not wait_port(host, port, max(1.0, deadline - time.monotonic()),
                                 self.proc):
                    raise AssertionError("server '%s' logged port %d but does not "
                                         "accept:\n%s" % (server, port, self.log()))
                return port
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("korectl did not log server '%s' listening on "
                                     "%s:\n%s" % (server, host, self.log()))
            time.sleep(0.02)

    _url = None

    @property
    def url(self):
        if self._url is not None:
            return self._url
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d" % (host, self.port)

    @url.setter
    def url(self, value):
        self._url = value

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        try:
            self._logf.flush()
        except ValueError:
            pass
        return self.logpath.read_text(errors="replace")

    def wait_log(self, text, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log():
                return True
            time.sleep(0.05)
        return False

    def wait_ready(self, workers, timeout=30.0):
        """Wait until the master has logged ``worker N (pid P) ready`` for
        workers 1..``workers`` (listening alone does not mean every worker
        accepts yet)."""
        import re
        deadline = time.monotonic() + timeout
        while True:
            log = self.log()
            if all(re.search(r"worker %d \(pid \d+\) ready" % w, log)
                   for w in range(1, workers + 1)):
                return True
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("workers not ready:\n" + log)
            time.sleep(0.05)

    def children(self):
        """Pids of the master's direct children (its workers)."""
        try:
            out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)],
                                 capture_output=True, text=True, timeout=5).stdout
        except subprocess.TimeoutExpired:
            return []
        return [int(x) for x in out.split()]

    def group_alive(self):
        try:
            os.killpg(self.proc.pid, 0)
            out = subprocess.run(["ps", "-o", "pid=,stat=", "-g", str(self.proc.pid)],
                                 capture_output=True, text=True, timeout=5).stdout
            return [l for l in out.splitlines() if l.strip() and "Z" not in l.split()[1]]
        except (ProcessLookupError, PermissionError):
            return []

    def send_signal(self, signo):
        self.proc.send_signal(signo)

    def stop(self, signo=signal.SIGTERM, timeout=15.0):
        """Stop the server; return its exit code (None if it had to be killed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signo)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                return None
        return self.proc.returncode

    def kill(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        try:
            self._logf.close()
        except Exception:
            pass

    def cleanup(self):
        if self.proc.poll() is None:
            self.stop()
        # whatever is left of the group (workers) goes too
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self._logf.close()
        except Exception:
            pass



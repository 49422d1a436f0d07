"""A throwaway PostgreSQL cluster for the tests and the benchmark.

``Cluster()`` runs initdb into a fresh temporary directory and serves it on a
unix socket in that directory and on a free 127.0.0.1 port.  PostgreSQL's
tools refuse to run as root, so as root they run as the ``postgres`` user
(the owner of the temporary directory).  The binaries are found at run time:
``$PG_BINDIR``, ``pg_config --bindir``, /usr/lib/postgresql/*/bin, $PATH.
"""

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def find_bindir():
    cands = []
    if os.environ.get("PG_BINDIR"):
        cands.append(os.environ["PG_BINDIR"])
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True,
                                 text=True, timeout=10).stdout.strip()
            if out:
                cands.append(out)
        except (OSError, subprocess.SubprocessError):
            pass
    cands += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    cands += sorted(glob.glob("/usr/local/pgsql/bin"))
    for d in cands:
        if os.access(os.path.join(d, "initdb"), os.X_OK) and \
                os.access(os.path.join(d, "pg_ctl"), os.X_OK):
            return d
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return os.path.dirname(os.path.realpath(initdb))
    return None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, bindir=None, dbname="kore_test"):
        self.bindir = bindir or find_bindir()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL binaries not found (initdb, pg_ctl)")
        self.user = None
        if os.geteuid() == 0:
            self.user = os.environ.get("PG_TEST_USER", "postgres")
            pw = pwd.getpwnam(self.user)
            self.uid, self.gid = pw.pw_uid, pw.pw_gid
        self.base = tempfile.mkdtemp(prefix="kore-pgsql-")
        os.chmod(self.base, 0o755)
        self.data = os.path.join(self.base, "data")
        self.sockdir = os.path.join(self.base, "sock")
        os.mkdir(self.data, 0o700)
        os.mkdir(self.sockdir, 0o755)
        if self.user:
            for p in (self.base, self.data, self.sockdir):
                os.chown(p, self.uid, self.gid)
        self.port = free_port()
        self.dbname = dbname
        self.logfile = os.path.join(self.base, "server.log")
        self.running = False

    # -- helpers ----------------------------------------------------------
    def _cmd(self, tool, *args, timeout=60, check=True):
        cmd = [os.path.join(self.bindir, tool)] + list(args)
        kw = {}
        if self.user:
            uid, gid = self.uid, self.gid

            def demote():
                os.setgroups([])
                os.setgid(gid)
                os.setuid(uid)
            kw["preexec_fn"] = demote
        env = dict(os.environ, LC_ALL="C", LANG="C")
        env.pop("PGDATA", None)
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                           cwd=self.base, env=env, **kw)
        if check and r.returncode != 0:
            raise RuntimeError("%s failed (%d):\n%s\n%s\n%s" % (
                tool, r.returncode, r.stdout, r.stderr, self.log()))
        return r

    def log(self):
        try:
            with open(self.logfile, errors="replace") as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    @property
    def dsn(self):
        """TCP conninfo (loopback)."""
        return "host=127.0.0.1 port=%d user=postgres dbname=%s" % (self.port, self.dbname)

    @property
    def unix_dsn(self):
        return "host=%s port=%d user=postgres dbname=%s" % (self.sockdir, self.port,
                                                             self.dbname)

    # -- lifecycle --------------------------------------------------------
    def init(self):
        self._cmd("initdb", "-D", self.data, "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-locale", "--no-sync", timeout=120)
        with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
            f.write("\nlisten_addresses = '127.0.0.1'\nport = %d\n"
                    "unix_socket_directories = '%s'\nfsync = off\n"
                    "synchronous_commit = off\nfull_page_writes = off\n"
                    "max_connections = 200\nshared_buffers = 16MB\n"
                    % (self.port, self.sockdir))
        return self

    def start(self):
        if self.user and not os.path.exists(self.logfile):
            open(self.logfile, "a").close()
            os.chown(self.logfile, self.uid, self.gid)
        for attempt in range(5):
            before = self.log()
            r = self._cmd("pg_ctl", "-D", self.data, "-l", self.logfile, "-w", "-t", "60",
                          "start", timeout=90, check=False)
            if r.returncode == 0:
                self.running = self._started = True
                return self
            new = self.log()[len(before):] if self.log().startswith(before) else self.log()
            # the port was free when picked; another process may have bound
            # it since: a new one for the first start (a restart keeps its
            # port, clients know it)
            if self._started or attempt == 4 or "Address already in use" not in new:
                raise RuntimeError("pg_ctl start failed (%d):\n%s\n%s\n%s" % (
                    r.returncode, r.stdout, r.stderr, self.log()))
            self.port = free_port()
            with open(os.path.join(self.data, "postgresql.conf"), "a") as f:
                f.write("port = %d\n" % self.port)     # the last setting wins

    _started = False

    def createdb(self):
        self._cmd("createdb", "-h", self.sockdir, "-p", str(self.port), "-U",
                  "postgres", self.dbname)
        return self

    def stop(self, mode="fast"):
        if not self.running:
            return
        r = self._cmd("pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "30", "stop",
                      timeout=60, check=False)
        if r.returncode != 0:
            self._kill()
        self.running = False

    def _kill(self):
        try:
            with open(os.path.join(self.data, "postmaster.pid")) as f:
                pid = int(f.readline())
            os.kill(pid, signal.SIGKILL)
        except (OSError, ValueError):
            return
        # wait until it is gone (or a zombie nobody reaped yet: pg_ctl
        # started it detached, it is not our child)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with open("/proc/%d/stat" % pid) as f:
                    if f.read().rsplit(")", 1)[-1].split()[0] == "Z":
                        return
            except OSError:
                return
            time.sleep(0.02)

    def restart(self, mode="fast"):
        self.stop(mode)
        self.start()

    def destroy(self):
        try:
            self.stop("immediate")
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    @classmethod
    def create(cls, **kw):
        c = cls(**kw)
        try:
            c.init().start().createdb()
        except BaseException:
            c.destroy()
            raise
        return c

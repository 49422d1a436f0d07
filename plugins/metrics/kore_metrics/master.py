"""The master side: the aggregate of the workers' snapshots, worker starts
and respawns by reason, the CPU critical point and ``--max-worker-rss``, and
the ``/metrics`` listener (which also serves the status page, status.py).

The listener is a small gevent WSGI server run in the master with
``arbiter.spawn``: the totals live in the master, so a scrape never depends
on which worker the kernel hands the connection to, and it keeps answering
while every worker is being replaced.  A scrape first asks the workers for
fresh snapshots (one IPC round trip, at most ``Master.PULL_WAIT``) and waits
for each one's answer to that numbered request, so a counter is exact the
moment the requests were answered.
"""

import os
import socket
import time

import gevent
from gevent.event import Event
from kore import ipc, runtime
from kore.log import error, notice, warning

from . import exposition, procstat
from .store import Aggregate, Samples
from .worker import MSG_ACK, MSG_CLUSTER, MSG_FINAL, MSG_HELLO, MSG_PULL, MSG_RECYCLE, MSG_SNAPSHOT

STARTS = "kore_worker_starts_total"
RESPAWNS = "kore_worker_respawns_total"
WORKERS = "kore_workers"
SCRAPE = "kore_metrics_scrape_duration_seconds"
CPU = "kore_worker_cpu_percent"
RSS = "kore_worker_resident_memory_bytes"


class Master:
    #: seconds a scrape waits for the workers' answers (a worker busy with a
    #: long CPU-bound handler answers after it)
    PULL_WAIT = 1.0

    def __init__(self, arbiter):
        self.arbiter = arbiter
        self.agg = Aggregate()
        self.own = s = Samples()
        s.family(STARTS, "counter", "Worker processes started")
        s.family(RESPAWNS, "counter", "Workers replaced, by reason (crash, "
                 "max_requests, max_worker_rss, cpu_critical, reload)")
        s.family(WORKERS, "gauge", "Worker processes by state")
        s.family(SCRAPE, "gauge", "Seconds the previous scrape took")
        s.family(CPU, "gauge", "CPU percent of each worker over the last sample")
        s.family(RSS, "gauge", "Resident memory of each worker")
        self.known = {}         # pid -> worker id
        self.reasons = {}       # pid -> reason it announced or was given
        self.all_ready = None
        self.fresh = Event()
        self.pulls = 0          # snapshot requests sent (MSG_PULL's number)
        self.answered = {}      # pid -> the last request number it answered
        self.stat = procstat.Sampler()

    # -- messages ---------------------------------------------------------------

    def message(self, msg):
        if msg.kind in (MSG_SNAPSHOT, MSG_FINAL):
            head, _, body = msg.payload.partition(b"\n")
            try:
                pid, _, pull = head.partition(b" ")
                pid = int(pid)
                if pid in self.known or pid in self.arbiter.procs:
                    self.agg.update(pid, body.decode("utf-8"))
                    if pull:
                        self.answered[pid] = max(self.answered.get(pid, 0), int(pull))
            except (ValueError, KeyError) as exc:
                warning("bad metrics snapshot from worker %s: %s" % (msg.src, exc))
            self.fresh.set()
            wp = self.arbiter.procs.get(pid) if msg.kind == MSG_FINAL else None
            if wp is not None:      # by pid: a retired worker has no slot id
                try:
                    wp.channel.send(ipc.Message(MSG_ACK, b"", wp.id))
                except ipc.ChannelClosed:
                    pass
            return True
        if msg.kind == MSG_HELLO:
            # a worker that just started: tell it now (and again each second)
            self.arbiter.route(ipc.Message(MSG_CLUSTER, b"1" if self._all_ready() else b"0",
                                           msg.src))
            return True
        if msg.kind == MSG_RECYCLE:
            pid, _, reason = msg.payload.decode("utf-8", "replace").partition(" ")
            try:
                self.reasons.setdefault(int(pid), reason or "recycle")
            except ValueError:
                pass
            return True
        return None

    # -- supervision ------------------------------------------------------------

    def watch(self):
        n = 0
        while True:
            try:
                self.check()
                n += 1
                if n % 10 == 0:
                    self.broadcast()        # a worker never stays misinformed
            except Exception as exc:
                error("metrics watcher: %s: %s" % (type(exc).__name__, exc))
            gevent.sleep(0.1)

    def _all_ready(self):
        arb = self.arbiter
        ready = sum(1 for wp in arb.procs.values() if wp.ready)
        return (not arb.stopping and ready >= arb.num_workers
                and all(wp.ready for wp in arb.slots.values()))

    def check(self):
        arb = self.arbiter
        procs = arb.procs
        for pid, wp in list(procs.items()):
            if pid not in self.known:
                self.known[pid] = wp.id
                self.own.inc(STARTS)
        for pid in [p for p in self.known if p not in procs]:
            del self.known[pid]
            reason = self.reasons.pop(pid, None)
            if reason is None:
                if arb.stopping:
                    reason = None
                elif arb.reloading is not None:
                    reason = "reload"
                else:
                    reason = "crash"
            if reason is not None and not arb.stopping:
                self.own.inc(RESPAWNS, (("reason", reason),))
            self.agg.forget(pid)
            self.answered.pop(pid, None)
            self.stat.forget(pid)
        ready = sum(1 for wp in procs.values() if wp.ready)
        self.own.set(WORKERS, (("state", "ready"),), ready)
        self.own.set(WORKERS, (("state", "starting"),), len(procs) - ready)
        all_ready = self._all_ready()
        if all_ready != self.all_ready:
            self.all_ready = all_ready
            self.broadcast()

    def broadcast(self):
        self.arbiter.route(ipc.Message(MSG_CLUSTER, b"1" if self.all_ready else b"0",
                                       ipc.ALL_WORKERS))

    # -- per-worker resource limits ---------------------------------------------

    def sample_loop(self, rss_mib, cpu):
        interval = cpu.interval if cpu else 2.0
        over = {}
        while True:
            gevent.sleep(interval)
            for pid, wp in list(self.arbiter.procs.items()):
                if not wp.ready or wp.retiring or pid in self.reasons:
                    continue
                pct, rss = self.stat.sample(pid)
                if pct is None:
                    continue
                labels = (("worker", str(wp.id)),)
                self.own.set(CPU, labels, round(pct, 1))
                self.own.set(RSS, labels, rss)
                if rss_mib and rss > rss_mib * 1048576:
                    self.replace(wp, "max_worker_rss", "resident memory %d MiB > %d MiB"
                                 % (rss // 1048576, rss_mib))
                    continue
                if cpu and cpu.cpu_percent:
                    n = over.get(pid, 0) + 1 if pct > cpu.cpu_percent else 0
                    over[pid] = n
                    if n >= cpu.continuous:
                        self.replace(wp, "cpu_critical", "CPU %.0f%% > %.0f%% for %d "
                                     "samples" % (pct, cpu.cpu_percent, n))
            for pid in [p for p in over if p not in self.arbiter.procs]:
                del over[pid]

    def replace(self, wp, reason, detail):
        """Stop worker ``wp`` gracefully (SIGTERM: in-flight requests finish);
        the arbiter starts a new one in its slot."""
        self.reasons[wp.pid] = reason
        notice("worker %d (pid %d) is overloading, replacing it: %s"
               % (wp.id, wp.pid, detail))
        try:
            os.kill(wp.pid, 15)
        except ProcessLookupError:
            pass

    # -- scrape -----------------------------------------------------------------

    def scrape(self):
        t0 = time.monotonic()
        self.refresh()
        text = exposition.render(self.agg.families, self.agg.total(self.own))
        self.own.set(SCRAPE, (), round(time.monotonic() - t0, 6))
        return text

    def refresh(self):
        """Ask every ready worker for a fresh snapshot and wait for each
        one's answer to this request (at most ``PULL_WAIT`` seconds; a
        worker that does not answer in time is counted as of its last
        snapshot).  Requests a worker finished before it read the request
        are in its answer."""
        t0 = time.monotonic()
        procs = [pid for pid, wp in self.arbiter.procs.items() if wp.ready]
        if procs:
            self.pulls += 1
            n = self.pulls
            self.arbiter.route(ipc.Message(MSG_PULL, b"%d" % n, ipc.ALL_WORKERS))
            deadline = t0 + self.PULL_WAIT
            while True:
                if all(self.answered.get(p, 0) >= n or p not in self.arbiter.procs
                       for p in procs):
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.fresh.clear()
                self.fresh.wait(left)
        self.check()
        # numbers of the server as a whole (kore-plugin-smtpda's spool)
        runtime.notify("kore_metrics_collect_master",
                       where="kore_metrics_collect_master hook", samples=self.own)


def wsgi_app(master, status_path="", status_nets=()):
    def app(environ, start_response):
        path = environ.get("PATH_INFO", "")
        if status_path and path == status_path:
            from . import status
            return status.answer(master, environ, start_response, status_nets)
        if path != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: /metrics is the only path here\n"]
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed", [("Allow", "GET, HEAD")])
            return [b""]
        body = master.scrape().encode("utf-8")
        start_response("200 OK", [("Content-Type", exposition.CONTENT_TYPE),
                                  ("Content-Length", str(len(body)))])
        return [body]
    return app


def bind_socket(address):
    """A listening socket for ``--metrics-bind`` (HOST:PORT, [v6]:PORT)."""
    from kore.config import ConfigError
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError("metrics_bind: '%s' is not HOST:PORT (e.g. 127.0.0.1:9100)"
                          % address)
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
    except OSError as exc:
        sock.close()
        raise ConfigError("metrics_bind: cannot listen on %s: %s" % (address, exc.strerror))
    sock.listen(128)
    return sock


SCRAPES = {}        # client socket -> greenlet of each scrape in progress


def close_inherited():
    """In a worker just forked during a scrape: the scrape's greenlet came
    along (pywsgi's handlers are not arbiter services) and would answer on
    the master's connection too.  Point the inherited descriptor at
    /dev/null (a plain close could let the number be reused by another file)
    and kill the greenlet."""
    if not SCRAPES:
        return
    null = os.open(os.devnull, os.O_RDWR)
    try:
        for s, g in list(SCRAPES.items()):
            try:
                os.dup2(null, s.fileno())
            except (OSError, ValueError):
                pass
            g.kill(block=False)
    finally:
        os.close(null)
    SCRAPES.clear()


def serve(master, sock):
    from gevent.pywsgi import WSGIServer

    class Server(WSGIServer):
        def handle(self, client, address):
            SCRAPES[client] = gevent.getcurrent()
            try:
                super().handle(client, address)
            finally:
                SCRAPES.pop(client, None)

    from . import status
    spath = runtime.option("status_path")
    server = Server(sock, wsgi_app(master, spath, status.options_nets()), log=None,
                    error_log=None)
    # the bound address: a port-0 metrics_bind logs the port the kernel chose
    name = sock.getsockname()
    where = "%s:%d" % ("[%s]" % name[0] if sock.family == socket.AF_INET6 else name[0], name[1])
    notice("metrics on http://%s/metrics" % where)
    if spath:
        notice("status page on http://%s%s" % (where, spath))
    server.serve_forever()

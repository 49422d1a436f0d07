"""The delivery agent: its own process, started and supervised by the master.

It reads its settings (servers with their passwords) as one JSON line on
stdin, takes an exclusive lock on the spool (one agent per spool), then
delivers what is in ``incoming/`` and ``deferred/`` with up to
``smtpda_concurrency`` sessions at a time.  A message's file is only removed
once the server accepted the message (250 after DATA); an agent killed at any
point leaves it in the spool, and the next agent delivers it again (at least
once, same Message-ID).  Deferred messages are retried after
``backoff_min * 2**(attempts-1)`` seconds, at most ``backoff_max``.

It exits on TERM (in-flight sessions get ``STOP_GRACE`` seconds) and when the
master goes away (stdin reaches EOF).
"""

import errno
import fcntl
import heapq
import json
import os
import signal
import socket
import sys
import time

import gevent
from gevent.event import Event
from gevent.pool import Group

from kore.log import LOG, error, info, notice, warning

from . import delivery, spool, status

STOP_GRACE = 10.0
STALE_TMP = 3600.0              # tmp/ files older than this are from dead writers
STATUS_INTERVAL = 0.5           # status.json is rewritten this often when it changed


class Agent:
    def __init__(self, cfg):
        self.cfg = cfg
        self.root = cfg["spool"]
        self.servers = cfg["servers"]
        self.heap = []                  # (due, seq, name)
        self.known = {}                 # name -> (queue directory, due time)
        self.inflight = set()
        self.seq = 0
        self.wake = Event()
        self.nudged = False             # send() said a file arrived
        self.stopping = False
        self.idle = delivery.SessionCache()
        self.pool = Group()
        self.concurrency = cfg["smtpda_concurrency"]
        self.ctx = delivery.tls_context(cfg.get("smtpda_cafile") or "",
                                        cfg.get("smtpda_tls_verify", True))
        self.helo = cfg.get("smtpda_helo_name") or delivery.getfqdn()
        self.status = status.Status(self.root)
        self.lockf = None
        self.sock = None

    # -- start --------------------------------------------------------------------

    def lock(self):
        path = os.path.join(self.root, "agent.lock")
        self.lockf = os.fdopen(os.open(path, os.O_RDWR | os.O_CREAT, spool.FILE_MODE), "a+")
        waited = False
        while not self.stopping:
            try:
                fcntl.flock(self.lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            if not waited:
                warning("another delivery agent holds %s; waiting for it to exit" % path)
                waited = True
            gevent.sleep(0.5)
        return False

    def listen(self):
        path = os.path.join(self.root, "agent.sock")
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        s.bind(path)
        os.chmod(path, 0o600)
        self.sock = s
        gevent.spawn(self._nudges)

    def _nudges(self):
        while True:
            try:
                self.sock.recv(64)
            except OSError:
                return
            self.nudged = True
            self.wake.set()

    def scan(self, first=False):
        """Queue files not yet known; on the first scan resolve duplicates
        left by a crash between writing a file's new state and removing the
        old one (the later queue wins)."""
        now = time.time()
        present = {}
        for queue in ("incoming", "deferred", "undeliverable"):
            for name in spool.names(self.root, queue):
                if first and name in present:
                    try:
                        os.unlink(os.path.join(self.root, present[name], name))
                    except FileNotFoundError:
                        pass
                present[name] = queue
        for name, queue in present.items():
            if queue == "undeliverable" or name in self.known:
                continue
            due = now
            if queue == "deferred":
                try:
                    env = spool.read_envelope(os.path.join(self.root, queue, name))
                    due = float(env.get("next_attempt") or now)
                except (spool.CorruptFile, ValueError, TypeError):
                    due = now           # delivery will set it aside
                except FileNotFoundError:
                    continue
            self._schedule(name, queue, due)
        for name in [n for n, q in self.known.items()
                     if n not in present and n not in self.inflight]:
            del self.known[name]        # removed by hand

    def _schedule(self, name, queue, due):
        self.known[name] = (queue, due)
        self.seq += 1
        heapq.heappush(self.heap, (due, self.seq, name))
        self.wake.set()

    # -- main loop ---------------------------------------------------------------

    def run(self):
        if not self.lock():
            return 0
        self.status.load()
        self.listen()
        self.scan(first=True)
        self._check_flush()
        self.maintain()
        self._update_status(write=True)
        notice("smtpda agent %d delivering from %s (%d queued, %d at a time)"
               % (os.getpid(), self.root, len(self.known), self.cfg["smtpda_concurrency"]))
        gevent.spawn(self._housekeeping)
        poll = self.cfg["smtpda_poll_interval"]
        last_scan = time.monotonic()
        while not self.stopping:
            now = time.time()
            while self.heap and self.heap[0][0] <= now and self._free():
                due, _, name = heapq.heappop(self.heap)
                entry = self.known.get(name)
                if entry is None or entry[1] != due or name in self.inflight:
                    continue            # stale heap entry
                queue = entry[0]
                self.inflight.add(name)
                self.pool.spawn(self._deliver_guarded, name, queue)
            self._update_status()
            timeout = poll
            if self.heap and self._free():
                timeout = max(0.0, min(poll, self.heap[0][0] - time.time()))
            self.wake.wait(timeout)
            self.wake.clear()
            self._check_flush()
            if time.monotonic() - last_scan >= poll:
                self.nudged = False
                self.scan()
                last_scan = time.monotonic()
            elif self.nudged:
                self.nudged = False
                self._scan_incoming()
        return self.shutdown()

    def _check_flush(self):
        """``korectl smtpda flush`` leaves a ``flush`` file: every deferred
        message is due now (Postfix's ``postqueue -f``)."""
        path = os.path.join(self.root, "flush")
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        now = time.time()
        n = 0
        for name, (queue, due) in list(self.known.items()):
            if queue == "deferred" and name not in self.inflight and due > now:
                self._schedule(name, queue, now)
                n += 1
        notice("flush: %d deferred message%s due now" % (n, "" if n == 1 else "s"))

    def _free(self):
        # inflight is updated by the delivery itself, before it wakes this
        # loop (a Pool's count only drops once the greenlet has ended)
        return len(self.inflight) < self.concurrency

    def _scan_incoming(self):
        now = time.time()
        for name in spool.names(self.root, "incoming"):
            if name not in self.known:
                self._schedule(name, "incoming", now)

    def _housekeeping(self):
        while not self.stopping:
            gevent.sleep(STATUS_INTERVAL)
            self.maintain()
            self.idle.close()
            self._update_status(write=True)

    def maintain(self):
        """Remove undeliverable mail older than keep_days and stale tmp files."""
        now = time.time()
        keep = self.cfg["smtpda_keep_days"] * 86400.0
        for queue, age in (("undeliverable", keep), ("tmp", STALE_TMP)):
            d = os.path.join(self.root, queue)
            try:
                entries = list(os.scandir(d))
            except FileNotFoundError:
                continue
            for e in entries:
                try:
                    if e.stat().st_mtime + age < now:
                        os.unlink(e.path)
                        if queue == "undeliverable":
                            info("removed undeliverable %s (older than %g days)"
                                 % (e.name, self.cfg["smtpda_keep_days"]))
                except FileNotFoundError:
                    pass

    def _update_status(self, write=False):
        st = self.status
        st.gauges["active"] = len(self.inflight)
        st.gauges["queued"] = len(self.known)
        st.gauges["next_attempt"] = self.heap[0][0] if self.heap else None
        if write:
            st.save()

    # -- one message -------------------------------------------------------------

    def _deliver_guarded(self, name, queue):
        try:
            self.deliver(name, queue)
        except Exception as exc:        # never let one message stall the queue
            reason = "internal error: %s: %s" % (type(exc).__name__, exc)
            error("smtpda: delivering %s failed: %s" % (name, reason))
            self._internal_error(name, queue, reason)
        finally:
            self.inflight.discard(name)
            self.wake.set()

    def _internal_error(self, name, queue, reason):
        """An unexpected failure counts as a deferred attempt, so max_retry
        and the lifetime still end it (it is not retried forever)."""
        try:
            env, message = spool.read(os.path.join(self.root, queue, name))
            self._failed(name, queue, env, message, {r: reason for r in env["rcpt"]}, {})
        except FileNotFoundError:
            self.known.pop(name, None)
        except Exception as exc:
            error("smtpda: cannot record the failure of %s: %s: %s"
                  % (name, type(exc).__name__, exc))
            self._requeue(name, queue, time.time() + self.cfg["smtpda_backoff_min"])

    def _requeue(self, name, queue, due):
        if os.path.exists(os.path.join(self.root, queue, name)):
            self._schedule(name, queue, due)
        else:
            self.known.pop(name, None)

    def deliver(self, name, queue):
        path = os.path.join(self.root, queue, name)
        try:
            env, message = spool.read(path)
        except FileNotFoundError:
            self.known.pop(name, None)
            return
        except spool.CorruptFile as exc:
            self._corrupt(name, path, exc)
            return
        if not env["rcpt"]:
            self._corrupt(name, path, "no recipient left to deliver to")
            return
        server = self._server(env["server"])
        if server is None:
            self._failed(name, queue, env, message, {r: "server %r is not declared by "
                                                     "the app" % (env["server"],)
                                                     for r in env["rcpt"]}, {})
            return
        try:
            delivered, deferred, bounced = self._transaction(server, env, message)
        except delivery.SessionError as exc:
            delivered, deferred, bounced = [], {r: exc.text for r in env["rcpt"]}, {}
        if delivered:
            info("delivered %s to %s via %s:%d" % (env["message_id"], ", ".join(delivered),
                                                  server["host"], server["port"]))
        if not deferred and not bounced:
            os.unlink(path)
            self.known.pop(name, None)
            self.status.add("delivered")
            return
        if delivered:
            self.status.add("delivered")
        self._failed(name, queue, env, message, deferred, bounced)

    def _corrupt(self, name, path, why):
        spool.move(self.root, path, "corrupt")
        self.known.pop(name, None)
        self.status.add("corrupt")
        error("smtpda: corrupt spool file %s moved to corrupt/: %s" % (name, why))

    def _server(self, ref):
        if isinstance(ref, str):
            return self.servers.get(ref)
        if isinstance(ref, dict) and isinstance(ref.get("host"), str) and \
                isinstance(ref.get("port"), int):
            return {"name": "%s:%d" % (ref["host"], ref["port"]), "host": ref["host"],
                    "port": ref["port"], "ssl": bool(ref.get("ssl")), "user": None}
        return None

    def _transaction(self, server, env, message):
        key = delivery.server_key(server)
        sess = self.idle.take(key)
        reused = sess is not None
        if sess is None:
            sess = delivery.Session(server, self.ctx, self.cfg["smtpda_timeout"], self.helo)
        try:
            result = sess.send(env["sender"], env["rcpt"], message)
        except delivery.SessionError:
            sess.close()
            if not reused:
                raise
            # a cached connection the server had closed: one fresh try
            sess = delivery.Session(server, self.ctx, self.cfg["smtpda_timeout"], self.helo)
            try:
                result = sess.send(env["sender"], env["rcpt"], message)
            except delivery.SessionError:
                sess.close()
                raise
            except BaseException:
                sess.close(quit=False)
                raise
        except BaseException:
            sess.close(quit=False)      # in an unknown state: never reused
            raise
        return self._settle(key, sess, result)

    def _settle(self, key, sess, result):
        """Keep the session for the next message (reset after a refusal)."""
        if result[1] or result[2]:
            if not sess.reset():
                sess.close()
                return result
        self.idle.give(key, sess, self.stopping)
        return result

    def _failed(self, name, queue, env, message, deferred, bounced):
        """Record a (partly) failed attempt: defer what is retryable, move the
        message to undeliverable when nothing is left to retry."""
        now = time.time()
        cfg = self.cfg
        env = dict(env)
        env["attempts"] = env.get("attempts", 0) + 1
        errors = list(env.get("errors") or [])
        errors.append({"time": now, "replies": dict(deferred, **bounced)})
        env["errors"] = errors[-5:]
        env["bounced"] = list(env.get("bounced") or []) + [
            {"rcpt": r, "reply": reply} for r, reply in bounced.items()]
        for r, reply in bounced.items():
            warning("undeliverable %s to %s: %s" % (env["message_id"], r, reply))
        expired = None
        if deferred:
            if env["attempts"] >= cfg["smtpda_max_retry"]:
                expired = "max_retry (%d) reached" % cfg["smtpda_max_retry"]
            elif now - env["created"] > cfg["smtpda_max_lifetime"]:
                expired = "in the spool longer than %g s" % cfg["smtpda_max_lifetime"]
        if deferred and not expired:
            delay = min(cfg["smtpda_backoff_max"],
                        cfg["smtpda_backoff_min"] * 2 ** (env["attempts"] - 1))
            env["rcpt"] = list(deferred)
            env["next_attempt"] = now + delay
            target = "deferred"
            self.status.add("deferred")
            first = next(iter(deferred.values()))
            warning("deferred %s (attempt %d, next in %.0f s): %s"
                    % (env["message_id"], env["attempts"], delay, first))
        else:
            if deferred:
                env["bounced"] += [{"rcpt": r, "reply": "%s; last reply: %s" % (expired, reply)}
                                   for r, reply in deferred.items()]
                warning("undeliverable %s: %s; last reply: %s"
                        % (env["message_id"], expired, next(iter(deferred.values()))))
            env["rcpt"] = []
            env["next_attempt"] = None
            env["undeliverable_at"] = now
            target = "undeliverable"
            self.status.add("failed")
        spool.write_atomic(self.root, target, name, spool.encode(env, message))
        if target != queue:
            try:
                os.unlink(os.path.join(self.root, queue, name))
            except FileNotFoundError:
                pass
        if target == "deferred":
            self._schedule(name, "deferred", env["next_attempt"])
        else:
            self.known.pop(name, None)

    # -- stop ----------------------------------------------------------------------

    def stop(self):
        self.stopping = True
        self.wake.set()

    def shutdown(self):
        if self.pool.join(timeout=STOP_GRACE) is False or len(self.pool):
            warning("smtpda agent: %d deliveries still running, leaving them in the spool"
                    % len(self.pool))
            self.pool.kill(block=True, timeout=2)
        self.idle.close(everything=True)
        self.inflight.clear()
        self._update_status(write=True)
        try:
            os.unlink(os.path.join(self.root, "agent.sock"))
        except OSError:
            pass
        notice("smtpda agent %d stopped" % os.getpid())
        return 0


def _watch_parent(agent):
    """stdin is a pipe the master holds open: EOF means it is gone."""
    from gevent.os import nb_read
    os.set_blocking(0, False)
    while True:
        try:
            data = nb_read(0, 4096)
        except OSError:
            data = b""
        if not data:
            if not agent.stopping:
                warning("smtpda agent: the master went away, stopping")
                agent.stop()
            return


def main():
    line = b""
    while not line.endswith(b"\n"):
        chunk = os.read(0, 65536)
        if not chunk:
            sys.stderr.write("smtpda agent: no configuration on stdin\n")
            return 2
        line += chunk
    cfg = json.loads(line.decode("utf-8"))
    LOG.role = "smtpda"
    # the master's log: the same file, or syslog in production
    LOG.configure(level=cfg.get("log_level") or "info", path=cfg.get("logfile") or "",
                  use_syslog=cfg.get("deployment") == "production")
    try:
        from setproctitle import setproctitle
        setproctitle("kore [smtpda]")
    except ImportError:
        pass
    agent = Agent(cfg)              # reads the CA files
    runas = cfg.get("runas")
    if runas and os.geteuid() == 0:
        # load the resolver and the idna codec (imported on first use)
        try:
            socket.getaddrinfo("localhost", 25, type=socket.SOCK_STREAM)
        except OSError:
            pass
        "localhost".encode("idna")
        # everything is imported by now: runas may not read the library
        from kore import privdrop
        privdrop.drop("", runas, False)
    gevent.signal_handler(signal.SIGTERM, agent.stop)
    gevent.signal_handler(signal.SIGINT, agent.stop)
    gevent.signal_handler(signal.SIGUSR1, LOG.reopen)
    gevent.spawn(_watch_parent, agent)
    return agent.run()

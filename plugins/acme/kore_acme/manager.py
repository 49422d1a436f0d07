"""The master's side: one greenlet per ``acme=True`` host orders and renews.

Only the master holds the account key and the domain keys (files 0600 in
``acme_root``, mode 0700) and talks to the CA, so there is exactly one order
per host whatever the number of workers.  Orders run one at a time.

Each host's greenlet: load the stored certificate; if it is still before its
renewal time, log when that is and sleep until then; otherwise order a new
certificate (a fresh key), save it, load it into the master's own contexts
(workers forked later inherit it) and send chain and key to every worker
(``acme.cert``).  A failed order keeps the current certificate (or the
placeholder) in service and is retried after ``acme_retry_min`` seconds,
doubling up to ``acme_retry_max``, or after the ``Retry-After`` the CA
asked for; the log says when.

Challenges are published to every worker before the CA is told to validate
(it connects at once): the master waits for each live worker's
``acme.ack``.
"""

import datetime
import itertools
import json
import time

from gevent.event import Event
from gevent.lock import Semaphore

from kore import ipc
from kore.log import error, info, notice, warning

from . import certs, memload
from .client import Account, Failure
from .settings import DOMAINS
from .store import Store

ACK_TIMEOUT = 10.0
MAX_SLEEP = 3600.0          # re-check at least hourly (clock changes)

_LOG = {"info": info, "notice": notice, "warning": warning, "error": error}


def _log(level, text):
    _LOG[level]("acme: " + text)


def _utc(dt):
    return dt.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def current(store, host):
    """(CertInfo, chain, key) of a stored certificate that fits, else None."""
    chain, key = store.chain(host), store.domain_key(host)
    if not chain or not key:
        return None
    try:
        ci = certs.CertInfo(chain)
        if not ci.matches_key(key) or not ci.covers(host):
            return None
    except ValueError:
        return None
    return ci, chain, key


class Manager:
    def __init__(self, arbiter, settings):
        self.arbiter = arbiter
        self.s = settings
        self.store = Store(settings.root)
        self.account = Account(settings.provider, settings.verify, settings.email,
                               self.store, _log)
        self.lock = Semaphore()
        self.loops = {}
        self.wakeups = {}
        self.items = {}             # id -> (kind, payload dict)
        self.acks = {}              # id -> set of worker ids
        self.ack_event = Event()
        self._ids = itertools.count(1)

    def reconfigure(self, settings):
        """After a reload: new options (a new account when the CA changed)."""
        old, self.s = self.s, settings
        if (old.provider, old.verify, old.email, old.root) != \
                (settings.provider, settings.verify, settings.email, settings.root):
            self.store = Store(settings.root)
            self.store.ensure()
            self.account = Account(settings.provider, settings.verify, settings.email,
                                   self.store, _log)
        self.sync()

    # -- greenlets --------------------------------------------------------------

    def start(self):
        self.store.ensure()
        self.sync()

    def sync(self):
        """Start a greenlet for each host, stop those of hosts gone (reload)."""
        for host in list(self.loops):
            if host not in DOMAINS:
                self.loops.pop(host).kill(block=False)
                self.wakeups.pop(host, None)
        for host in DOMAINS:
            if host not in self.loops:
                self.wakeups[host] = Event()
                self.loops[host] = self.arbiter.spawn(self._run, host)

    def renew(self, host=None):
        """``kore.acme_renew()``: renew now (every host, or ``host``)."""
        hosts = [host.lower()] if host else list(self.wakeups)
        for h in hosts:
            ev = self.wakeups.get(h)
            if ev is None:
                raise ValueError("no acme=True domain '%s'" % h)
            ev.set()

    def _sleep(self, host, seconds):
        """Sleep up to ``seconds``; True when woken by acme_renew."""
        ev = self.wakeups[host]
        deadline = time.time() + seconds
        while True:
            left = deadline - time.time()
            if left <= 0:
                return False
            if ev.wait(min(left, MAX_SLEEP)):
                ev.clear()
                return True

    def _run(self, host):
        failures = 0
        forced = False
        while True:
            have = current(self.store, host)
            if have is not None and not forced:
                ci = have[0]
                when = certs.renewal_time(ci.not_before, ci.not_after, self.s.renew_before)
                wait = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
                if wait > 0:
                    _log("info", "certificate for %s (serial %x) valid until %s; renewal "
                         "at %s" % (host, ci.serial, _utc(ci.not_after), _utc(when)))
                    forced = self._sleep(host, wait)
                    continue
            forced = False
            try:
                with self.lock:
                    self._issue(host, renewal=have is not None)
                failures = 0
                continue
            except Failure as exc:
                failures += 1
                delay, why = exc.retry_after, str(exc)
                if delay is None:
                    delay = self.s.backoff(failures)
                else:
                    why += " (the CA asks to retry after %d s)" % delay
            except Exception as exc:     # a bug or the file system: keep going
                failures += 1
                delay, why = self.s.backoff(failures), "%s: %s" % (type(exc).__name__, exc)
            serving = ("the current certificate (valid until %s)" % _utc(have[0].not_after)
                       if have is not None else "the self-signed placeholder")
            at = datetime.datetime.now(datetime.timezone.utc) + \
                datetime.timedelta(seconds=delay)
            _log("warning", "order for %s failed (attempt %d): %s; still serving %s; "
                 "next attempt in %d s (at %s)" % (host, failures, why, serving, delay,
                                                    _utc(at)))
            forced = self._sleep(host, delay)

    def _issue(self, host, renewal):
        _log("notice", "%s certificate for %s from %s (%s)"
             % ("renewing the" if renewal else "ordering a", host, self.s.provider,
                self.s.challenge))
        key = certs.new_domain_key()
        chain = self.account.order(host, key, self.s.challenge, self)
        ci = certs.CertInfo(chain)
        if not ci.matches_key(key):
            raise Failure("the CA's certificate does not match the key we sent")
        self.store.save_domain_key(host, key)
        self.store.save_chain(host, chain)
        self.install(host, chain, key)
        _log("notice", "certificate for %s issued: serial %x, valid until %s, "
             "issuer %s" % (host, ci.serial, _utc(ci.not_after),
                            ci.leaf.issuer.rfc4514_string()))

    def install(self, host, chain, key):
        self._broadcast("acme.cert", {"host": host, "chain": chain.decode("ascii"),
                                      "key": key.decode("ascii")})
        # the master's own contexts: workers forked from now on inherit them
        for domain, ctx in DOMAINS.get(host, ()):
            try:
                memload.load(ctx, chain, key)
            except Exception as exc:
                _log("error", "cannot load the new certificate for %s in the master "
                     "(workers forked later serve the previous one until the next "
                     "reload): %s" % (host, exc))

    # -- publishing challenges (the Account calls these) -------------------------

    def _broadcast(self, kind, data, dst=ipc.ALL_WORKERS):
        self.arbiter.route(ipc.Message(kind, json.dumps(data).encode("utf-8"), dst=dst))

    def _live_workers(self):
        slots = getattr(self.arbiter, "slots", {}) or {}
        return {wid for wid, wp in slots.items() if getattr(wp, "pid", None)}

    def _publish(self, kind, data):
        item_id = "%d-%d" % (int(time.time()), next(self._ids))
        data["id"] = item_id
        self.items[item_id] = (kind, data)
        self.acks[item_id] = set()
        self._broadcast(kind, data)
        deadline = time.monotonic() + ACK_TIMEOUT
        while not self._live_workers() <= self.acks[item_id]:
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sorted(self._live_workers() - self.acks[item_id])
                _log("warning", "workers %s did not confirm the challenge in %d s: "
                     "answering it anyway" % (missing, ACK_TIMEOUT))
                break
            self.ack_event.clear()
            self.ack_event.wait(min(left, 0.5))
        return item_id

    def publish_alpn(self, name, cert_pem, key_pem):
        return self._publish("acme.alpn", {"name": name, "cert": cert_pem.decode("ascii"),
                                           "key": key_pem.decode("ascii")})

    def publish_http(self, token, value):
        return self._publish("acme.http", {"token": token, "value": value})

    def withdraw(self, item_id):
        self.items.pop(item_id, None)
        self.acks.pop(item_id, None)
        self._broadcast("acme.withdraw", {"id": item_id})

    # -- messages from workers ----------------------------------------------------

    def on_message(self, msg):
        kind = msg.kind
        if kind == "acme.ack":
            item_id = json.loads(msg.payload.decode("utf-8"))["id"]
            if item_id in self.acks and msg.src is not None:
                self.acks[item_id].add(msg.src)
                self.ack_event.set()
        elif kind == "acme.hello":
            for kind_, data in list(self.items.values()):
                self._broadcast(kind_, data, dst=msg.src)
        elif kind == "acme.renew":
            host = msg.payload.decode("utf-8") or None
            try:
                self.renew(host)
            except ValueError as exc:
                _log("warning", "acme_renew: %s" % exc)
        else:
            return None
        return True


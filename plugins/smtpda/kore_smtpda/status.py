"""The agent's counters, kept in ``<spool>/status.json``.

Counters only grow (they survive agent and kore restarts, since they live in
the spool): ``delivered`` messages, ``deferred`` attempts, ``failed``
(messages moved to undeliverable) and ``corrupt`` files set aside.  Gauges are
the current state: ``active`` sessions, ``queued`` messages the agent knows.
``read(spool)`` adds the spool depth counted from the directories, so it
works with the agent stopped; it is what ``korectl smtpda status`` prints and
what ``export`` gives kore-plugin-metrics' ``/metrics``.
"""

import json
import os
import time

from . import spool

COUNTERS = ("delivered", "deferred", "failed", "corrupt")


class Status:
    def __init__(self, root):
        self.root = root
        self.path = os.path.join(root, "status.json")
        self.counters = dict.fromkeys(COUNTERS, 0)
        self.gauges = {"active": 0, "queued": 0, "next_attempt": None}
        self.started = time.time()
        self.dirty = True

    def load(self):
        try:
            with open(self.path) as f:
                old = json.load(f)
            for k in COUNTERS:
                v = old.get("counters", {}).get(k)
                if isinstance(v, int) and v >= 0:
                    self.counters[k] = v
        except (OSError, ValueError, AttributeError):
            pass

    def add(self, counter, n=1):
        self.counters[counter] += n
        self.dirty = True

    def save(self, force=False):
        snap = (dict(self.counters), dict(self.gauges))
        if not force and not self.dirty and snap == getattr(self, "_saved", None):
            return
        self._saved = snap
        doc = {"pid": os.getpid(), "started": self.started, "updated": time.time(),
               "counters": self.counters, "gauges": self.gauges}
        tmp = self.path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, spool.FILE_MODE)
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f)
        os.replace(tmp, self.path)
        self.dirty = False


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def read(root):
    """Everything known about a spool: ``{"spool", "agent", "counters",
    "queue"}``; ``agent`` is None when no agent runs."""
    counts = spool.counts(root)
    doc = {}
    try:
        with open(os.path.join(root, "status.json")) as f:
            doc = json.load(f)
    except (OSError, ValueError):
        pass
    counters = dict.fromkeys(COUNTERS, 0)
    counters.update({k: v for k, v in (doc.get("counters") or {}).items() if k in counters})
    pid = doc.get("pid")
    agent = None
    if isinstance(pid, int) and _alive(pid) and os.path.exists(os.path.join(root, "agent.sock")):
        agent = {"pid": pid, "started": doc.get("started"), "updated": doc.get("updated"),
                 "active": (doc.get("gauges") or {}).get("active", 0),
                 "next_attempt": (doc.get("gauges") or {}).get("next_attempt")}
    return {
        "spool": root,
        "agent": agent,
        "counters": counters,
        "queue": {"depth": counts["incoming"] + counts["deferred"],
                  "incoming": counts["incoming"], "deferred": counts["deferred"],
                  "undeliverable": counts["undeliverable"], "corrupt": counts["corrupt"]},
    }


def entries(root, queues=("incoming", "deferred", "undeliverable", "corrupt")):
    """One dict per spool file (``korectl smtpda list``)."""
    out = []
    for queue in queues:
        for name in sorted(spool.names(root, queue)):
            row = {"queue": queue, "file": name}
            try:
                env = spool.read_envelope(os.path.join(root, queue, name))
            except (OSError, spool.CorruptFile) as exc:
                row["error"] = str(exc)
            else:
                for k in ("message_id", "sender", "rcpt", "attempts", "created",
                          "next_attempt", "bounced"):
                    row[k] = env.get(k)
                errs = env.get("errors") or []
                if errs:
                    row["last_error"] = errs[-1].get("replies")
            out.append(row)
    return out


# (name, kind, help, counter key) of the exported counters
METRICS = (
    ("kore_smtpda_delivered_total", "counter", "Messages the SMTP server accepted",
     "delivered"),
    ("kore_smtpda_deferred_total", "counter", "Delivery attempts deferred (4xx, "
     "connection or TLS failure)", "deferred"),
    ("kore_smtpda_failed_total", "counter", "Messages moved to undeliverable (5xx, "
     "max_retry or lifetime exceeded)", "failed"),
    ("kore_smtpda_corrupt_total", "counter", "Spool files set aside as corrupt", "corrupt"),
)
QUEUE = "kore_smtpda_spool_messages"
DEPTH = "kore_smtpda_spool_depth"
UP = "kore_smtpda_agent_up"
ACTIVE = "kore_smtpda_active_deliveries"


def export(samples, doc):
    """Put ``read()``'s document into a kore-plugin-metrics ``Samples``."""
    for name, kind, help, key in METRICS:
        samples.family(name, kind, help)
        samples.set(name, (), doc["counters"][key])
    samples.family(DEPTH, "gauge", "Messages waiting for delivery (incoming + deferred)")
    samples.set(DEPTH, (), doc["queue"]["depth"])
    samples.family(QUEUE, "gauge", "Spool files by queue")
    for queue in ("incoming", "deferred", "undeliverable", "corrupt"):
        samples.set(QUEUE, (("queue", queue),), doc["queue"][queue])
    agent = doc["agent"]
    samples.family(UP, "gauge", "1 while a delivery agent runs on the spool")
    samples.set(UP, (), 1 if agent else 0)
    samples.family(ACTIVE, "gauge", "Messages being delivered now")
    samples.set(ACTIVE, (), (agent or {}).get("active") or 0)

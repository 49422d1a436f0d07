"""Drain N spooled messages to an aiosmtpd sink; compare with plain smtplib.

    .venv/bin/python bench/smtpda/drain.py [--messages 1000] [--concurrency 4]

Measures, against the test sink (tests/smtpda/smtp_sink.py, its own process,
writing every message to disk):

1. enqueue latency of ``kore.email(...).send()``: in-process for N messages
   (the spool is written while no agent runs), and inside a korectl worker's
   handler for 200 messages (the handler times ``send()``);
2. drain: korectl starts with the N messages spooled; the time from the
   agent's start to the sink holding all N gives messages/s;
3. the same N messages sent by a plain smtplib loop: one connection per
   message (what a handler without an agent would do, and its latency per
   message) and one connection for all of them.
"""

import argparse
import json
import os
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "smtpda"))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import benchlib  # noqa: E402
from smtpda_helpers import SinkProc  # noqa: E402

KORECTL = os.path.join(os.path.dirname(sys.executable), "korectl")
APP = os.path.join(ROOT, "tests", "smtpda", "apps", "mailapp.py")
BODY = ("Hello,\n\nthis is benchmark message {i}.\n" + "Lorem ipsum dolor sit amet. " * 40
        + "\n")


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1))))]


def count_received(sink):
    d = os.path.join(sink.dir, "received")
    return sum(1 for f in os.listdir(d) if f.endswith(".eml"))


def enqueue_in_process(spool, port, n):
    """Spool n messages with the plugin used as a library (no agent runs)."""
    from kore_smtpda import settings
    from kore_smtpda.composer import Composer
    settings.STATE.reset()
    settings.STATE.servers["default"] = settings.make_server("default", "127.0.0.1:%d" % port)
    settings.STATE.spool = spool
    from kore_smtpda import spool as spoolmod
    spoolmod.ensure(spool)
    lat = []
    for i in range(n):
        t = time.perf_counter()
        e = Composer("Benchmark %d" % i, "Bench <bench@example.com>", "rcpt%d@example.com" % i)
        e.add_content(BODY.format(i=i), "text/plain")
        e.send()
        lat.append((time.perf_counter() - t) * 1000)
    return lat


def start_kore(tmp, spool, port, concurrency, http_port):
    env = dict(os.environ, SMTP="127.0.0.1:%d" % port, KORE_SMTPDA_SPOOL=spool,
               KORE_SMTPDA_CONCURRENCY=str(concurrency), KORE_SMTPDA_POLL_INTERVAL="0.5")
    log = open(os.path.join(tmp, "korectl.log"), "wb")
    proc = subprocess.Popen([KORECTL, "run", "--workers", "1", "--bind",
                             "127.0.0.1:%d" % http_port, APP], env=env, stdout=log,
                            stderr=subprocess.STDOUT, cwd=tmp, start_new_session=True)
    return proc, log


def drain(args, tmp, sink):
    spool = os.path.join(tmp, "spool")
    lat = enqueue_in_process(spool, sink.port, args.messages)
    http_port = benchlib.free_port()
    start = time.monotonic()
    proc, log = start_kore(tmp, spool, sink.port, args.concurrency, http_port)
    try:
        deadline = start + args.timeout
        first = None
        while True:
            got = count_received(sink)
            if got and first is None:
                first = time.monotonic()
            if got >= args.messages:
                break
            if time.monotonic() > deadline:
                raise SystemExit("drain timed out: %d of %d delivered" % (got, args.messages))
            time.sleep(0.01)
        end = time.monotonic()
        drained = (end - start, end - first)
        pgid_cpu = benchlib.group_cpu(proc.pid)
        # the agent's own start-up (interpreter, imports) is part of the time;
        # the log says when it began delivering
        with open(os.path.join(tmp, "korectl.log")) as f:
            text = f.read()
        assert benchlib.wait_port(http_port, 10)
        worker_lat = []
        for i in range(200):
            spec = {"to": ["w%d@example.com" % i], "subject": "worker %d" % i,
                    "contents": [[BODY.format(i=i), "text/plain"]]}
            req = urllib.request.Request("http://127.0.0.1:%d/send" % http_port,
                                         data=json.dumps(spec).encode(), method="POST")
            with urllib.request.urlopen(req, timeout=10) as r:
                worker_lat.append(json.loads(r.read())["ms"])
        while count_received(sink) < args.messages + 200:
            if time.monotonic() > deadline + 60:
                break
            time.sleep(0.02)
    finally:
        benchlib.stop_group(proc)
        log.close()
    return lat, worker_lat, drained, pgid_cpu, text


def smtplib_loop(port, n, reuse):
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid
    lat = []
    start = time.monotonic()
    conn = smtplib.SMTP("127.0.0.1", port) if reuse else None
    for i in range(n):
        m = EmailMessage()
        m["From"], m["To"], m["Subject"] = "bench@example.com", "p%d@example.com" % i, "plain"
        m["Date"], m["Message-ID"] = formatdate(localtime=True), make_msgid()
        m.set_content(BODY.format(i=i))
        t = time.perf_counter()
        if reuse:
            conn.send_message(m)
        else:
            with smtplib.SMTP("127.0.0.1", port) as s:
                s.send_message(m)
        lat.append((time.perf_counter() - t) * 1000)
    if conn is not None:
        conn.quit()
    return lat, time.monotonic() - start


def one_round(args):
    tmp = tempfile.mkdtemp(prefix="smtpda-bench-")
    try:
        sink = SinkProc(os.path.join(tmp, "sink"))
        try:
            lat, worker_lat, drained, cpu, _ = drain(args, tmp, sink)
        finally:
            sink.stop()
        sink2 = SinkProc(os.path.join(tmp, "sink2"))
        try:
            one_lat, one_t = smtplib_loop(sink2.port, args.messages, reuse=False)
            shared_lat, shared_t = smtplib_loop(sink2.port, args.messages, reuse=True)
        finally:
            sink2.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = args.messages
    return {
        "send_p50": statistics.median(lat), "send_p99": pct(lat, 99),
        "worker_send_p50": statistics.median(worker_lat),
        "worker_send_p99": pct(worker_lat, 99),
        "drain_total_s": drained[0], "drain_rate": (n - 1) / drained[1],
        "drain_cpu_s": cpu,
        "smtplib_per_msg_rate": n / one_t, "smtplib_per_msg_p50": statistics.median(one_lat),
        "smtplib_per_msg_p99": pct(one_lat, 99),
        "smtplib_shared_rate": n / shared_t, "smtplib_shared_p99": pct(shared_lat, 99),
    }


LINES = [
    ("kore.email().send(), in-process: p50 %.2f ms, p99 %.2f ms", ("send_p50", "send_p99")),
    ("kore.email().send(), in a worker's handler (200 sends): p50 %.2f ms, p99 %.2f ms",
     ("worker_send_p50", "worker_send_p99")),
    ("agent drain: %.2f s from korectl start, %.0f messages/s first to last delivery, "
     "kore CPU %.1f s", ("drain_total_s", "drain_rate", "drain_cpu_s")),
    ("smtplib, a connection per message: %.0f messages/s, per message p50 %.2f ms p99 %.2f ms",
     ("smtplib_per_msg_rate", "smtplib_per_msg_p50", "smtplib_per_msg_p99")),
    ("smtplib, one connection for all: %.0f messages/s, per message p99 %.2f ms",
     ("smtplib_shared_rate", "smtplib_shared_p99")),
]


def report(r):
    for fmt, keys in LINES:
        print("  " + fmt % tuple(r[k] for k in keys))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    rounds = []
    for i in range(args.rounds):
        r = one_round(args)
        rounds.append(r)
        print("round %d (load average %.1f):" % (i + 1, os.getloadavg()[0]))
        report(r)
        sys.stdout.flush()
    print("median of %d rounds, %d messages, agent concurrency %d:"
          % (len(rounds), args.messages, args.concurrency))
    report({k: statistics.median(r[k] for r in rounds) for k in rounds[0]})


if __name__ == "__main__":
    main()

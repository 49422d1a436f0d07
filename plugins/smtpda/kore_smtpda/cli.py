"""``korectl smtpda status|list APP``: the spool and the agent's counters.

Both load the application (as ``korectl run`` would, without serving it) to
find its spool, then read the spool directly, so they work whether the
server runs or not.
"""

import json
import sys
import time


def add_commands(subparsers, app_arguments, load_app):
    p = subparsers.add_parser("smtpda", help="the SMTP delivery agent's spool")
    sub = p.add_subparsers(dest="smtpda_command")
    st = sub.add_parser("status", help="spool depth, deferred, delivered, failed")
    st.add_argument("--json", action="store_true", help="print one JSON object")
    app_arguments(st)
    st.set_defaults(kore_command=lambda args: cmd_status(args, load_app))
    ls = sub.add_parser("list", help="one line per message in the spool")
    ls.add_argument("--json", action="store_true", help="print a JSON list")
    ls.add_argument("--queue", action="append",
                    choices=("incoming", "deferred", "undeliverable", "corrupt"),
                    help="only these queues (repeatable)")
    app_arguments(ls)
    ls.set_defaults(kore_command=lambda args: cmd_list(args, load_app))
    fl = sub.add_parser("flush", help="attempt every deferred message now "
                        "(as Postfix's postqueue -f)")
    app_arguments(fl)
    fl.set_defaults(kore_command=lambda args: cmd_flush(args, load_app))
    p.set_defaults(kore_command=lambda args: _usage(p))


def _usage(parser):
    parser.print_help()
    return 2


def _spool(args, load_app):
    load_app(args)
    from .settings import STATE
    return STATE.spool


def _when(t):
    if not t:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def cmd_status(args, load_app):
    from . import status
    root = _spool(args, load_app)
    doc = status.read(root)
    if args.json:
        sys.stdout.write(json.dumps(doc, sort_keys=True) + "\n")
        return 0
    q, c, agent = doc["queue"], doc["counters"], doc["agent"]
    out = ["spool          %s" % root,
           "agent          %s" % ("pid %d, %d active, next attempt %s"
                                  % (agent["pid"], agent["active"] or 0,
                                     _when(agent["next_attempt"]))
                                  if agent else "not running"),
           "spool depth    %d (incoming %d, deferred %d)" % (q["depth"], q["incoming"],
                                                           q["deferred"]),
           "undeliverable  %d kept" % q["undeliverable"],
           "corrupt        %d set aside" % q["corrupt"],
           "delivered      %d" % c["delivered"],
           "deferred       %d attempts" % c["deferred"],
           "failed         %d" % c["failed"]]
    sys.stdout.write("\n".join(out) + "\n")
    return 0


def cmd_list(args, load_app):
    from . import status
    root = _spool(args, load_app)
    queues = tuple(args.queue) if args.queue else ("incoming", "deferred",
                                                   "undeliverable", "corrupt")
    rows = status.entries(root, queues)
    if args.json:
        sys.stdout.write(json.dumps(rows, sort_keys=True) + "\n")
        return 0
    for r in rows:
        if "error" in r:
            sys.stdout.write("%-13s %s  unreadable: %s\n" % (r["queue"], r["file"], r["error"]))
            continue
        line = "%-13s %s  %s  from %s to %s  attempts %d" % (
            r["queue"], r["file"], r["message_id"], r["sender"],
            ",".join(r["rcpt"] or [b["rcpt"] for b in r.get("bounced") or []]),
            r["attempts"] or 0)
        if r["queue"] == "deferred":
            line += "  next %s" % _when(r["next_attempt"])
        if r.get("last_error"):
            line += "  last: %s" % "; ".join("%s: %s" % kv for kv in r["last_error"].items())
        sys.stdout.write(line + "\n")
    return 0


def cmd_flush(args, load_app):
    import os
    from . import composer, status
    root = _spool(args, load_app)
    if not os.path.isdir(root):
        sys.stderr.write("korectl: smtpda spool %s does not exist\n" % root)
        return 1
    # what is deferred when the flush is asked for (read first: a running
    # agent may have sent it all by the time the nudge returns)
    doc = status.read(root)
    path = os.path.join(root, "flush")
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    composer._nudge(root)
    if doc["agent"] is None:
        sys.stdout.write("no agent is running: the %d deferred message(s) are attempted "
                         "when it starts\n" % doc["queue"]["deferred"])
    else:
        sys.stdout.write("flush requested: %d deferred message(s)\n" % doc["queue"]["deferred"])
    return 0

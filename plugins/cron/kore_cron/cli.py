"""``korectl cron list APP``: the jobs an application declares and when each
runs next."""

import sys
from datetime import datetime

from kore import runtime

from . import clock as clockmod
from . import jobs, schedule


def add_commands(subparsers, app_arguments, load_app):
    p = subparsers.add_parser("cron", help="inspect an application's cron jobs")
    sub = p.add_subparsers(dest="cron_command")
    lst = sub.add_parser("list", help="print each job of APP with its next run time",
                         description="Load APP as 'korectl run' would (without "
                         "serving it) and print its cron jobs: name, schedule, next "
                         "run time, overlap policy and what runs.")
    lst.add_argument("--count", type=int, default=1, metavar="N",
                     help="print the next N run times of each job (default 1)")
    app_arguments(lst)
    lst.set_defaults(kore_command=lambda args: cmd_list(args, load_app))
    p.set_defaults(kore_command=lambda args: _usage(p))


def _usage(parser):
    parser.print_help()
    return 2


def cmd_list(args, load_app):
    if args.count < 1:
        sys.stderr.write("korectl: --count must be >= 1\n")
        return 2
    load_app(args)
    tz = schedule.local_zone(runtime.option("cron_timezone"))
    now = datetime.fromtimestamp(clockmod.from_environment().now(), tz)
    table = jobs.active()
    out = sys.stdout
    if not table:
        out.write("no cron jobs\n")
        return 0
    out.write("time zone %s, now %s\n" % (getattr(tz, "key", None) or str(tz),
                                         now.isoformat(timespec="seconds")))
    for job in table:
        out.write("%s\n" % job.name)
        out.write("    schedule  %s\n" % job.schedule)
        if job.reboot:
            out.write("    next      at server start (@reboot)\n")
        else:
            when, times = now, []
            for _ in range(args.count):
                when = schedule.next_after(job.schedule, when)
                times.append(when.isoformat(timespec="seconds"))
            out.write("    next      %s\n" % ", ".join(times))
        opts = ["overlap=%s" % job.overlap]
        if job.catch_up:
            opts.append("catch_up")
        if job.timeout:
            opts.append("timeout=%gs" % job.timeout)
        out.write("    runs      %s %s\n" % ("shell:" if job.kind == "shell"
                                             else "worker:", job.target()))
        out.write("    options   %s\n" % " ".join(opts))
        if job.source:
            out.write("    declared  %s\n" % job.source)
    return 0

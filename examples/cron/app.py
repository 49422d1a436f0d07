"""kore.cron: crontab jobs run once per tick by the master.

    korectl run examples/cron/app.py            # run it (Ctrl-C stops it)
    korectl cron list examples/cron/app.py      # the jobs and their next runs

The shell job runs as a child of the master, the Python jobs in worker 1,
whatever the number of workers.  Their output and exit status are in the
log, with each job's name.
"""

import os
import time

import kore

HERE = os.path.dirname(os.path.abspath(__file__))
VAR = os.environ.get("CRON_EXAMPLE_DIR", os.path.join(HERE, "var"))
os.makedirs(VAR, exist_ok=True)

kore.config.workers = 2

# Skitai's call, unchanged: a schedule and a shell command line.
kore.cron("* * * * *", "date '+%%F %%T' >> %s/minutes.log" % VAR)

# Every 5 minutes on weekdays during office hours; stderr is logged too.
kore.cron("*/5 8-18 * * mon-fri", "df -h . | tail -1; echo 'no disk check on this box' >&2",
          name="disk-check", timeout=30)


def rotate():
    """A Python job: runs in one worker (kore.worker() says which)."""
    path = os.path.join(VAR, "minutes.log")
    if os.path.exists(path) and os.path.getsize(path) > 64 * 1024:
        os.replace(path, path + ".1")
    with open(os.path.join(VAR, "python-jobs.log"), "a") as f:
        f.write("rotate in worker %d at %s\n" % (kore.worker(), time.strftime("%T")))


async def heartbeat():
    """A coroutine job: awaits kore's async API like a handler would."""
    await kore.suspend(10)
    with open(os.path.join(VAR, "python-jobs.log"), "a") as f:
        f.write("heartbeat in worker %d\n" % kore.worker())


kore.cron("*/2 * * * *", rotate)
kore.cron("@hourly", heartbeat, name="heartbeat", overlap="allow")
kore.cron("@reboot", "echo started >> %s/boot.log" % VAR, name="boot")

"""``--reload``: reload the application when one of its source files changes.

Runs as a service greenlet in the master and polls modification times once
a second (no inotify dependency); a change triggers the same reload as HUP.
"""

import os

import gevent

from .log import notice


def _mtimes(files):
    out = {}
    for f in files:
        try:
            out[f] = os.stat(f).st_mtime_ns
        except OSError:
            out[f] = None
    return out


def watch(arbiter, interval=1.0):
    seen = _mtimes(arbiter.app.source_files())
    while True:
        gevent.sleep(interval)
        now = _mtimes(arbiter.app.source_files())
        changed = [f for f, m in now.items() if seen.get(f, m) != m]
        if changed:
            notice("%s changed, reloading" % ", ".join(os.path.basename(f)
                                                       for f in changed[:3]))
            arbiter.request_reload()
            gevent.sleep(interval)
            now = _mtimes(arbiter.app.source_files())
        seen = now

"""CPU percent and resident memory of a process from /proc (Linux), the
way ``psutil.Process.cpu_percent()`` samples them, without the dependency."""

import os
import time

_TICK = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def read(pid):
    """(cpu seconds, rss bytes) of ``pid`` or None when it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
        with open("/proc/%d/statm" % pid, "rb") as f:
            statm = f.read().split()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    # fields[11], [12]: utime, stime (the 14th and 15th of proc(5))
    cpu = (int(fields[11]) + int(fields[12])) / _TICK
    return cpu, int(statm[1]) * _PAGE


class Sampler:
    def __init__(self):
        self.last = {}      # pid -> (monotonic, cpu seconds)

    def sample(self, pid):
        """(cpu percent since the previous sample, rss bytes); the first
        sample of a pid gives (None, rss)."""
        got = read(pid)
        if got is None:
            self.last.pop(pid, None)
            return None, 0
        now = time.monotonic()
        prev = self.last.get(pid)
        self.last[pid] = (now, got[0])
        if prev is None or now <= prev[0]:
            return None, got[1]
        return 100.0 * (got[0] - prev[1]) / (now - prev[0]), got[1]

    def forget(self, pid):
        self.last.pop(pid, None)

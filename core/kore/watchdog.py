"""The worker watchdog (option ``worker_timeout``, gunicorn's ``--timeout``).

The master cannot look into a worker's event loop, so each worker proves it
turns: a timer on its hub writes the time (``CLOCK_MONOTONIC``, the same
clock in every process) into an 8-byte shared memory slot the master mapped
before the fork.  A blocking call gevent cannot see (``os.system``, a C
extension, a busy loop) stops the timer with the loop.  When the slot is
older than ``worker_timeout`` the master logs it and sends ``SIGABRT`` (the
worker enabled ``faulthandler``: its C-level handler writes the Python stack
of the running greenlet to the log even while the process sits in a blocking
system call, then the signal ends the worker), and ``SIGKILL`` one second
later if it still runs; the slot is then
filled with a new worker as after any death.  The other workers are not
touched.
"""

from __future__ import annotations

import faulthandler
import mmap
import signal
import struct
import time
from typing import Any, Optional

import gevent

_SLOT = struct.Struct("d")

#: the signal whose faulthandler writes a blocked worker's stack
DUMP_SIGNAL = signal.SIGABRT
#: seconds between the stack dump and SIGKILL
KILL_DELAY = 1.0


class Heartbeat:
    """One worker's shared slot: the worker ``beat()``s, the master reads
    ``age()``."""

    def __init__(self) -> None:
        self._map: Optional[mmap.mmap] = mmap.mmap(-1, _SLOT.size)   # MAP_SHARED
        self.beat()

    def beat(self) -> None:
        if self._map is not None:
            _SLOT.pack_into(self._map, 0, time.monotonic())

    def age(self) -> float:
        if self._map is None:
            return 0.0
        return time.monotonic() - _SLOT.unpack_from(self._map, 0)[0]

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


def interval(timeout: float) -> float:
    """How often a worker beats for a given ``worker_timeout``."""
    return max(0.05, min(1.0, timeout / 4.0))


def start_beating(heartbeat: Heartbeat, timeout: float, log_stream: Any) -> Any:
    """In a worker: beat from a hub timer and arm the stack dump.  Returns
    the timer (``None`` when the watchdog is off)."""
    if timeout <= 0:
        return None
    arm_dump(log_stream)
    every = interval(timeout)
    timer = gevent.get_hub().loop.timer(every, every)
    timer.start(heartbeat.beat)
    heartbeat.beat()
    return timer


def arm_dump(log_stream: Any) -> None:
    """Register the stack dump on ``DUMP_SIGNAL`` writing to the log (again
    after the log file was reopened)."""
    try:
        log_stream.fileno()
    except (AttributeError, OSError, ValueError):
        import sys
        log_stream = sys.stderr
    try:
        # SIGABRT is one of faulthandler's fatal signals (with SEGV, FPE, BUS
        # and ILL, so a crashing C extension is logged with its stack too):
        # the handler dumps, then the signal kills the worker as usual
        faulthandler.enable(file=log_stream, all_threads=True)
    except (AttributeError, OSError, ValueError, RuntimeError):
        pass

"""The scheduler's wall clock: the real one, or a test clock.

``KORE_CRON_CLOCK`` is for tests only: ``"<start> x<speed>"`` makes the
scheduler's clock start at ``<start>`` (ISO 8601 with an offset, such as
``2026-03-29T01:58:00+01:00``, or seconds since the epoch) when the master
starts, and run ``<speed>`` times faster than real time (``x60``: a minute
per second).  ``"<start> x<speed> @<epoch>"`` makes it read ``<start>`` at
the real time ``<epoch>`` instead, whenever the master starts: servers
given the same value share one clock (several hosts in one test), and a
different ``<start>`` skews one on purpose.  Only the schedule uses it:
durations and timeouts of jobs are real seconds.  gevent's timers run on the
monotonic clock, which libfaketime does not shift, so the plugin takes its
clock instead.
"""

import os
import time
from datetime import datetime

import gevent

ENV = "KORE_CRON_CLOCK"


class Clock:
    """Real time."""

    speed = 1.0
    fake = False

    def now(self):
        """Seconds since the epoch."""
        return time.time()

    def sleep(self, seconds):
        """Sleep ``seconds`` of this clock's time (cooperatively)."""
        gevent.sleep(max(0.0, seconds) / self.speed)


class TestClock(Clock):
    """Starts at ``start`` (epoch seconds) and runs ``speed`` times faster;
    with ``anchor`` (epoch seconds), reads ``start`` at that real time."""

    fake = True

    def __init__(self, start, speed=1.0, anchor=None):
        if speed <= 0:
            raise ValueError("speed must be > 0")
        self.start = float(start)
        self.speed = float(speed)
        self.anchor = None if anchor is None else float(anchor)
        self._mono0 = time.monotonic()

    def now(self):
        if self.anchor is not None:
            return self.start + (time.time() - self.anchor) * self.speed
        return self.start + (time.monotonic() - self._mono0) * self.speed


def parse(text):
    """A TestClock from ``"<start> [x<speed>] [@<epoch>]"``; ValueError when
    malformed."""
    parts = text.split()
    anchor = None
    if len(parts) >= 2 and parts[-1].startswith("@"):
        try:
            anchor = float(parts[-1][1:])
        except ValueError:
            raise ValueError("%s: bad real start time %r (@<epoch seconds>)"
                             % (ENV, parts[-1])) from None
        parts = parts[:-1]
    if not parts or len(parts) > 2:
        raise ValueError("%s: expected '<start> [x<speed>] [@<epoch>]', got %r"
                         % (ENV, text))
    start = parts[0]
    try:
        epoch = float(start)
    except ValueError:
        try:
            dt = datetime.fromisoformat(start)
        except ValueError:
            raise ValueError("%s: bad start time %r (ISO 8601 with an offset, or "
                             "epoch seconds)" % (ENV, start)) from None
        if dt.tzinfo is None:
            raise ValueError("%s: start time %r needs a UTC offset" % (ENV, start))
        epoch = dt.timestamp()
    speed = 1.0
    if len(parts) == 2:
        if not parts[1].startswith("x"):
            raise ValueError("%s: speed is written x<factor>, got %r" % (ENV, parts[1]))
        try:
            speed = float(parts[1][1:])
        except ValueError:
            raise ValueError("%s: bad speed %r" % (ENV, parts[1])) from None
    return TestClock(epoch, speed, anchor)


def from_environment(environ=None):
    environ = os.environ if environ is None else environ
    text = environ.get(ENV, "").strip()
    if not text:
        return Clock()
    return parse(text)

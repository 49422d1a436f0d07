"""Crontab schedules: parsing, validation and next run times.

The five fields (minute, hour, day-of-month, month, day-of-week) follow
Debian's cron through cronsim: lists, ranges, steps (``*/15``, ``2/12``),
month and day names, Sunday as 0 or 7, day-of-month OR day-of-week when both
are restricted, ``L`` and ``#``, and Debian's daylight-saving rules: a job at
a fixed time inside the hour skipped in spring runs right after the change,
one inside the hour repeated in autumn runs once, and jobs with a wildcard
hour keep their spacing.  ``@yearly`` ``@annually`` ``@monthly`` ``@weekly``
``@daily`` ``@midnight`` ``@hourly`` are the usual shorthands; ``@reboot``
runs once when the server starts.
"""

import os
from datetime import datetime, timezone


FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
REBOOT = "@reboot"


def _cronsim():
    from cronsim import CronSim, CronSimError
    return CronSim, CronSimError


class ScheduleError(ValueError):
    """A schedule that is not a valid crontab schedule; ``field`` names the
    offending field (None when the shape itself is wrong)."""

    def __init__(self, message, field=None):
        super().__init__(message)
        self.field = field


def split_line(line):
    """Split a crontab line into ``(schedule, command)``.

    ``"*/5 * * * * cmd args"`` and ``"@daily cmd"``; raises ScheduleError.
    """
    text = line.strip()
    if not text:
        raise ScheduleError("empty crontab line")
    if text.startswith("@"):
        parts = text.split(None, 1)
        if len(parts) < 2:
            raise ScheduleError("'%s' is followed by no command" % parts[0])
        return normalize(parts[0]), parts[1].strip()
    parts = text.split(None, 5)
    if len(parts) < 6:
        raise ScheduleError("expected five schedule fields (%s) and a command, "
                            "found %d word%s" % (" ".join(FIELDS), len(parts),
                                                 "" if len(parts) == 1 else "s"))
    schedule = " ".join(parts[:5])
    normalize(schedule)
    return schedule, parts[5].strip()


def normalize(schedule):
    """Validate ``schedule`` and return it in canonical form (aliases are
    kept as written, in lower case); raises ScheduleError."""
    if not isinstance(schedule, str):
        raise ScheduleError("a schedule is a string such as '*/5 * * * *', not %s"
                            % type(schedule).__name__)
    text = " ".join(schedule.split())
    if text.startswith("@"):
        low = text.lower()
        if low == REBOOT or low in ALIASES:
            return low
        raise ScheduleError("unknown schedule '%s' (use five fields or one of %s)"
                            % (text, ", ".join(sorted(set(ALIASES) | {REBOOT}))))
    CronSim, CronSimError = _cronsim()
    fields = text.split(" ")
    if len(fields) != 5:
        raise ScheduleError("schedule '%s' has %d field%s, expected five (%s)"
                            % (text, len(fields), "" if len(fields) == 1 else "s",
                               " ".join(FIELDS)))
    for index, name in enumerate(FIELDS):
        # One field at a time, so the error names the field and its text.
        probe = ["*"] * 5
        probe[index] = fields[index]
        try:
            CronSim(" ".join(probe), datetime(2000, 1, 1))
        except CronSimError:
            raise ScheduleError("schedule '%s': bad %s field '%s'"
                                % (text, name, fields[index]), field=name) from None
    try:
        CronSim(text, datetime(2000, 1, 1))
    except CronSimError:
        # Only a day of month no month of the schedule has fails here.
        raise ScheduleError("schedule '%s': bad day-of-month field '%s': no month "
                            "'%s' has that day" % (text, fields[2], fields[4]),
                            field="day-of-month") from None
    return text


def expression(schedule):
    """The five-field expression of a normalized schedule (None for @reboot)."""
    if schedule == REBOOT:
        return None
    return ALIASES.get(schedule, schedule)


def next_after(schedule, when):
    """The first run time strictly after the aware datetime ``when`` (in
    ``when``'s time zone), or None for ``@reboot``."""
    expr = expression(schedule)
    if expr is None:
        return None
    CronSim, _ = _cronsim()
    return next(iter(CronSim(expr, when)))


def local_zone(name=""):
    """The time zone schedules are read in: ``name`` (an IANA name such as
    ``Europe/Berlin``), else ``$TZ``, else the system's ``/etc/localtime``,
    else UTC."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    name = (name or os.environ.get("TZ", "")).lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            if os.path.isabs(name) and os.path.isfile(name):
                with open(name, "rb") as f:
                    return ZoneInfo.from_file(f, key=name)
            raise ScheduleError("unknown time zone '%s'" % name) from None
    try:
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        return timezone.utc

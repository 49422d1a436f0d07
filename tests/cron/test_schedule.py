"""Crontab syntax and next run times (in-process, pure functions)."""

import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from kore_cron import clock, schedule
from kore_cron.schedule import ScheduleError, next_after, normalize, split_line

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")


def runs(expr, start, n):
    out, when = [], start
    for _ in range(n):
        when = next_after(normalize(expr), when)
        out.append(when)
    return out


def test_split_line_fields_and_command():
    assert split_line("*/5  * * * *   echo a  b >> f") == ("*/5 * * * *", "echo a  b >> f")
    assert split_line("@daily /usr/bin/backup --all") == ("@daily", "/usr/bin/backup --all")
    assert split_line("@HOURLY x") == ("@hourly", "x")


@pytest.mark.parametrize("line, field", [
    ("61 * * * * cmd", "minute"),
    ("* 24 * * * cmd", "hour"),
    ("* * 32 * * cmd", "day-of-month"),
    ("* * * 13 * cmd", "month"),
    ("* * * * 8 cmd", "day-of-week"),
    ("* * * foo * cmd", "month"),
    ("*/0 * * * * cmd", "minute"),
    ("5-1x * * * * cmd", "minute"),
    ("0 0 31 2 * cmd", "day-of-month"),
])
def test_invalid_field_is_named(line, field):
    with pytest.raises(ScheduleError) as err:
        split_line(line)
    assert err.value.field == field
    assert field in str(err.value)
    assert line.split()[["minute", "hour", "day-of-month", "month",
                         "day-of-week"].index(field)] in str(err.value)


def test_wrong_shapes():
    with pytest.raises(ScheduleError, match="five schedule fields"):
        split_line("* * * * echo")          # four fields, then a command word
    with pytest.raises(ScheduleError, match="no command"):
        split_line("@daily")
    with pytest.raises(ScheduleError, match="unknown schedule '@sometimes'"):
        normalize("@sometimes")
    with pytest.raises(ScheduleError, match="expected five"):
        normalize("* * * * * *")            # no seconds field in crontab
    with pytest.raises(ScheduleError):
        normalize(5)


def test_day_of_month_or_day_of_week_when_both_restricted():
    # 1st of the month OR Mondays (Vixie/Debian), not AND (Skitai).
    got = runs("0 0 1 * 1", datetime(2026, 1, 31, 12, tzinfo=UTC), 5)
    assert [d.day for d in got] == [1, 2, 9, 16, 23]     # Feb 1 (Sun), Mondays
    assert got[0].weekday() == 6 and all(d.weekday() == 0 for d in got[1:])
    # A star in either field: AND, i.e. the other one alone decides.
    assert all(d.weekday() == 0 for d in runs("0 0 * * 1", datetime(2026, 1, 1, tzinfo=UTC), 4))


def test_sunday_as_0_or_7_and_names():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    sun0, sun7, name = (runs(e, start, 3) for e in ("0 9 * * 0", "0 9 * * 7", "0 9 * * sun"))
    assert sun0 == sun7 == name and all(d.weekday() == 6 for d in sun0)
    assert runs("0 0 1 jan,JUL *", start, 3) == [
        datetime(2026, 7, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC),
        datetime(2027, 7, 1, tzinfo=UTC)]
    weekdays = runs("30 8 * * mon-fri", datetime(2026, 1, 2, 9, tzinfo=UTC), 3)
    assert [d.day for d in weekdays] == [5, 6, 7]


def test_lists_ranges_steps():
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert [d.hour for d in runs("9 2/12 * * *", start, 3)] == [2, 14, 2]    # Skitai's example
    assert [d.minute for d in runs("*/20 * * * *", start, 3)] == [20, 40, 0]
    assert [d.minute for d in runs("1,2,10-12 * * * *", start, 5)] == [1, 2, 10, 11, 12]


def test_aliases():
    start = datetime(2026, 5, 17, 10, 30, tzinfo=UTC)
    assert next_after("@hourly", start) == datetime(2026, 5, 17, 11, tzinfo=UTC)
    assert next_after("@daily", start) == datetime(2026, 5, 18, tzinfo=UTC)
    assert next_after("@midnight", start) == datetime(2026, 5, 18, tzinfo=UTC)
    assert next_after("@weekly", start) == datetime(2026, 5, 24, tzinfo=UTC)   # Sunday
    assert next_after("@monthly", start) == datetime(2026, 6, 1, tzinfo=UTC)
    assert next_after("@yearly", start) == datetime(2027, 1, 1, tzinfo=UTC)
    assert normalize("@reboot") == "@reboot" and next_after("@reboot", start) is None


def test_dst_spring_forward_fixed_time_runs_right_after_the_change():
    # Europe/Berlin 2026-03-29: 02:00 CET -> 03:00 CEST; 02:30 does not exist.
    got = runs("30 2 * * *", datetime(2026, 3, 28, 12, tzinfo=BERLIN), 3)
    assert [d.isoformat() for d in got] == [
        "2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00",
        "2026-03-31T02:30:00+02:00"]


def test_dst_fall_back_fixed_time_runs_once():
    # 2026-10-25: 03:00 CEST -> 02:00 CET; 02:30 happens twice, the job once.
    got = runs("30 2 * * *", datetime(2026, 10, 24, 12, tzinfo=BERLIN), 3)
    assert [d.isoformat() for d in got] == [
        "2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00",
        "2026-10-27T02:30:00+01:00"]


def test_dst_wildcard_hour_keeps_its_spacing():
    spring = runs("*/15 * * * *", datetime(2026, 3, 29, 1, 30, tzinfo=BERLIN), 4)
    gaps = {b.timestamp() - a.timestamp() for a, b in zip(spring, spring[1:])}
    assert gaps == {900.0}
    autumn = runs("*/15 * * * *", datetime(2026, 10, 25, 1, 50, tzinfo=BERLIN), 12)
    gaps = {b.timestamp() - a.timestamp() for a, b in zip(autumn, autumn[1:])}
    assert gaps == {900.0}                  # both 02:xx hours run


def test_local_zone():
    assert schedule.local_zone("Europe/Berlin").key == "Europe/Berlin"
    with pytest.raises(ScheduleError, match="unknown time zone"):
        schedule.local_zone("Mars/Olympus")


def test_test_clock_parse_and_speed():
    c = clock.parse("2026-03-29T01:58:00+01:00 x60")
    assert c.fake and c.speed == 60.0
    assert abs(c.now() - datetime(2026, 3, 29, 0, 58, tzinfo=UTC).timestamp()) < 5
    assert clock.parse("1000000").now() >= 1000000
    # anchored: reads <start> at the real time given, whenever it is made
    real = time.time()
    a = clock.parse("2026-05-04T10:00:00+02:00 x60 @%f" % (real - 2))
    b = clock.parse("%f x60 @%f" % (datetime(2026, 5, 4, 8, tzinfo=UTC).timestamp(), real))
    assert abs(a.now() - (datetime(2026, 5, 4, 8, 2, tzinfo=UTC).timestamp())) < 30
    assert abs(a.now() - b.now() - 120) < 30
    for bad in ("yesterday", "2026-03-29T01:58:00 x60", "0 60", "0 xfast", "0 x0",
                "0 x2 @soon", "@5", "0 x2 3 @5"):
        with pytest.raises(ValueError):
            clock.parse(bad)
    assert not clock.from_environment({}).fake
    assert clock.from_environment({"KORE_CRON_CLOCK": "0 x2"}).speed == 2.0


def test_next_after_is_strictly_after():
    start = datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert next_after("* * * * *", start) == start + timedelta(minutes=1)

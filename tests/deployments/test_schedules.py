"""Schedule arithmetic: cron, interval and RRULE fire times (DST in Europe/Berlin and
America/New_York spelled out), plan() after an outage, JSON, validation; Hypothesis checks the
properties over random expressions, zones and instants."""

from __future__ import annotations

import functools
import itertools
import math
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stead.deployments.schedules import MISSED_POLICIES, Schedule, plan
from stead.errors import ConfigError

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
# 2024's transitions: Berlin springs forward 02:00 -> 03:00 on 31 March and falls back
# 03:00 -> 02:00 on 27 October; New York 02:00 -> 03:00 on 10 March and 02:00 -> 01:00 on
# 3 November.
SPRING = {BERLIN: (2024, 3, 31), NEW_YORK: (2024, 3, 10)}
FALL = {BERLIN: (2024, 10, 27), NEW_YORK: (2024, 11, 3)}
HOUR = 3600.0
DAY = 86400.0


def at(zone: str, *fields: int, fold: int = 0) -> float:
    """Unix seconds of a local wall-clock time (fold=1: the second pass of a repeated time)."""
    return datetime(*fields, tzinfo=ZoneInfo(zone), fold=fold).timestamp()  # type: ignore[misc]


def local(t: float, zone: str) -> str:
    """A fire time as local ISO text with its offset, which tells the two passes apart."""
    return datetime.fromtimestamp(t, ZoneInfo(zone)).isoformat()


def day_before(date: tuple[int, int, int]) -> tuple[int, int, int]:
    d = datetime(*date) - timedelta(days=1)
    return d.year, d.month, d.day


def local_day(s: Schedule, date: tuple[int, int, int]) -> list[float]:
    """The fire times during one local calendar day."""
    following = datetime(*date) + timedelta(days=1)
    return s.between(at(s.timezone, *date) - 1, at(s.timezone, following.year, following.month,
                                                  following.day) - 1)


# --- cron and daylight saving time ----------------------------------------------------------


@pytest.mark.parametrize(("zone", "expression", "expected"), [
    (BERLIN, "30 2 * * *", "2024-03-31T03:00:00+02:00"),
    (BERLIN, "0 2 * * *", "2024-03-31T03:00:00+02:00"),
    (NEW_YORK, "30 2 * * *", "2024-03-10T03:00:00-04:00"),
    (NEW_YORK, "0 2 * * *", "2024-03-10T03:00:00-04:00"),
])
def test_a_daily_cron_at_a_time_that_does_not_exist_fires_once_at_the_end_of_the_gap(
        zone: str, expression: str, expected: str) -> None:
    s = Schedule.cron(expression, zone)
    assert [local(t, zone) for t in local_day(s, SPRING[zone])] == [expected]
    # The days around keep their wall-clock time.
    minute, hour = map(int, expression.split()[:2])
    for date in (day_before(SPRING[zone]), (2024, 4, 1)):
        assert [local(t, zone)[11:16] for t in local_day(s, date)] == [f"{hour:02}:{minute:02}"]


@pytest.mark.parametrize(("zone", "expression", "expected"), [
    (BERLIN, "30 2 * * *", "2024-10-27T02:30:00+02:00"),
    (BERLIN, "0 2 * * *", "2024-10-27T02:00:00+02:00"),
    (NEW_YORK, "30 1 * * *", "2024-11-03T01:30:00-04:00"),
    (NEW_YORK, "0 1 * * *", "2024-11-03T01:00:00-04:00"),
])
def test_a_daily_cron_at_a_time_that_happens_twice_fires_once_at_the_first(
        zone: str, expression: str, expected: str) -> None:
    s = Schedule.cron(expression, zone)
    assert [local(t, zone) for t in local_day(s, FALL[zone])] == [expected]


def test_a_fixed_time_cron_asked_during_the_second_pass_of_the_hour_waits_for_the_next_day(
        ) -> None:
    s = Schedule.cron("30 2 * * *", BERLIN)
    first_pass = at(BERLIN, 2024, 10, 27, 2, 10, fold=0)
    second_pass = at(BERLIN, 2024, 10, 27, 2, 10, fold=1)
    assert local(s.next_after(first_pass), BERLIN) == "2024-10-27T02:30:00+02:00"
    assert local(s.next_after(second_pass), BERLIN) == "2024-10-28T02:30:00+01:00"


@pytest.mark.parametrize("zone", [BERLIN, NEW_YORK])
@pytest.mark.parametrize(("days", "count"), [(SPRING, 23), (FALL, 25)])
def test_an_hourly_cron_fires_every_real_hour_across_both_transitions(
        zone: str, days: dict[str, tuple[int, int, int]], count: int) -> None:
    s = Schedule.cron("0 * * * *", zone)
    times = local_day(s, days[zone])
    assert len(times) == count
    assert {b - a for a, b in itertools.pairwise(times)} == {HOUR}
    quarter = local_day(Schedule.cron("*/15 * * * *", zone), days[zone])
    assert {b - a for a, b in itertools.pairwise(quarter)} == {900.0}


def test_an_hourly_cron_names_the_repeated_hour_twice_and_the_missing_hour_never() -> None:
    fall = [local(t, BERLIN)[11:] for t in local_day(Schedule.cron("0 * * * *", BERLIN),
                                                      FALL[BERLIN])]
    assert fall[:5] == ["00:00:00+02:00", "01:00:00+02:00", "02:00:00+02:00", "02:00:00+01:00",
                        "03:00:00+01:00"]
    spring = [local(t, BERLIN)[11:16] for t in local_day(Schedule.cron("0 * * * *", BERLIN),
                                                          SPRING[BERLIN])]
    assert spring[:4] == ["00:00", "01:00", "03:00", "04:00"]


def test_wildcard_minutes_inside_the_gap_do_not_fire_as_in_debian_cron() -> None:
    s = Schedule.cron("*/20 2 * * *", NEW_YORK)
    assert local_day(s, SPRING[NEW_YORK]) == []
    assert [local(t, NEW_YORK)[11:16] for t in local_day(s, (2024, 3, 11))] == [
        "02:00", "02:20", "02:40"]


def test_a_cron_keeps_its_wall_clock_time_so_its_utc_time_moves() -> None:
    s = Schedule.cron("0 9 * * *", NEW_YORK)
    times = s.between(at(NEW_YORK, 2024, 3, 9), at(NEW_YORK, 2024, 3, 11))
    assert [datetime.fromtimestamp(t, UTC).hour for t in times] == [14, 13]


def test_cron_aliases_and_names() -> None:
    start = at(BERLIN, 2024, 1, 1)
    assert (Schedule.cron("@daily", BERLIN).between(start, start + 3 * DAY)
            == Schedule.cron("0 0 * * *", BERLIN).between(start, start + 3 * DAY))
    assert Schedule.cron("@daily").describe() == "cron @daily (UTC)"
    weekdays = Schedule.cron("0 9 * * mon-fri", BERLIN).between(start, start + 7 * DAY)
    assert len(weekdays) == 5
    assert Schedule.cron("0  2 * *  *").spec == "0 2 * * *"


def test_a_cron_that_never_fires_within_50_years_ends() -> None:
    # The fifth Monday of February: 2044, 2072, ... (cronsim looks 50 years ahead).
    s = Schedule.cron("0 0 * 2 MON#5")
    assert local(s.next_after(at("UTC", 2024, 1, 1)), "UTC") == "2044-02-29T00:00:00+00:00"


# --- interval -------------------------------------------------------------------------------


def test_an_interval_without_anchor_counts_from_the_epoch() -> None:
    s = Schedule.interval(3600)
    assert s.next_after(at("UTC", 2024, 1, 1, 0, 30)) == at("UTC", 2024, 1, 1, 1)
    assert s.next_after(at("UTC", 2024, 1, 1, 1)) == at("UTC", 2024, 1, 1, 2)
    assert s.describe() == "every 1 h"


def test_an_interval_starts_at_its_anchor() -> None:
    anchor = at(BERLIN, 2024, 1, 1, 9, 7)
    s = Schedule.interval(15 * 60, anchor=anchor, timezone=BERLIN)
    assert s.next_after(anchor - 10 * DAY) == anchor   # nothing before the anchor
    assert s.next_after(anchor - 1) == anchor
    assert s.next_after(anchor) == anchor + 900
    assert s.between(anchor, anchor + HOUR) == [anchor + k * 900 for k in (1, 2, 3, 4)]
    assert s.describe() == "every 15 min from 2024-01-01 09:07:00 (Europe/Berlin)"


def test_an_interval_counts_elapsed_time_across_daylight_saving_time() -> None:
    s = Schedule.interval(3600, timezone=BERLIN)
    times = local_day(s, SPRING[BERLIN])
    assert len(times) == 23
    assert {b - a for a, b in itertools.pairwise(times)} == {HOUR}


def test_an_interval_of_fractional_seconds() -> None:
    s = Schedule.interval(1.5, anchor=0.25)
    assert s.between(0.0, 5.0) == [0.25, 1.75, 3.25, 4.75]
    assert s.spec == "1.5" and s.describe() == "every 1.5 s from 1970-01-01 00:00:00 (UTC)"
    assert Schedule.interval(86400).describe() == "every 1 d"


# --- RRULE ----------------------------------------------------------------------------------


def test_a_weekly_rrule_keeps_its_local_time_across_the_transition() -> None:
    s = Schedule.rrule("FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9", BERLIN, anchor=at(BERLIN, 2024, 3, 18))
    times = s.between(at(BERLIN, 2024, 3, 18), at(BERLIN, 2024, 4, 4))
    assert [local(t, BERLIN) for t in times] == [
        "2024-03-18T09:00:00+01:00", "2024-03-20T09:00:00+01:00",
        "2024-03-25T09:00:00+01:00", "2024-03-27T09:00:00+01:00",
        "2024-04-01T09:00:00+02:00", "2024-04-03T09:00:00+02:00"]
    assert [datetime.fromtimestamp(t, UTC).hour for t in times] == [8, 8, 8, 8, 7, 7]


def test_an_rrule_with_count_ends() -> None:
    s = Schedule.rrule("RRULE:FREQ=DAILY;COUNT=3;BYHOUR=6", NEW_YORK,
                       anchor=at(NEW_YORK, 2024, 3, 9))
    times = s.between(0.0, 2e9)
    assert [local(t, NEW_YORK) for t in times] == [
        "2024-03-09T06:00:00-05:00", "2024-03-10T06:00:00-04:00", "2024-03-11T06:00:00-04:00"]
    assert s.next_after(times[-1]) is None
    assert s.next_after(times[1]) == times[2]
    assert s.next_after(0.0) == times[0]


def test_an_rrule_with_until_ends() -> None:
    s = Schedule.rrule("FREQ=DAILY;UNTIL=20240105T235959Z", anchor=at("UTC", 2024, 1, 1, 12))
    assert len(s.between(0.0, 2e9)) == 5
    assert s.next_after(at("UTC", 2024, 1, 5, 12)) is None


@pytest.mark.parametrize("text", [
    "DTSTART;TZID=Europe/Berlin:20240101T090000\nRRULE:FREQ=DAILY",
    "DTSTART:20240101T090000\nRRULE:FREQ=DAILY",   # floating: read in the schedule's zone
    "DTSTART:20240101T080000Z\nFREQ=DAILY",
    "  DTSTART:20240101T090000\n\n  FREQ=DAILY  ",
])
def test_an_rrule_may_carry_its_dtstart(text: str) -> None:
    s = Schedule.rrule(text, BERLIN)
    assert s.next_after(0.0) == at(BERLIN, 2024, 1, 1, 9)
    assert s.describe() == "RRULE FREQ=DAILY from 2024-01-01 09:00:00 (Europe/Berlin)"


def test_an_rrule_at_missing_and_repeated_times_fires_once_like_cron() -> None:
    s = Schedule.rrule("FREQ=DAILY;BYHOUR=2;BYMINUTE=30", BERLIN, anchor=at(BERLIN, 2024, 1, 1))
    assert [local(t, BERLIN) for t in local_day(s, SPRING[BERLIN])] == [
        "2024-03-31T03:00:00+02:00"]
    assert [local(t, BERLIN) for t in local_day(s, FALL[BERLIN])] == [
        "2024-10-27T02:30:00+02:00"]


def test_an_hourly_rrule_counts_wall_clock_hours() -> None:
    s = Schedule.rrule("FREQ=HOURLY", NEW_YORK, anchor=at(NEW_YORK, 2024, 1, 1))
    assert len(local_day(s, SPRING[NEW_YORK])) == 23
    assert len(local_day(s, FALL[NEW_YORK])) == 24   # 01:00 fires at its first pass only


def test_an_old_dense_rrule_is_quick_and_right() -> None:
    s = Schedule.rrule("FREQ=MINUTELY;INTERVAL=7", BERLIN, anchor=at(BERLIN, 2000, 1, 1))
    began = time.perf_counter()
    t = s.next_after(at(BERLIN, 2024, 6, 1))
    assert time.perf_counter() - began < 1.0
    minutes = (t - at(BERLIN, 2000, 1, 1)) / 60   # no DST change between, in wall-clock minutes
    offset_change = (at(BERLIN, 2024, 6, 1) - at(BERLIN, 2000, 1, 1)) % 60
    assert offset_change == 0 and (minutes + 60) % 7 == 0   # summer time: one hour less
    months = Schedule.rrule("FREQ=MONTHLY;BYMONTHDAY=31", BERLIN, anchor=at(BERLIN, 2001, 1, 31))
    assert [local(t, BERLIN)[5:10] for t in months.between(at(BERLIN, 2030, 1, 1),
                                                           at(BERLIN, 2031, 1, 1))] == [
        "01-31", "03-31", "05-31", "07-31", "08-31", "10-31", "12-31"]


# --- plan() ---------------------------------------------------------------------------------


HOURLY = Schedule.cron("0 * * * *", BERLIN)
LAST = at(BERLIN, 2024, 5, 1, 10)        # runs were created up to 10:00 ...
NOW = at(BERLIN, 2024, 5, 1, 13, 30)     # ... then an outage until 13:30


def hours(times: list[float]) -> list[str]:
    return [local(t, BERLIN)[11:16] for t in times]


@pytest.mark.parametrize(("missed", "expected"), [
    ("all", ["11:00", "12:00", "13:00", "14:00", "15:00"]),
    ("latest", ["13:00", "14:00", "15:00"]),
    ("skip", ["14:00", "15:00"]),
])
def test_plan_after_an_outage(missed: str, expected: list[str]) -> None:
    assert hours(plan(HOURLY, LAST, NOW, 2 * HOUR, missed)) == expected


@pytest.mark.parametrize("missed", MISSED_POLICIES)
def test_a_new_schedule_never_back_fills(missed: str) -> None:
    assert hours(plan(HOURLY, None, NOW, 2 * HOUR, missed)) == ["14:00", "15:00"]
    assert plan(HOURLY, None, NOW, 0, missed) == []


def test_plan_creates_nothing_twice_when_runs_exist_ahead() -> None:
    created = at(BERLIN, 2024, 5, 1, 15)
    assert hours(plan(HOURLY, created, NOW, 3 * HOUR, "all")) == ["16:00"]
    assert plan(HOURLY, created, NOW, HOUR, "all") == []


def test_plan_catches_up_a_long_backlog_in_batches() -> None:
    last = at(BERLIN, 2024, 4, 1)
    first = plan(HOURLY, last, NOW, HOUR, "all", limit=100)
    assert len(first) == 100 and first == HOURLY.between(last, NOW, 100)
    rest = plan(HOURLY, first[-1], NOW, HOUR, "all", limit=10_000)
    assert first + rest == plan(HOURLY, last, NOW, HOUR, "all", limit=10_000)
    assert hours(rest[-2:]) == ["13:00", "14:00"]


@pytest.mark.parametrize("schedule", [
    Schedule.cron("* * * * *", NEW_YORK),
    Schedule.interval(7),
    Schedule.rrule("FREQ=MINUTELY;INTERVAL=3", NEW_YORK, anchor=at(NEW_YORK, 2023, 12, 1)),
])
def test_latest_after_a_long_outage_of_a_dense_schedule(schedule: Schedule) -> None:
    last = at(NEW_YORK, 2024, 1, 1)
    now = at(NEW_YORK, 2024, 3, 20, 12, 34) + 56
    [latest] = plan(schedule, last, now, 0, "latest")
    assert latest <= now and schedule.next_after(latest) > now
    assert schedule.between(last, now, 10)[0] < latest


@pytest.mark.parametrize(("arguments", "message"), [
    ({"missed": "newest"}, "Unknown missed-run policy 'newest'"),
    ({"ahead": -1.0}, "ahead=-1.0"),
    ({"ahead": math.nan}, "ahead=nan"),
    ({"limit": 0}, "limit=0"),
])
def test_plan_rejects_bad_arguments(arguments: dict, message: str) -> None:
    given_arguments = {"missed": "all", "ahead": HOUR, "limit": 100, **arguments}
    with pytest.raises(ConfigError, match=r"e\.g\.|use 'all'") as raised:
        plan(HOURLY, LAST, NOW, **given_arguments)
    assert message in str(raised.value)


# --- JSON, describe, import cost ------------------------------------------------------------


ROUND_TRIP = [
    Schedule.cron("0 2 * * *", BERLIN),
    Schedule.cron("@hourly"),
    Schedule.interval(3600),
    Schedule.interval(90.5, anchor=1704067200.25, timezone=NEW_YORK),
    Schedule.rrule("FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9", BERLIN, anchor=1704067200.0),
    Schedule.rrule("DTSTART;TZID=America/New_York:20240101T090000\nRRULE:FREQ=DAILY;COUNT=5",
                   NEW_YORK),
]


@pytest.mark.parametrize("schedule", ROUND_TRIP, ids=lambda s: s.describe())
def test_json_round_trip(schedule: Schedule) -> None:
    again = Schedule.from_json(schedule.to_json())
    assert again == schedule and hash(again) == hash(schedule)
    assert again.between(1.7e9, 1.71e9) == schedule.between(1.7e9, 1.71e9)


def test_describe() -> None:
    assert Schedule.cron("0 2 * * *", BERLIN).describe() == "cron 0 2 * * * (Europe/Berlin)"
    assert Schedule.interval(5400).describe() == "every 90 min"
    assert Schedule.rrule("RRULE:FREQ=DAILY;BYHOUR=9", anchor=1704067200.0).describe() == (
        "RRULE FREQ=DAILY;BYHOUR=9 from 2024-01-01 00:00:00 (UTC)")


def test_import_stead_does_not_import_schedules() -> None:
    code = ("import sys, stead; "
            "print(sorted(m for m in sys.modules if 'schedules' in m or m == 'cronsim'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(("make", "words"), [
    (lambda: Schedule.cron("61 * * * *"), ["cron expression '61 * * * *'", "bad minute"]),
    (lambda: Schedule.cron("* * * *"), ["has 4 fields, not 5"]),
    (lambda: Schedule.cron("0 0 * * * *"), ["has 6 fields, not 5"]),
    (lambda: Schedule.cron("0 0 30 2 *"), ["bad day-of-month"]),
    (lambda: Schedule.cron("0 0 * * FUNDAY"), ["bad day-of-week"]),
    (lambda: Schedule.cron("@reboot"), ["'@reboot' has 1 fields"]),
    (lambda: Schedule.cron(""), ["has 0 fields"]),
    (lambda: Schedule.cron("0 2 * * *", "Mars/Olympus"), ["timezone 'Mars/Olympus'", "IANA"]),
    (lambda: Schedule.cron("0 2 * * *", "../etc/passwd"), ["timezone '../etc/passwd'"]),
    (lambda: Schedule.cron("0 2 * * *", ""), ["timezone must be a time zone name"]),
    (lambda: Schedule.interval(0), ["interval '0' must be at least 1 second"]),
    (lambda: Schedule.interval(-5), ["interval '-5'"]),
    (lambda: Schedule.interval(0.5), ["interval '0.5'"]),
    (lambda: Schedule.interval(math.inf), ["interval 'inf'"]),
    (lambda: Schedule.interval(math.nan), ["interval 'nan'"]),
    (lambda: Schedule.interval("60"), ["interval must be a number of seconds"]),  # type: ignore[arg-type]
    (lambda: Schedule("interval", "1h"), ["interval '1h' is not a number of seconds"]),
    (lambda: Schedule.interval(60, anchor="yesterday"), ["anchor must be Unix seconds"]),  # type: ignore[arg-type]
    (lambda: Schedule.interval(60, anchor=1e20), ["anchor 1e+20 is not a time"]),
    (lambda: Schedule.interval(60, anchor=True), ["anchor must be Unix seconds"]),
    (lambda: Schedule.rrule("FREQ=SOMETIMES", anchor=0.0), ["cannot be read", "FREQ"]),
    (lambda: Schedule.rrule("BYHOUR=9", anchor=0.0), ["has no FREQ"]),
    (lambda: Schedule.rrule("FREQ=DAILY;BYHOUR=25", anchor=0.0), ["hour must be in 0..23"]),
    (lambda: Schedule.rrule("", anchor=0.0), ["has no rule"]),
    (lambda: Schedule.rrule("FREQ=DAILY"), ["needs a start: pass anchor"]),
    (lambda: Schedule.rrule("DTSTART:20240101T090000\nFREQ=DAILY", anchor=0.0),
     ["a DTSTART and an anchor too"]),
    (lambda: Schedule.rrule("DTSTART;TZID=Europe/Paris:20240101T090000\nFREQ=DAILY", BERLIN),
     ["DTSTART is in 'Europe/Paris'", "timezone='Europe/Paris'"]),
    (lambda: Schedule.rrule("DTSTART:2024-01-01\nFREQ=DAILY"), ["DTSTART line", "cannot be read"]),
    (lambda: Schedule.rrule("DTSTART:20241301T000000\nFREQ=DAILY"), ["not a real date"]),
    (lambda: Schedule.rrule("DTSTART;TZID=UTC:20240101T000000Z\nFREQ=DAILY"),
     ["both a TZID and a trailing Z"]),
    (lambda: Schedule.rrule("DTSTART;X-FOO=1:20240101T000000\nFREQ=DAILY"),
     ["parameter 'X-FOO=1' that is not supported"]),
    (lambda: Schedule.rrule("DTSTART:20240101T000000\nDTSTART:20240102T000000\nFREQ=DAILY"),
     ["two DTSTART lines"]),
    (lambda: Schedule.rrule("FREQ=DAILY\nEXDATE:20240102T000000", anchor=0.0),
     ["line 'EXDATE:20240102T000000' that is not supported"]),
    (lambda: Schedule.rrule("FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30", anchor=0.0),
     ["never fires"]),
    (lambda: Schedule.rrule("FREQ=DAILY;UNTIL=20240101T000000", BERLIN, anchor=1.7e9),
     ["UNTIL in UTC with a trailing Z"]),
    (lambda: Schedule("weekly", "MO"), ["Schedule kind 'weekly'"]),
    (lambda: Schedule("cron", 5), ["spec must be text"]),  # type: ignore[arg-type]
    (lambda: Schedule.from_json("{"), ["Schedule JSON cannot be read"]),
    (lambda: Schedule.from_json("[1]"), ["Schedule JSON must be an object"]),
    (lambda: Schedule.from_json('{"kind": "cron"}'), ["missing keys ['spec']"]),
    (lambda: Schedule.from_json('{"kind": "cron", "spec": "0 2 * * *", "tz": "UTC"}'),
     ["unknown keys ['tz']"]),
    (lambda: Schedule.from_json('{"kind": "cron", "spec": "0 2 * * *", "timezone": "Nowhere"}'),
     ["timezone 'Nowhere'"]),
    (lambda: Schedule.from_json('{"kind": "cron", "spec": "0 2 * *"}'), ["has 4 fields"]),
    (lambda: Schedule.from_json('{"kind": "interval", "spec": "3600", "anchor": "0"}'),
     ["anchor must be Unix seconds"]),
])
def test_validation_says_what_is_wrong_and_shows_an_example(make, words: list[str]) -> None:
    with pytest.raises(ConfigError) as raised:
        make()
    message = str(raised.value)
    for word in words:
        assert word in message
    assert "e.g." in message


# --- properties -----------------------------------------------------------------------------


ZONES = ["UTC", BERLIN, NEW_YORK, "Europe/London", "Europe/Dublin", "Australia/Sydney",
         "Australia/Lord_Howe", "Asia/Kolkata", "America/Sao_Paulo", "Pacific/Apia",
         "Asia/Tehran", "America/Santiago", "Pacific/Chatham", "America/St_Johns",
         "Africa/Casablanca", "Antarctica/Troll", "America/Havana"]
FIRST, LAST_INSTANT = at("UTC", 1990, 1, 1), at("UTC", 2045, 1, 1)


def offset(t: float, zone: str) -> timedelta:
    return datetime.fromtimestamp(t, ZoneInfo(zone)).utcoffset()  # type: ignore[return-value]


@functools.cache
def transitions(zone: str) -> list[float]:
    """The instants the zone's UTC offset changes, 1990-2045 (a daily scan, then bisection)."""
    found = []
    t = FIRST
    while t < LAST_INSTANT:
        if offset(t, zone) != offset(t + DAY, zone):
            lo, hi = t, t + DAY
            while hi - lo > 1:
                middle = (lo + hi) // 2
                lo, hi = (middle, hi) if offset(middle, zone) == offset(lo, zone) else (lo, middle)
            found.append(hi)
        t += DAY
    return found or [FIRST]


@st.composite
def instants(draw: st.DrawFn, zone: str) -> float:
    """Any instant, often one within two days of a change of the zone's UTC offset."""
    if draw(st.booleans()):
        return float(draw(st.integers(int(FIRST), int(LAST_INSTANT))))
    change = draw(st.sampled_from(transitions(zone)))
    return change + draw(st.integers(-2 * 86400, 2 * 86400)) + draw(st.sampled_from([0, 0.5]))


def cron_field(lo: int, hi: int, top: int | None = None) -> st.SearchStrategy[tuple[str, set[int]]]:
    """One cron field and the values it allows: values from lo to hi, and '*' for lo to top
    (days of the month are drawn up to the 28th, so every month has them)."""
    values = st.integers(lo, hi)
    top = hi if top is None else top
    return st.one_of(
        st.just(("*", set(range(lo, top + 1)))),
        st.integers(2, hi - lo).map(lambda n: (f"*/{n}", set(range(lo, top + 1, n)))),
        values.map(lambda v: (str(v), {v})),
        # (cronsim reads a one-value range with a step, "5-5/2", as "5/2": 5 to the end.)
        st.tuples(values, values, st.integers(1, 4)).filter(lambda r: r[0] != r[1]).map(
            lambda r: (f"{min(r[:2])}-{max(r[:2])}" + (f"/{r[2]}" if r[2] > 1 else ""),
            set(range(min(r[:2]), max(r[:2]) + 1, r[2])))),
        st.sets(values, min_size=2, max_size=4).map(
            lambda vs: (",".join(map(str, sorted(vs))), vs)),
    )


CRON = st.tuples(cron_field(0, 59), cron_field(0, 23), cron_field(1, 28, 31), cron_field(1, 12),
                 cron_field(0, 7))


def cron_matches(fields: tuple, t: float, zone: str) -> bool:
    """Whether the local time at `t` matches, with Debian's rule for the two day fields (both
    restricted: either may match; one starting with '*': both must)."""
    (_, minutes), (_, hours_), (dom_text, days), (_, months), (dow_text, weekdays) = fields
    when = datetime.fromtimestamp(t, ZoneInfo(zone))
    dom_ok = when.day in days
    dow_ok = (when.weekday() + 1) % 7 in {d % 7 for d in weekdays}
    either = not (dom_text.startswith("*") or dow_text.startswith("*"))
    return (when.minute in minutes and when.hour in hours_ and when.month in months
            and (dom_ok or dow_ok if either else dom_ok and dow_ok))


@settings(max_examples=300, deadline=None)
@given(data=st.data(), fields=CRON, zone=st.sampled_from(ZONES))
def test_cron_properties(data: st.DataObject, fields: tuple, zone: str) -> None:
    s = Schedule.cron(" ".join(text for text, _ in fields), zone)
    start = data.draw(instants(zone))
    times, t = [], start
    for _ in range(6):
        following = s.next_after(t)
        assert following is not None and following > t
        times.append(following)
        t = following
    assert s.between(start, times[-1]) == times
    assert s.between(start, times[-1], limit=3) == times[:3]
    for t in times:
        # The one exception: a time inside a DST gap fires at the end of the gap.
        assert cron_matches(fields, t, zone) or offset(t, zone) > offset(t - 60, zone)


@settings(max_examples=300, deadline=None)
@given(seconds=st.one_of(st.integers(1, 10**6), st.floats(1, 1e6)),
       anchor=st.one_of(st.none(), st.floats(FIRST, LAST_INSTANT)),
       after=st.floats(FIRST, LAST_INSTANT))
def test_interval_properties(seconds: float, anchor: float | None, after: float) -> None:
    s = Schedule.interval(seconds, anchor=anchor)
    origin = 0.0 if anchor is None else anchor
    following = s.next_after(after)
    assert following is not None and following > after
    k = round((following - origin) / seconds)
    assert k >= 0 and following == origin + k * seconds
    assert k == 0 or origin + (k - 1) * seconds <= after   # none skipped
    iterated = [following]
    while len(iterated) < 4:
        iterated.append(s.next_after(iterated[-1]))
    assert s.between(after, iterated[-1]) == iterated
    assert all(b - a == pytest.approx(seconds) for a, b in itertools.pairwise(iterated))


FREQ_HORIZON = {"HOURLY": 20 * DAY, "DAILY": 400 * DAY, "WEEKLY": 1000 * DAY,
                "MONTHLY": 4000 * DAY, "YEARLY": 20000 * DAY}


@st.composite
def rrules(draw: st.DrawFn) -> tuple[str, str]:
    freq = draw(st.sampled_from(list(FREQ_HORIZON)))
    parts = [f"FREQ={freq}"]
    if draw(st.booleans()):
        parts.append(f"INTERVAL={draw(st.integers(1, 3))}")
    if freq != "HOURLY" and draw(st.booleans()):
        chosen = draw(st.sets(st.integers(0, 23), min_size=1, max_size=2))
        parts.append("BYHOUR=" + ",".join(map(str, sorted(chosen))))
    if draw(st.booleans()):
        parts.append(f"BYMINUTE={draw(st.sampled_from([0, 15, 30, 59]))}")
    if freq in ("DAILY", "WEEKLY", "MONTHLY") and draw(st.booleans()):
        days = draw(st.sets(st.sampled_from(["MO", "TU", "WE", "TH", "FR", "SA", "SU"]),
                            min_size=1, max_size=3))
        parts.append("BYDAY=" + ",".join(sorted(days)))
        if freq == "MONTHLY" and draw(st.booleans()):
            parts.append(f"BYSETPOS={draw(st.sampled_from([1, 2, -1]))}")
    elif freq in ("MONTHLY", "YEARLY") and draw(st.booleans()):
        parts.append(f"BYMONTHDAY={draw(st.sampled_from([1, 15, 29, 30, 31, -1]))}")
    if draw(st.booleans()):
        parts.append(f"COUNT={draw(st.integers(1, 30))}")
    return ";".join(parts), freq


def reference_instant(wall: datetime) -> float:
    """The first instant whose local time is `wall` or later, found without the module."""
    zone = wall.tzinfo
    naive = wall.replace(tzinfo=None)
    candidates = sorted(wall.replace(fold=f).timestamp() for f in (0, 1))
    real = [u for u in candidates
            if datetime.fromtimestamp(u, zone).replace(tzinfo=None) == naive]
    if real:
        return real[0]
    u = math.floor(candidates[0])
    while datetime.fromtimestamp(u, zone).replace(tzinfo=None) < naive:
        u += 1
    return float(u)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), rule=rrules(), zone=st.sampled_from(ZONES))
def test_rrule_matches_a_brute_force_reference(data: st.DataObject, rule: tuple[str, str],
                                               zone: str) -> None:
    text, freq = rule
    anchor = data.draw(instants(zone))
    try:
        s = Schedule.rrule(text, zone, anchor=anchor)
    except ConfigError:
        assume(False)
    after = anchor + data.draw(st.floats(-2 * DAY, FREQ_HORIZON[freq]))
    # Every time of the rule from its start, each at its first instant, until well past `after`.
    dtstart = datetime.fromtimestamp(anchor, ZoneInfo(zone))
    limit = datetime.fromtimestamp(after, ZoneInfo(zone)).replace(tzinfo=None) + timedelta(
        days=3)
    expected = []
    for wall in rrulestr(text, dtstart=dtstart):
        instant = reference_instant(wall)
        if instant > after:
            expected.append(instant)
        if wall.replace(tzinfo=None) > limit and len(expected) >= 3:
            break
    expected = sorted(set(expected))[:3]
    got = s.between(after, expected[-1] if expected else after + 10 * 366 * DAY, limit=3)
    assert got == expected
    assert s.next_after(after) == (expected[0] if expected else None)


SCHEDULES = st.one_of(
    st.builds(Schedule.interval, st.integers(60, 6 * 3600),
              anchor=st.one_of(st.none(), st.integers(0, 2**31))),
    st.builds(Schedule.cron, st.sampled_from(["* * * * *", "*/5 * * * *", "0 * * * *",
                                              "30 2 * * *", "0 9-17 * * MON-FRI"]),
              st.sampled_from([BERLIN, NEW_YORK, "UTC", "Australia/Lord_Howe"])),
    st.builds(Schedule.rrule, st.sampled_from(["FREQ=HOURLY;BYMINUTE=0",
                                               "FREQ=DAILY;BYHOUR=2,14;BYMINUTE=30",
                                               "FREQ=MINUTELY;INTERVAL=10"]),
              st.sampled_from([BERLIN, NEW_YORK]), anchor=st.just(at(BERLIN, 2020, 1, 1))),
)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), schedule=SCHEDULES, missed=st.sampled_from(MISSED_POLICIES),
       limit=st.integers(1, 50), ahead=st.sampled_from([0.0, 60.0, HOUR, DAY]))
def test_plan_properties(data: st.DataObject, schedule: Schedule, missed: str, limit: int,
                         ahead: float) -> None:
    now = data.draw(instants(schedule.timezone))
    last = data.draw(st.one_of(st.none(), st.floats(now - 2 * DAY, now + DAY)))
    out = plan(schedule, last, now, ahead, missed, limit)
    assert len(out) <= limit
    assert out == sorted(set(out))
    assert all(t > (now if last is None else last) and t <= now + ahead for t in out)
    past = [t for t in out if t <= now]
    assert missed != "skip" or past == []
    assert missed != "latest" or len(past) <= 1
    if missed == "all" and last is not None:
        assert past == schedule.between(last, now, limit)[:len(past)]
    if missed == "latest" and past:
        assert schedule.next_after(past[0]) > now
    if out and len(out) < limit:
        # Idempotent: with what it returned recorded, planning again at once adds nothing.
        assert plan(schedule, max(out), now, ahead, missed, limit) == []
    if out and len(out) == limit and missed == "all":
        # A truncated backlog continues where it stopped.
        rest = plan(schedule, max(out), now, ahead, missed, 10_000)
        assert out + rest == plan(schedule, last, now, ahead, missed, 10_000)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), schedule=SCHEDULES, missed=st.sampled_from(MISSED_POLICIES),
       ahead_runs=st.integers(1, 5), ahead=st.sampled_from([60.0, HOUR, DAY]))
def test_plan_creates_at_most_ahead_runs_future_times_counting_those_created(
        data: st.DataObject, schedule: Schedule, missed: str, ahead_runs: int,
        ahead: float) -> None:
    now = data.draw(instants(schedule.timezone))
    last = data.draw(st.one_of(st.none(), st.floats(now - 2 * DAY, now + DAY)))
    capped = plan(schedule, last, now, ahead, missed, ahead_runs=ahead_runs)
    uncapped = plan(schedule, last, now, ahead, missed, limit=10_000)
    future = [t for t in capped if t > now]
    created = [] if last is None else schedule.between(now, last, ahead_runs + 1)
    assert len(future) + len(created) <= max(ahead_runs, len(created))
    # The cap keeps the earliest times: what it returns is the uncapped plan's beginning.
    assert capped == uncapped[:len(capped)]
    assert [t for t in capped if t <= now] == [t for t in uncapped if t <= now][:100]
    # Ticking on with what it returned recorded tops the horizon up to ahead_runs, no more.
    if capped:
        again = plan(schedule, max(capped), now, ahead, missed, ahead_runs=ahead_runs)
        assert len([t for t in capped + again if t > now]) <= ahead_runs


def test_ahead_runs_must_be_1_or_more() -> None:
    with pytest.raises(ConfigError, match="ahead_runs=0"):
        plan(HOURLY, LAST, NOW, HOUR, "all", ahead_runs=0)

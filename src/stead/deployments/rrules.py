"""RRULE schedules: reading an RFC 5545 rule (an optional DTSTART line and one RRULE line) in
a schedule's time zone, and its fire times as Unix seconds, with the daylight saving rule of
deployments/schedules.py (a repeated local time fires at its first occurrence, a missing one
at the end of the gap). Pure: no database and no clock.

    >>> from zoneinfo import ZoneInfo
    >>> rule = parse_rrule("FREQ=DAILY;BYHOUR=9;COUNT=2", ZoneInfo("UTC"), 0.0)
    >>> list(rrule_times(rule, 0.0))   # 1970-01-01 and -02 at 09:00 UTC
    [32400.0, 118800.0]
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import NamedTuple
from zoneinfo import ZoneInfo

from dateutil.rrule import rrule, rrulestr

from stead.errors import ConfigError

_RRULE_HELP = ("Write an RFC 5545 rule, e.g. 'FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=9', optionally "
               "after a line 'DTSTART;TZID=Europe/Berlin:20240101T090000'.")

# Units by which an RRULE's DTSTART can be moved forward without changing its later times.
_FREQ_SECONDS = {"SECONDLY": 1, "MINUTELY": 60, "HOURLY": 3600, "DAILY": 86400,
                 "WEEKLY": 7 * 86400}
_FREQ_MONTHS = {"MONTHLY": 1, "YEARLY": 12}
_DTSTART = re.compile(r"DTSTART(?P<params>(?:;[^:]*)?):(?P<date>\d{8})"
                      r"(?:T(?P<time>\d{6}))?(?P<utc>Z?)", re.IGNORECASE)


class Rule(NamedTuple):
    """A parsed RRULE: dateutil's rule, its DTSTART (aware, in the schedule's zone), and how
    it may be moved forward (`freq`, `interval`; `forwardable` is False with COUNT or
    BYSETPOS, whose times depend on where the rule starts)."""

    rule: rrule
    dtstart: datetime
    freq: str
    interval: int
    forwardable: bool


def parse_rrule(text: str, zone: ZoneInfo, anchor: float | None) -> Rule:
    """The rule in `text` (an optional DTSTART line and one RRULE line) starting at its
    DTSTART or at `anchor`; ConfigError if it cannot be read or never fires."""
    dtstart: datetime | None = None
    body: str | None = None
    for line in (line.strip() for line in text.splitlines()):
        upper = line.upper()
        if not line:
            continue
        if upper.startswith("DTSTART"):
            if dtstart is not None:
                raise ConfigError(f"Schedule RRULE {text!r} has two DTSTART lines; keep one, "
                                  "e.g. DTSTART:20240101T090000.")
            dtstart = _parse_dtstart(line, zone)
        elif body is None and (upper.startswith("RRULE:") or ":" not in line):
            body = line.split(":", 1)[1].strip() if upper.startswith("RRULE:") else line
        else:
            raise ConfigError(f"Schedule RRULE {text!r} has a line {line!r} that is not "
                              f"supported: only one DTSTART and one RRULE line are. {_RRULE_HELP}")
    if not body:
        raise ConfigError(f"Schedule RRULE {text!r} has no rule. {_RRULE_HELP}")
    params = dict(part.split("=", 1) for part in body.upper().split(";") if "=" in part)
    if "FREQ" not in params:
        raise ConfigError(f"Schedule RRULE {text!r} has no FREQ (DAILY, WEEKLY, ...). "
                          + _RRULE_HELP)
    if dtstart is not None and anchor is not None:
        raise ConfigError(f"Schedule RRULE {text!r} has a DTSTART and an anchor too: give the "
                          "start in one place, e.g. Schedule.rrule('FREQ=DAILY', anchor=...).")
    if dtstart is None:
        if anchor is None:
            raise ConfigError(f"Schedule RRULE {text!r} needs a start: pass anchor (Unix "
                              "seconds) or begin the text with a DTSTART line. " + _RRULE_HELP)
        dtstart = datetime.fromtimestamp(anchor, zone)
    try:
        rule = rrulestr(body, dtstart=dtstart)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        hint = ("; with a time zone, write UNTIL in UTC with a trailing Z, e.g. "
                "UNTIL=20241231T235959Z") if "UNTIL" in str(exc) else ""
        raise ConfigError(f"Schedule RRULE {text!r} cannot be read: {exc}{hint}. "
                          + _RRULE_HELP) from None
    if not isinstance(rule, rrule) or rule.after(dtstart, inc=True) is None:
        raise ConfigError(f"Schedule RRULE {text!r} never fires (its parts exclude every "
                          f"date, or it ends before it starts). {_RRULE_HELP}")
    forwardable = "COUNT" not in params and "BYSETPOS" not in params
    return Rule(rule, dtstart, params["FREQ"], int(params.get("INTERVAL", "1")), forwardable)


def _parse_dtstart(line: str, zone: ZoneInfo) -> datetime:
    """DTSTART:20240101T090000 (in the schedule's zone), ...Z (UTC) or ;TZID=<the zone>:..."""
    match = _DTSTART.fullmatch(line)
    example = ("e.g. DTSTART;TZID=Europe/Berlin:20240101T090000, DTSTART:20240101T090000 "
               "(in the schedule's time zone) or DTSTART:20240101T080000Z (UTC)")
    if match is None:
        raise ConfigError(f"Schedule RRULE has a DTSTART line {line!r} that cannot be read; "
                          f"{example}.")
    for param in filter(None, match["params"].split(";")):
        key, _, value = param.partition("=")
        tzid = value.strip('"')
        if key.upper() == "TZID" and tzid != zone.key:
            raise ConfigError(f"Schedule RRULE's DTSTART is in {tzid!r} but the schedule's "
                              f"timezone is {zone.key!r}: give the same zone to both, e.g. "
                              f"timezone={tzid!r}, or drop the TZID.")
        if key.upper() not in ("TZID", "VALUE"):
            raise ConfigError(f"Schedule RRULE's DTSTART has a parameter {param!r} that is "
                              f"not supported; {example}.")
    if match["utc"] and "TZID" in match["params"].upper():
        raise ConfigError(f"Schedule RRULE's DTSTART {line!r} has both a TZID and a trailing "
                          f"Z (UTC); keep one, {example}.")
    try:
        naive = datetime.strptime(match["date"] + (match["time"] or "000000"), "%Y%m%d%H%M%S")
    except ValueError:
        raise ConfigError(f"Schedule RRULE's DTSTART {line!r} is not a real date and time; "
                          f"{example}.") from None
    if match["utc"]:
        return naive.replace(tzinfo=UTC).astimezone(zone)
    return naive.replace(tzinfo=zone)


def rrule_times(parsed: Rule, after: float) -> Iterator[float]:
    zone = parsed.dtstart.tzinfo
    start = datetime.fromtimestamp(after, zone)
    last = after
    # The rule yields wall-clock times in order, and _first_instant keeps that order, so the
    # times after `after` follow the first wall-clock time at or after its own; those between
    # (the second pass of a repeated hour) fire earlier, at their first pass: skip them.
    for local in _fast_forward(parsed, start).xafter(start, inc=True):
        t = _first_instant(local)
        if t > last:
            last = t
            yield t


def _fast_forward(parsed: Rule, start: datetime) -> rrule:
    """The rule with DTSTART moved forward by whole periods (FREQ times INTERVAL) to shortly
    before `start`: the same times from there on, without generating years of earlier ones
    (dateutil always iterates from DTSTART)."""
    rule, dtstart = parsed.rule, parsed.dtstart
    if not parsed.forwardable:
        return rule
    if parsed.freq in _FREQ_SECONDS:
        step = parsed.interval * _FREQ_SECONDS[parsed.freq]
        elapsed = (start.replace(tzinfo=None) - dtstart.replace(tzinfo=None)).total_seconds()
        periods = math.floor(elapsed / step) - 1
        if periods <= 0:
            return rule
        return rule.replace(dtstart=dtstart + timedelta(seconds=periods * step))
    step = parsed.interval * _FREQ_MONTHS[parsed.freq]
    periods = ((start.year - dtstart.year) * 12 + start.month - dtstart.month) // step - 1
    for k in range(periods, max(periods - 100, 0), -1):
        months = dtstart.month - 1 + k * step
        try:   # the 29th to 31st are missing in some months: then try an earlier period
            moved = dtstart.replace(year=dtstart.year + months // 12, month=months % 12 + 1)
        except ValueError:
            continue
        return rule.replace(dtstart=moved)
    return rule


def _first_instant(local: datetime) -> float:
    """The first instant at which the clock in `local`'s zone shows `local` or a later time:
    `local` itself, at its first occurrence if it happens twice, or the end of the gap if it
    does not exist."""
    zone = local.tzinfo
    wall = local.replace(tzinfo=None)
    t = local.replace(fold=0).timestamp()
    if datetime.fromtimestamp(t, zone).replace(tzinfo=None) == wall:
        return t
    # In a gap, fold=1 reads the time with the offset after the change (an instant before the
    # change) and fold=0 with the one before it (an instant after): the change lies between.
    lo, hi = sorted((local.replace(fold=1).timestamp(), t))
    lo, hi = math.floor(lo), math.ceil(hi)
    while hi - lo > 1:
        middle = (lo + hi) // 2
        if datetime.fromtimestamp(middle, zone).replace(tzinfo=None) >= wall:
            hi = middle
        else:
            lo = middle
    return float(hi)

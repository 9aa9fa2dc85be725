"""When a deployment's schedule fires: cron, interval and RRULE arithmetic (RRULEs are read
and counted in deployments/rrules.py), and which runs to create after an outage (`plan`, in
deployments/planning.py, re-exported here).

Pure: no database and no clock. Every time is Unix seconds (a float) passed in, and every
answer is Unix seconds, so a scheduler and its tests decide what "now" is.

    >>> daily = Schedule.cron("30 2 * * *", timezone="Europe/Berlin")
    >>> daily.next_after(1711843200.0)   # 2024-03-31 00:00 UTC: 02:30 does not exist that night
    1711846800.0
    >>> # ... so it fires at 03:00 CEST (01:00 UTC), the end of the gap.

Daylight saving time. A local time that happens twice (the clocks fall back) fires once, at
its first occurrence; a local time that does not exist (the clocks spring forward) fires once,
at the end of the gap. In one sentence: a local time fires at the first instant the clock shows
it or a later time. Cron follows Debian's cron (Vixie cron with Debian's DST patches):

- An expression whose minute and hour fields are both fixed ("30 2 * * *", "0 9-17 * * 1-5")
  names wall-clock times, and the rule above applies: "30 2 * * *" in Europe/Berlin fires at
  03:00 CEST on the last Sunday of March and once, at 02:30 CEST, on the last Sunday of
  October.
- An expression whose minute or hour field starts with "*" ("0 * * * *", "*/15 * * * *",
  "0 */2 * * *") follows real time: it fires at every instant whose local time matches. An
  hourly schedule so fires once per real hour, 23 times on the spring-forward day and 25
  times on the fall-back day, never skipping or doubling an hour in UTC. Minutes inside the
  gap do not exist and do not fire: "*/20 2 * * *" skips the spring-forward day.

An RRULE's times are wall-clock times in the schedule's zone (RFC 5545), with the same rule
for repeated and missing times; times that land on the same instant fire once. (RFC 5545 would
shift a missing 02:30 by the gap's length, to 03:30; we use cron's rule so that all schedules
behave alike and the fire times keep the rule's order.) A sub-daily RRULE therefore counts
wall-clock hours: FREQ=HOURLY fires 23 times on the spring-forward day and 24 on the
fall-back day; for once per real hour use cron "0 * * * *" or an interval of 3600 seconds.
Intervals count elapsed seconds from their anchor; time zones do not affect them.

Why cronsim for cron: it sets out to match Debian's cron, DST behaviour included, and
documents where it does; it is one small module without dependencies, maintained with the
Healthchecks monitoring service that depends on it. croniter fires a fixed-time job twice on
the fall-back day (both 02:30s in Europe/Berlin, checked with croniter 7.0), which is neither
cron's behaviour nor what a nightly job wants, and its maintenance lapsed in 2025 (declared
abandoned, then adopted by another organisation). RRULEs are python-dateutil's `rrule`; time
zones are the standard library's `zoneinfo` (with the `tzdata` package where the system has no
time zone database).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from stead.deployments.planning import MISSED_POLICIES as MISSED_POLICIES
from stead.deployments.planning import plan as plan
from stead.deployments.rrules import Rule, parse_rrule, rrule_times
from stead.errors import ConfigError

KINDS = ("cron", "interval", "rrule")

MIN_INTERVAL = 1.0
"""The shortest interval, in seconds: a schedule is for runs, not for a busy loop."""

_CRON_ALIASES = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
                 "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
                 "@hourly": "0 * * * *"}
_CRON_HELP = ("A cron expression has 5 fields, minute hour day-of-month month day-of-week, "
              "e.g. '30 2 * * *' (02:30 every day) or '*/15 9-17 * * MON-FRI'; "
              "@hourly, @daily, @weekly, @monthly and @yearly work too.")
_TIMEZONE_HELP = ("Use an IANA name, e.g. 'UTC', 'Europe/Berlin' or 'America/New_York' "
                  "(and install the 'tzdata' package where the system has no time zone data).")


@dataclass(frozen=True)
class Schedule:
    """When a deployment runs: a cron expression, a fixed interval or an RRULE, in a time zone.

    Build one with `Schedule.cron`, `Schedule.interval` or `Schedule.rrule`. Every way of
    making one (the constructors, the class itself, `from_json`) validates, raising a
    `ConfigError` that names the field and shows what to write instead.

    Example:
        >>> s = Schedule.cron("0 2 * * *", timezone="Europe/Berlin")
        >>> s.describe()
        'cron 0 2 * * * (Europe/Berlin)'
        >>> s.next_after(1704067200.0)   # 2024-01-01 00:00 UTC -> 02:00 CET
        1704070800.0
        >>> Schedule.interval(3600).between(0.0, 7200.0)
        [3600.0, 7200.0]
    """

    kind: str
    spec: str
    timezone: str = "UTC"
    anchor: float | None = None
    _parsed: Any = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"Schedule kind {self.kind!r} is not one of cron, interval, rrule; "
                              "build one with a constructor, e.g. Schedule.cron('0 2 * * *'), "
                              "Schedule.interval(3600) or Schedule.rrule('FREQ=DAILY', anchor=0).")
        if not isinstance(self.spec, str):
            raise ConfigError(f"Schedule spec must be text, got {type(self.spec).__name__} "
                              f"{self.spec!r}; e.g. '0 2 * * *' for cron or '3600' for interval.")
        zone = _zone(self.timezone)
        anchor = _anchor(self.anchor)
        if self.kind == "cron":
            spec = " ".join(self.spec.split())
            parsed: Any = (_parse_cron(spec), zone)
        elif self.kind == "interval":
            seconds = _parse_interval(self.spec)
            spec = _number_text(seconds)
            parsed = (seconds, 0.0 if anchor is None else anchor)
        else:
            spec = self.spec.strip()
            parsed = parse_rrule(spec, zone, anchor)
        object.__setattr__(self, "spec", spec)
        object.__setattr__(self, "anchor", anchor)
        object.__setattr__(self, "_parsed", parsed)

    @classmethod
    def cron(cls, expression: str, timezone: str = "UTC") -> Schedule:
        """A cron schedule, its fields read in `timezone` (see the module's DST rule).

        >>> Schedule.cron("*/15 9-17 * * MON-FRI", "America/New_York").kind
        'cron'
        """
        return cls("cron", expression, timezone)

    @classmethod
    def interval(cls, seconds: float, anchor: float | None = None,
                 timezone: str = "UTC") -> Schedule:
        """Every `seconds` (at least 1), at `anchor`, `anchor + seconds`, ... (Unix seconds;
        None: counted from the epoch, so 3600 fires on every full UTC hour).

        >>> Schedule.interval(90 * 60, anchor=600.0).next_after(0.0)
        600.0
        """
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ConfigError(f"Schedule interval must be a number of seconds, got "
                              f"{seconds!r}; e.g. Schedule.interval(3600) for every hour.")
        return cls("interval", _number_text(float(seconds)), timezone, anchor)

    @classmethod
    def rrule(cls, text: str, timezone: str = "UTC", anchor: float | None = None) -> Schedule:
        """An RFC 5545 recurrence rule read in `timezone`. It starts at its DTSTART line, or at
        `anchor` (Unix seconds) when the text has none; one of the two is required. Minutes and
        seconds the rule does not name come from the start, as RFC 5545 says.

        >>> s = Schedule.rrule("FREQ=DAILY;BYHOUR=9;COUNT=2", "Europe/Berlin", 1704067200.0)
        >>> s.between(0.0, 2e9)   # 2024-01-01 and -02 at 09:00 CET
        [1704096000.0, 1704182400.0]
        """
        return cls("rrule", text, timezone, anchor)

    def next_after(self, after: float) -> float | None:
        """The first fire time strictly after `after` (Unix seconds); None if the schedule has
        ended (an RRULE with COUNT or UNTIL) or, for cron, never fires within 50 years."""
        return next(self._times(after), None)

    def between(self, start: float, end: float, limit: int = 1000) -> list[float]:
        """The fire times t with start < t <= end, oldest first, at most `limit` of them:
        the same times as calling `next_after` again and again."""
        times: list[float] = []
        if limit <= 0 or end <= start:
            return times
        for t in self._times(start):
            if t > end:
                break
            times.append(t)
            if len(times) >= limit:
                break
        return times

    def to_json(self) -> str:
        """The schedule as JSON text, for storing; `from_json` reads it back.

        >>> Schedule.cron("0 2 * * *").to_json()
        '{"kind":"cron","spec":"0 2 * * *","timezone":"UTC","anchor":null}'
        """
        return json.dumps({"kind": self.kind, "spec": self.spec, "timezone": self.timezone,
                           "anchor": self.anchor}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Schedule:
        """Read a schedule written by `to_json`, validating it as the constructors do."""
        example = '{"kind": "cron", "spec": "0 2 * * *", "timezone": "UTC", "anchor": null}'
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"Schedule JSON cannot be read ({exc}); expected an object, "
                              f"e.g. {example}.") from None
        if not isinstance(data, dict):
            raise ConfigError(f"Schedule JSON must be an object, e.g. {example}, "
                              f"got {text!r}.")
        unknown = sorted(set(data) - {"kind", "spec", "timezone", "anchor"})
        missing = [key for key in ("kind", "spec") if key not in data]
        if unknown or missing:
            what = "; ".join(part for part in (
                f"unknown keys {unknown}" if unknown else "",
                f"missing keys {missing}" if missing else "") if part)
            raise ConfigError(f"Schedule JSON has {what}; expected an object, e.g. {example}.")
        return cls(data["kind"], data["spec"], data.get("timezone", "UTC"), data.get("anchor"))

    def describe(self) -> str:
        """The schedule for people.

        >>> Schedule.interval(3600).describe()
        'every 1 h'
        """
        if self.kind == "cron":
            return f"cron {self.spec} ({self.timezone})"
        if self.kind == "interval":
            seconds, anchor = self._parsed
            text = f"every {_duration_text(seconds)}"
            if self.anchor is None:
                return text
            local = datetime.fromtimestamp(anchor, _zone(self.timezone))
            return f"{text} from {local:%Y-%m-%d %H:%M:%S} ({self.timezone})"
        rule: Rule = self._parsed
        body = " ".join(line.strip() for line in self.spec.splitlines()
                        if not line.strip().upper().startswith("DTSTART"))
        body = re.sub(r"^RRULE:", "", body.strip(), flags=re.IGNORECASE)
        return f"RRULE {body} from {rule.dtstart:%Y-%m-%d %H:%M:%S} ({self.timezone})"

    def _times(self, after: float) -> Iterator[float]:
        """The fire times strictly after `after`, strictly increasing."""
        if self.kind == "cron":
            expression, zone = self._parsed
            return _cron_times(expression, zone, after)
        if self.kind == "interval":
            seconds, anchor = self._parsed
            return _interval_times(seconds, anchor, after)
        return rrule_times(self._parsed, after)


# --- cron ---------------------------------------------------------------------------------


def _parse_cron(spec: str) -> str:
    """The expression cronsim evaluates (aliases spelled out); ConfigError if it is invalid."""
    expression = _CRON_ALIASES.get(spec.lower(), spec)
    fields = len(expression.split())
    if fields != 5:
        raise ConfigError(f"Schedule cron expression {spec!r} has {fields} fields, not 5. "
                          + _CRON_HELP)
    try:
        CronSim(expression, datetime(2000, 1, 1))
    except (CronSimError, ValueError) as exc:
        raise ConfigError(f"Schedule cron expression {spec!r} is invalid: "
                          f"{str(exc).lower() or 'it cannot be read'}. {_CRON_HELP}") from None
    return expression


def _cron_times(expression: str, zone: ZoneInfo, after: float) -> Iterator[float]:
    # Fire times are whole seconds, so starting from the second `after` falls in (rather than
    # from `after` rounded to microseconds, which may round up) misses none.
    start = datetime.fromtimestamp(math.floor(after), zone)
    last = after
    # For fixed-time expressions cronsim counts in wall-clock time, so started in the second
    # pass of a repeated hour it may first return that hour's earlier pass: skip to later ones.
    for local in CronSim(expression, start):
        t = local.timestamp()
        if t > last:
            last = t
            yield t


# --- interval -----------------------------------------------------------------------------


def _parse_interval(spec: str) -> float:
    try:
        seconds = float(spec)
    except ValueError:
        raise ConfigError(f"Schedule interval {spec!r} is not a number of seconds; "
                          "e.g. '3600' (Schedule.interval(3600)) for every hour.") from None
    if not math.isfinite(seconds) or seconds < MIN_INTERVAL:
        raise ConfigError(f"Schedule interval {spec!r} must be at least {MIN_INTERVAL:g} second "
                          "(and finite); e.g. Schedule.interval(3600) for every hour.")
    return seconds


def _interval_times(seconds: float, anchor: float, after: float) -> Iterator[float]:
    # The k-th time is computed afresh as anchor + k * seconds (no running sum), so rounding
    # cannot drift and next_after and between agree to the last bit.
    k = 0 if after < anchor else math.floor((after - anchor) / seconds) + 1
    while k > 0 and anchor + (k - 1) * seconds > after:
        k -= 1
    while anchor + k * seconds <= after:
        k += 1
    while True:
        yield anchor + k * seconds
        k += 1


# --- small helpers ------------------------------------------------------------------------


def _zone(name: object) -> ZoneInfo:
    if not isinstance(name, str) or not name:
        raise ConfigError(f"Schedule timezone must be a time zone name, got {name!r}. "
                          + _TIMEZONE_HELP)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"Schedule timezone {name!r} is not a known time zone. "
                          + _TIMEZONE_HELP) from None


def _anchor(anchor: object) -> float | None:
    if anchor is None:
        return None
    if isinstance(anchor, bool) or not isinstance(anchor, int | float):
        raise ConfigError(f"Schedule anchor must be Unix seconds (a number) or None, got "
                          f"{anchor!r}; e.g. anchor=1704067200.0 for 2024-01-01 00:00 UTC.")
    try:
        datetime.fromtimestamp(anchor, UTC)
    except (OverflowError, ValueError, OSError):
        raise ConfigError(f"Schedule anchor {anchor!r} is not a time between the years 1 and "
                          "9999 in Unix seconds; e.g. anchor=1704067200.0 (2024-01-01).") from None
    return float(anchor)


def _number_text(value: float) -> str:
    return str(int(value)) if value.is_integer() else repr(value)


def _duration_text(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            return f"{int(seconds // size)} {unit}"
    return f"{_number_text(seconds)} s"

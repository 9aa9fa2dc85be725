"""Which fire times of a schedule to create runs for now (`plan`): those ahead, and after an
outage those it missed, by the schedule's missed-run policy. Pure: no database and no clock.
`deployments.schedules` re-exports `plan` and `MISSED_POLICIES`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from stead.errors import ConfigError

if TYPE_CHECKING:
    from stead.deployments.schedules import Schedule

MISSED_POLICIES = ("all", "latest", "skip")


def plan(schedule: Schedule, last: float | None, now: float, ahead: float, missed: str,
         limit: int = 100, ahead_runs: int | None = None) -> list[float]:
    """The fire times to create runs for now, oldest first, at most `limit`.

    `last` is the latest fire time already created (None: a new schedule, which never creates
    runs in the past). Future times in (now, now + ahead] are always included (those after
    `last`), at most `ahead_runs` future times in all, counting those already created (None:
    no cap). Past times in (last, now] were missed (an outage): missed="all" keeps them all,
    oldest first; "latest" keeps only the most recent; "skip" keeps none. Raises ConfigError
    for an unknown policy, a negative `ahead`, or a `limit` or `ahead_runs` below 1.

    A time already past when it is planned counts as missed, so plan at least one planning
    period ahead; or, until a schedule's first run is created, pass the time it became active
    as `last` (with None, a time that passes between two plans is never created). With "all",
    a backlog longer than `limit` comes in batches: plan again with `last` set to the latest
    time returned.

    Example (an hourly schedule, created runs up to 10:00, back at 13:30 after an outage):
        >>> from stead.deployments.schedules import Schedule
        >>> hourly = Schedule.interval(3600)
        >>> [t / 3600 for t in plan(hourly, 10 * 3600, 13.5 * 3600, 3600, "all")]
        [11.0, 12.0, 13.0, 14.0]
        >>> [t / 3600 for t in plan(hourly, 10 * 3600, 13.5 * 3600, 3600, "latest")]
        [13.0, 14.0]
        >>> [t / 3600 for t in plan(hourly, 10 * 3600, 13.5 * 3600, 3600, "skip")]
        [14.0]
    """
    if missed not in MISSED_POLICIES:
        raise ConfigError(f"Unknown missed-run policy {missed!r}: use 'all' (create every "
                          "missed run), 'latest' (only the most recent) or 'skip' (none).")
    if not ahead >= 0:
        raise ConfigError(f"plan(ahead={ahead!r}): how far ahead to create runs must be 0 "
                          "seconds or more, e.g. ahead=3600.")
    if limit < 1 or (ahead_runs is not None and ahead_runs < 1):
        raise ConfigError(f"plan(limit={limit!r}, ahead_runs={ahead_runs!r}): the most runs "
                          "to create at once, and ahead, must be 1 or more, e.g. limit=100.")
    past: list[float] = []
    if last is not None and last < now:
        if missed == "all":
            past = schedule.between(last, now, limit)
        elif missed == "latest":
            latest = _latest(schedule, last, now)
            past = [] if latest is None else [latest]
    start = now if last is None else max(now, last)
    room = limit - len(past)
    if ahead_runs is not None:
        room = min(room, ahead_runs - len(schedule.between(now, start, ahead_runs)))
    return past + schedule.between(start, now + ahead, room)


def _latest(schedule: Schedule, start: float, end: float) -> float | None:
    """The last fire time in (start, end], or None: one scan for a short outage, otherwise a
    search that halves the interval where it can be (a long outage of a minutely schedule)."""
    scan = schedule.between(start, end, 1000)
    if len(scan) < 1000:
        return scan[-1] if scan else None
    lo, hi = scan[-1], end   # lo is a fire time; the latest fire time lies in [lo, hi]
    while True:
        following = schedule.next_after(lo)
        if following is None or following > hi:
            return lo
        lo = following
        middle = lo + (hi - lo) / 2
        probe = schedule.next_after(middle)
        if probe is not None and probe <= hi:
            lo = probe
        else:
            hi = middle

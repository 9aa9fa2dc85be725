"""The scheduler service: creates the runs of active schedules a little ahead of time, makes
them Pending when they are due, skips the missed runs their policy skips, and marks those not
started within a grace period Late.

The horizon is short: the next `AHEAD_RUNS` (3) fire times of each schedule, and none more
than `AHEAD_S` (60 s) ahead. A run is created before its time only so that it is in the
database when it is due; what is created ahead is what a pause removes, and what an outage
turns into missed runs, so the scheduler keeps it small.

Idempotent by construction, so any number of schedulers may run and restarts are safe:
- a scheduled run's id is the deployment's name and its fire time in UTC
  ("nightly@20261122T010000Z"), so creating it twice is a no-op;
- each schedule remembers the latest fire time it created a run for (`last_fire_at`).

Missed runs follow the schedule's missed-run policy ("all", "latest" or "skip"), both kinds:
- fire times that passed while no scheduler ran, whose runs were never created: "all"
  creates every one, "latest" only the most recent, "skip" none;
- runs created that have not started in time (the scheduler or the workers were down, or
  busy): "all" leaves them to run; "latest" skips a run as soon as a later run of its
  deployment is due, so of a backlog only the most recent runs; "skip" does that too and
  also skips a run not started `MISSED_AFTER_S` (60 s) after its fire time. A skipped run
  is Cancelled, and its history says why.
A paused deployment starts no run: pausing removes its Scheduled runs, and only runs of
active schedules become Pending. Time is a parameter (`now`): tests drive it across a
daylight-saving change and through outages.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

from stead.core import console
from stead.deployments.registry import run_deployment
from stead.deployments.schedules import Schedule, plan
from stead.deployments.timing import (
    AHEAD_RUNS,
    AHEAD_S,
    EVERY_S,
    GRACE_S,
    MISSED_AFTER_S,
    check_timing,
)
from stead.errors import SteadError
from stead.store.base import Store


@dataclass
class TickReport:
    created: list[str] = field(default_factory=list)  # run ids
    promoted: int = 0  # Scheduled -> Pending
    skipped: int = 0  # missed runs Cancelled by their missed-run policy
    late: int = 0  # Pending -> Late
    errors: list[str] = field(default_factory=list)


def scheduled_run_id(deployment: str, fire_at: float) -> str:
    """The id of the run a schedule creates for `fire_at`.

    >>> scheduled_run_id("nightly", 1795309200.0)
    'nightly@20261122T010000Z'
    """
    stamp = datetime.fromtimestamp(fire_at, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{deployment}@{stamp}"


def tick(store: Store, now: float, *, ahead_s: float = AHEAD_S, ahead_runs: int = AHEAD_RUNS,
         grace_s: float = GRACE_S, missed_after_s: float = MISSED_AFTER_S,
         deployments: Collection[str] | None = None) -> TickReport:
    """One round of the scheduler at time `now` (Unix seconds).

    `deployments` limits the runs created to those deployments' schedules (a served flow's
    process schedules only its own); due runs are promoted, skipped and marked Late for all.

    Example (the scheduler of `stead scheduler start`, one round):
        >>> report = tick(store, time.time())
        >>> report.created   # e.g. ['every5@20261122T010005Z', ...]
    """
    report = TickReport()
    for sched in store.list_schedules():
        if not sched.active or sched.id is None:
            continue
        if deployments is not None and sched.deployment not in deployments:
            continue
        try:
            schedule = Schedule.from_json(sched.schedule)
            # Fire times count from the schedule's creation: one that passed before the
            # first tick (or between two slow ticks) follows the missed-run policy.
            since = sched.last_fire_at if sched.last_fire_at is not None else sched.created_at
            times = plan(schedule, since, now, ahead_s, sched.missed, ahead_runs=ahead_runs)
            for fire_at in times:
                # Created Scheduled even when due: promote_due_runs makes it Pending only
                # while its schedule is active, so a run created as a pause commits never
                # starts.
                run, created = run_deployment(
                    store, sched.deployment, now, run_id=scheduled_run_id(sched.deployment,
                                                                          fire_at),
                    scheduled_for=fire_at, message=f"scheduled by {schedule.describe()}",
                    hold=True)
                if created:
                    report.created.append(run.id)
            if times:
                store.advance_schedule(sched.id, max(times))
        except SteadError as exc:  # one broken schedule must not stop the others
            report.errors.append(f"schedule {sched.id} of deployment {sched.deployment}: {exc}")
    # Skip first: a run the policy skips is never Pending, not even for a moment.
    report.skipped = store.skip_missed_runs(now, missed_after_s)
    report.promoted = store.promote_due_runs(now)
    report.late = store.mark_late_runs(now, grace_s)
    return report


def run_scheduler(store: Store, *, every_s: float = EVERY_S, ahead_s: float = AHEAD_S,
                  ahead_runs: int = AHEAD_RUNS, grace_s: float = GRACE_S,
                  missed_after_s: float = MISSED_AFTER_S) -> None:
    """Tick every `every_s` seconds, for as long as the process runs."""
    check_timing(every_s, ahead_s, grace_s, missed_after_s)
    while True:
        report = tick(store, time.time(), ahead_s=ahead_s, ahead_runs=ahead_runs,
                      grace_s=grace_s, missed_after_s=missed_after_s)
        for run_id in report.created:
            console.say("scheduler", f"created run {run_id}")
        if report.skipped:
            console.say("scheduler", f"skipped {report.skipped} missed runs (their missed-run "
                                     "policy; `stead runs show` says why)")
        if report.late:
            console.say("scheduler", f"{report.late} runs are Late (not started within "
                                     f"{grace_s:g} s of their time)")
        for error in report.errors:
            console.say("scheduler", error)
        time.sleep(every_s)

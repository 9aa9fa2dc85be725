"""The scheduler service: creates the runs of active schedules ahead of time, makes them
Pending when they are due, and marks those not started within a grace period Late.

Idempotent by construction, so any number of schedulers may run and restarts are safe:
- a scheduled run's id is the deployment's name and its fire time in UTC
  ("nightly@20261122T010000Z"), so creating it twice is a no-op;
- each schedule remembers the latest fire time it created a run for (`last_fire_at`);
- after an outage, fire times that passed meanwhile follow the schedule's missed-run
  policy: "all" creates every one, "latest" only the most recent, "skip" none.
Time is a parameter (`now`): tests drive it across a daylight-saving change.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from stead.core import console
from stead.deployments.registry import run_deployment
from stead.deployments.schedules import Schedule, plan
from stead.errors import SteadError
from stead.store.base import Store


@dataclass
class TickReport:
    created: list[str] = field(default_factory=list)  # run ids
    promoted: int = 0  # Scheduled -> Pending
    late: int = 0  # Pending -> Late
    errors: list[str] = field(default_factory=list)


def scheduled_run_id(deployment: str, fire_at: float) -> str:
    stamp = datetime.fromtimestamp(fire_at, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{deployment}@{stamp}"


def tick(store: Store, now: float, *, ahead_s: float = 3600.0, grace_s: float = 600.0
         ) -> TickReport:
    """One round of the scheduler at time `now` (Unix seconds)."""
    report = TickReport()
    for sched in store.list_schedules():
        if not sched.active or sched.id is None:
            continue
        try:
            schedule = Schedule.from_json(sched.schedule)
            # Fire times count from the schedule's creation: one that passed before the
            # first tick (or between two slow ticks) follows the missed-run policy.
            since = sched.last_fire_at if sched.last_fire_at is not None else sched.created_at
            times = plan(schedule, since, now, ahead_s, sched.missed)
            for fire_at in times:
                run, created = run_deployment(
                    store, sched.deployment, now, run_id=scheduled_run_id(sched.deployment,
                                                                          fire_at),
                    scheduled_for=fire_at, message=f"scheduled by {schedule.describe()}")
                if created:
                    report.created.append(run.id)
            if times:
                store.advance_schedule(sched.id, max(times))
        except SteadError as exc:  # one broken schedule must not stop the others
            report.errors.append(f"schedule {sched.id} of deployment {sched.deployment}: {exc}")
    report.promoted = store.promote_due_runs(now)
    report.late = store.mark_late_runs(now, grace_s)
    return report


def run_scheduler(store: Store, *, every_s: float = 5.0, ahead_s: float = 3600.0,
                  grace_s: float = 600.0) -> None:
    """Tick every `every_s` seconds, for as long as the process runs."""
    while True:
        report = tick(store, time.time(), ahead_s=ahead_s, grace_s=grace_s)
        for run_id in report.created:
            console.say("scheduler", f"created run {run_id}")
        if report.late:
            console.say("scheduler", f"{report.late} runs are Late (not started within "
                                     f"{grace_s:g} s of their time)")
        for error in report.errors:
            console.say("scheduler", error)
        time.sleep(every_s)

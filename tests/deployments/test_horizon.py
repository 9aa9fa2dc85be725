"""The scheduler's short horizon (defect 1 of issue #11): runs are created only for the next
few fire times, a pause means no run of the deployment starts, a resume brings no burst, and
the missed-run policy also covers runs created ahead that did not start in time. Time is
injected; real stores (SQLite, PostgreSQL, a server over HTTP)."""

from __future__ import annotations

import sys

import pytest

from stead.deployments.registry import deploy, run_deployment
from stead.deployments.scheduler import scheduled_run_id, tick
from stead.deployments.schedules import Schedule
from stead.deployments.timing import check_timing
from stead.errors import ConfigError, RunNotFound
from stead.store.base import RunFilter, Store
from tests.conftest import SCRIPTS
from tests.deployments.test_deployments import at, claim_and_execute

if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

import deployed_flows

T0 = at("2026-11-22T00:00")


@pytest.fixture(autouse=True)
def _every_backend(backend: str) -> str:
    return backend


def every5(store: Store, missed: str = "latest") -> None:
    deploy(store, deployed_flows.tidy, name="every5", now=T0, queue="etl",
           schedules=[Schedule.interval(5)], missed=missed)


def waiting(store: Store) -> list[str]:
    """Ids of the runs that wait: Scheduled, Pending or Late."""
    return sorted(r.id for r in store.list_runs(RunFilter(
        state=("Scheduled", "Pending", "Late"), limit=10_000)))


def claimable(store: Store) -> int:
    return len(store.list_runs(RunFilter(state=("Pending", "Late"), limit=10_000)))


def test_an_interval_of_5_s_has_3_runs_ahead_not_an_hour_of_them(store: Store) -> None:
    every5(store, missed="all")
    report = tick(store, T0)
    assert report.created == [scheduled_run_id("every5", T0 + s) for s in (5, 10, 15)]
    assert all(store.get_run(r).state == "Scheduled" for r in report.created)
    # Ticking on: one run becomes due, one more is created; never more than 3 wait ahead.
    for now in (T0 + 5, T0 + 10, T0 + 12):
        tick(store, now)
        ahead = [r for r in store.list_runs(RunFilter(state="Scheduled", limit=1000))]
        assert len(ahead) == 3 and all(r.scheduled_for > now for r in ahead)
    assert claimable(store) == 2  # 00:00:05 and 00:00:10 are due


def test_a_daily_run_is_created_at_most_a_minute_ahead(store: Store) -> None:
    deploy(store, deployed_flows.tidy, name="nightly", now=T0, queue="etl",
           schedules=[Schedule.cron("0 2 * * *")])
    assert tick(store, at("2026-11-22T01:58")).created == []
    assert tick(store, at("2026-11-22T01:59:30")).created == [
        scheduled_run_id("nightly", at("2026-11-22T02:00"))]
    tick(store, at("2026-11-22T02:00:03"))
    assert claim_and_execute(store, at("2026-11-22T02:00:04")) == ["Completed"]


def test_pause_removes_the_runs_created_ahead_and_none_ever_runs(store: Store) -> None:
    every5(store, missed="all")
    created = tick(store, T0).created
    assert store.set_schedule_active("every5", False, T0 + 1) == 1
    for run_id in created:
        with pytest.raises(RunNotFound):
            store.get_run(run_id)
    # Long after their fire times: nothing was created, nothing is claimable.
    for now in (T0 + 5, T0 + 60, T0 + 3600):
        assert tick(store, now).created == []
        assert claim_and_execute(store, now) == []
    assert waiting(store) == []


def test_a_run_created_by_a_scheduler_that_raced_the_pause_never_starts(store: Store) -> None:
    every5(store)
    tick(store, T0)
    store.set_schedule_active("every5", False, T0 + 1)
    # A scheduler that read the schedule as active just before the pause creates its run
    # just after it: as the scheduler does, Scheduled even though it is due.
    late_id = scheduled_run_id("every5", T0)
    run_deployment(store, "every5", T0 + 2, run_id=late_id, scheduled_for=T0, hold=True)
    report = tick(store, T0 + 3)
    assert report.promoted == 0 and claim_and_execute(store, T0 + 3) == []
    with pytest.raises(RunNotFound):  # removed by the round after the pause
        store.get_run(late_id)


def test_runs_already_due_stay_queued_when_paused(store: Store) -> None:
    every5(store)
    tick(store, T0)
    tick(store, T0 + 5)  # 00:00:05 is due: Pending
    store.set_schedule_active("every5", False, T0 + 6)
    assert waiting(store) == [scheduled_run_id("every5", T0 + 5)]
    assert claim_and_execute(store, T0 + 7) == ["Completed"]


@pytest.mark.parametrize("missed", ["all", "latest", "skip"])
def test_resume_starts_no_burst_whatever_the_policy(store: Store, missed: str) -> None:
    every5(store, missed=missed)
    tick(store, T0)
    store.set_schedule_active("every5", False, T0 + 1)
    tick(store, T0 + 1800)
    store.set_schedule_active("every5", True, T0 + 3600)  # an hour later
    report = tick(store, T0 + 3600)
    assert report.created == [scheduled_run_id("every5", T0 + 3600 + s) for s in (5, 10, 15)]
    assert claimable(store) == 0
    tick(store, T0 + 3605)
    assert claim_and_execute(store, T0 + 3606) == ["Completed"]


def test_a_quick_resume_recreates_the_runs_the_pause_removed(store: Store) -> None:
    every5(store)
    tick(store, T0)
    store.set_schedule_active("every5", False, T0 + 1)
    store.set_schedule_active("every5", True, T0 + 2)
    assert tick(store, T0 + 2).created == [scheduled_run_id("every5", T0 + s)
                                           for s in (5, 10, 15)]


@pytest.mark.parametrize(("missed", "runs"), [("all", 72), ("latest", 1), ("skip", 0)])
def test_after_a_6_minute_outage_the_policy_decides_how_many_past_runs_start(
        store: Store, missed: str, runs: int) -> None:
    every5(store, missed=missed)
    tick(store, T0)  # created 00:00:05, :10, :15; then scheduler and workers are down
    report = tick(store, T0 + 360)
    assert claimable(store) == runs
    if missed == "latest":
        assert claim_and_execute(store, T0 + 361) == ["Completed"]
        assert store.list_runs(RunFilter(state="Completed"))[0].scheduled_for == T0 + 360
    skipped = store.list_runs(RunFilter(state="Cancelled", limit=1000))
    assert len(skipped) == report.skipped == (0 if missed == "all" else 3)
    for run in skipped:
        assert "skipped: missed" in (store.run_history(run.id)[-1].message or "")
    # The schedule goes on: the next runs are created ahead, as before the outage.
    assert len(store.list_runs(RunFilter(state="Scheduled", limit=1000))) == 3


@pytest.mark.parametrize(("missed", "runs"), [("all", 72), ("latest", 1), ("skip", 1)])
def test_while_workers_are_down_the_policy_keeps_the_queue_short(
        store: Store, missed: str, runs: int) -> None:
    every5(store, missed=missed)
    for now in range(int(T0), int(T0) + 361, 5):  # the scheduler ticks; no worker for 6 min
        tick(store, float(now), grace_s=600.0)
    # latest and skip keep only the one due at 00:06:00: each earlier one was skipped when
    # the next became due.
    assert claimable(store) == runs


@pytest.mark.parametrize(("missed", "state"), [("all", "Pending"), ("latest", "Pending"),
                                               ("skip", "Cancelled")])
def test_skip_also_drops_a_run_not_started_a_minute_after_its_time(
        store: Store, missed: str, state: str) -> None:
    deploy(store, deployed_flows.tidy, name="hourly", now=T0, queue="etl",
           schedules=[Schedule.cron("0 * * * *")], missed=missed)
    first = scheduled_run_id("hourly", at("2026-11-22T01:00"))
    assert tick(store, at("2026-11-22T00:59:30")).created == [first]
    for now in ("01:00:02", "01:00:59"):
        tick(store, at(f"2026-11-22T{now}"))
        assert store.get_run(first).state == "Pending"  # due, not yet missed
    tick(store, at("2026-11-22T01:01:01"))  # no worker took it within 60 s
    assert store.get_run(first).state == state


def test_scheduler_periods_that_do_not_fit_are_refused() -> None:
    check_timing(5.0, 60.0, 600.0, 60.0)
    with pytest.raises(ConfigError, match="--ahead at least --every"):
        check_timing(120.0, 60.0, 600.0, 300.0)
    with pytest.raises(ConfigError, match="--missed-after more than --every"):
        check_timing(5.0, 60.0, 600.0, 5.0)


def test_a_changed_schedule_leaves_no_run_of_the_old_one(store: Store) -> None:
    five, seven, eleven = Schedule.interval(5), Schedule.interval(7), Schedule.interval(11)
    deploy(store, deployed_flows.tidy, name="two", now=T0, queue="etl",
           schedules=[five, seven], missed="all")
    tick(store, T0)
    deploy(store, deployed_flows.tidy, name="two", now=T0 + 1, queue="etl",
           schedules=[seven, eleven], missed="all")
    tick(store, T0 + 1)

    def expected(until: float) -> list[float]:
        return sorted(set(seven.between(T0, until)) | set(eleven.between(T0 + 1, until)))

    fire_times = sorted(r.scheduled_for for r in store.list_runs(RunFilter(limit=100)))
    assert fire_times == sorted(set(seven.between(T0, T0 + 61, 3))
                                | set(eleven.between(T0 + 1, T0 + 61, 3)))
    assert not set(fire_times) - set(expected(T0 + 61))  # no run of the 5 s schedule
    for now in range(int(T0) + 2, int(T0) + 41):
        tick(store, float(now))
    due = sorted(r.scheduled_for for r in store.list_runs(RunFilter(limit=100))
                 if r.state in ("Pending", "Late"))
    assert due == expected(T0 + 40)

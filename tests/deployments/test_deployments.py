"""Deployments: versions, parameters checked when a run is created and typed where it runs,
schedules driven by an injected time across a daylight-saving change, no duplicate runs
after a restart, missed-run policies, Late runs. On SQLite and PostgreSQL."""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import pytest

from stead.core.process import current_owner
from stead.core.runtime import close_stores, store_for
from stead.core.serialization import decode
from stead.deployments.registry import deploy, run_deployment
from stead.deployments.scheduler import scheduled_run_id, tick
from stead.deployments.schedules import Schedule
from stead.errors import ConfigError, DeploymentNotFound, ParameterError
from stead.store.base import RunFilter, Store, WorkerRecord
from stead.worker.child import execute
from tests.conftest import SCRIPTS

if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

import deployed_flows


@pytest.fixture(autouse=True)
def _every_backend(backend: str) -> str:
    return backend


@pytest.fixture
def store() -> Store:
    return store_for()


def at(text: str) -> float:
    """Unix seconds of an ISO time in UTC, e.g. at("2026-03-28T08:00")."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def worker_record() -> WorkerRecord:
    return WorkerRecord("w", "test-worker", "host", 1, '["etl"]', 1, "running", 0.0, 0.0)


def claim_and_execute(store: Store, now: float) -> list[str]:
    """Claim every runnable run of queue etl and execute it here, as a worker child would."""
    states = []
    while True:
        runs = store.claim_runs(["etl"], worker_record(), current_owner(), 1, now, 30.0)
        if not runs:
            return states
        states.append(execute(store, runs[0]).state)


def test_deploying_again_makes_a_version_only_when_something_changed(store: Store) -> None:
    first = deploy(store, deployed_flows.report, name="daily", now=1.0, queue="etl")
    same = deploy(store, deployed_flows.report, name="daily", now=2.0, queue="etl")
    changed = deploy(store, deployed_flows.report, name="daily", now=3.0, queue="etl",
                     params={"region": "us"})
    assert (first.deployment.version, first.created) == (1, True)
    assert (same.deployment.version, same.created) == (1, False)
    assert (changed.deployment.version, changed.created) == (2, True)
    assert store.get_deployment("daily").version == 2
    assert store.get_deployment("daily", 1).params == "{}"
    assert [d.name for d in store.list_deployments()] == ["daily"]
    with pytest.raises(DeploymentNotFound, match="no deployment 'nope'"):
        store.get_deployment("nope")


def test_a_run_records_its_version_and_gets_typed_parameters(store: Store) -> None:
    deploy(store, deployed_flows.report, name="daily", now=1.0, queue="etl",
           params={"region": "us"})
    run, created = run_deployment(store, "daily", 5.0, params={
        "day": "2026-11-21", "window": {"start": 1, "end": 4}})
    assert created and run.state == "Pending" and run.queue == "etl"
    assert (run.deployment, run.deployment_version) == ("daily", 1)
    assert claim_and_execute(store, 6.0) == ["Completed"]
    assert decode(store.get_run(run.id).result) == "date 2026-11-21 us 10 1-4"


@pytest.mark.parametrize(("params", "message"), [
    ({}, "parameter 'day' is required"),
    ({"day": "2026-13-45"}, "parameter 'day'"),
    ({"day": "2026-11-21", "limit": "many"}, "parameter 'limit'"),
    ({"day": "2026-11-21", "region": "mars"}, "parameter 'region'"),
    ({"day": "2026-11-21", "window": {"start": 1}}, "parameter 'window"),
    ({"day": "2026-11-21", "colour": "red"}, "unknown parameter 'colour'"),
])
def test_bad_parameters_are_refused_when_the_run_is_created(store: Store, params: dict,
                                                            message: str) -> None:
    deploy(store, deployed_flows.report, name="daily", now=1.0, queue="etl")
    with pytest.raises(ParameterError, match=message):
        run_deployment(store, "daily", 2.0, params=params)
    assert store.list_runs(RunFilter()) == []  # nothing was created


def test_a_schedule_needs_every_parameter_and_a_good_name(store: Store) -> None:
    with pytest.raises(ParameterError, match="'day'"):
        deploy(store, deployed_flows.report, name="daily", now=1.0,
               schedules=[Schedule.cron("0 2 * * *")])
    with pytest.raises(ConfigError, match="deployment name"):
        deploy(store, deployed_flows.tidy, name="bad:name", now=1.0)


def test_a_cron_schedule_follows_local_time_across_a_dst_change(store: Store) -> None:
    # 09:00 in Berlin is 08:00 UTC before 2026-03-29 (CET) and 07:00 UTC after (CEST).
    deploy(store, deployed_flows.tidy, name="morning", now=at("2026-03-27T00:00"), queue="etl",
           schedules=[Schedule.cron("0 9 * * *", "Europe/Berlin")])
    created = []
    now = at("2026-03-27T00:00")
    while now < at("2026-04-01T00:00"):  # the scheduler ticking every 6 hours
        created += tick(store, now, ahead_s=3600.0).created
        now += 6 * 3600
    fire_times = [store.get_run(rid).scheduled_for for rid in created]
    assert fire_times == [at("2026-03-27T08:00"), at("2026-03-28T08:00"),
                          at("2026-03-29T07:00"), at("2026-03-30T07:00"),
                          at("2026-03-31T07:00")]
    assert created[2] == "morning@20260329T070000Z"


def test_restarting_the_scheduler_creates_no_duplicates(store: Store) -> None:
    deploy(store, deployed_flows.tidy, name="often", now=at("2026-11-22T00:00"), queue="etl",
           schedules=[Schedule.interval(600)])
    now = at("2026-11-22T00:00")
    first = tick(store, now, ahead_s=3600.0, ahead_runs=6).created
    close_stores()  # a restarted scheduler: a new process, a new store
    again = store_for()
    assert tick(again, now, ahead_s=3600.0, ahead_runs=6).created == []
    # nothing new is due yet
    assert tick(again, now + 60, ahead_s=3600.0, ahead_runs=6).created == []
    assert len(first) == 6  # 00:10 ... 01:00
    assert len(again.list_runs(RunFilter(limit=100))) == 6
    # Two schedulers at once, or a lost schedule row: run ids are the fire times.
    assert run_deployment(again, "often", now, run_id=first[0],
                          scheduled_for=at("2026-11-22T00:10"))[1] is False


@pytest.mark.parametrize(("missed", "past_runs"), [("all", 6), ("latest", 1), ("skip", 0)])
def test_missed_runs_after_an_outage_follow_the_policy(store: Store, missed: str,
                                                       past_runs: int) -> None:
    deploy(store, deployed_flows.tidy, name="hourly", now=at("2026-11-22T00:00"), queue="etl",
           schedules=[Schedule.cron("0 * * * *")], missed=missed)
    tick(store, at("2026-11-22T00:00"), ahead_s=0.0)
    # The scheduler was down from 00:00 to 06:30: 01:00 ... 06:00 passed meanwhile.
    report = tick(store, at("2026-11-22T06:30"), ahead_s=0.0, grace_s=3600.0)
    assert len(report.created) == past_runs
    if missed == "latest":
        assert report.created == [scheduled_run_id("hourly", at("2026-11-22T06:00"))]


def test_runs_become_due_then_late_and_workers_take_both(store: Store) -> None:
    deploy(store, deployed_flows.tidy, name="t", now=at("2026-11-22T00:00"), queue="etl",
           schedules=[Schedule.interval(3600)], missed="all")
    report = tick(store, at("2026-11-22T00:00"), ahead_s=2 * 3600.0)
    first, second = report.created
    assert store.get_run(first).state == "Scheduled"
    assert claim_and_execute(store, at("2026-11-22T00:30")) == []  # not due yet
    tick(store, at("2026-11-22T01:00"), ahead_s=0.0, grace_s=600.0)
    assert store.get_run(first).state == "Pending"
    tick(store, at("2026-11-22T02:20"), ahead_s=0.0, grace_s=600.0)
    assert store.get_run(first).state == "Late"  # 01:00 + 10 min grace passed
    assert store.get_run(second).state == "Late"  # due at 02:00, promoted and late
    assert claim_and_execute(store, at("2026-11-22T02:21")) == ["Completed", "Completed"]
    history = [c.state for c in store.run_history(first)]
    assert history == ["Scheduled", "Pending", "Late", "Running", "Completed"]


def test_paused_schedules_create_nothing(store: Store) -> None:
    deploy(store, deployed_flows.tidy, name="p", now=at("2026-11-22T00:00"), queue="etl",
           schedules=[Schedule.interval(600)])
    assert store.set_schedule_active("p", False, at("2026-11-22T00:00")) == 1
    assert tick(store, at("2026-11-22T00:00")).created == []
    store.set_schedule_active("p", True, at("2026-11-22T00:00"))
    assert tick(store, at("2026-11-22T00:00"), ahead_s=600.0).created == [
        scheduled_run_id("p", at("2026-11-22T00:10"))]

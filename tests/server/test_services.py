"""The server's background services: a real server runs the scheduler and the lease reaper;
the reaper and retention rounds do their work on the test's database; a failing round is
logged and the services go on."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import deployed_flows  # tests/scripts, put on sys.path by tests/server/conftest.py
import pytest

from stead.core.process import current_owner
from stead.deployments.registry import deploy
from stead.deployments.schedules import Schedule
from stead.server.services import Services, reaper_round, retention_round
from stead.settings import reset_settings
from stead.store.base import RunFilter, RunRecord, Store, WorkerRecord
from tests.server.conftest import Server

DAY = 86_400.0


def lose_a_run(store: Store) -> RunRecord:
    """A run claimed by a worker that stopped heartbeating long ago: its lease lapsed."""
    store.create_run(RunRecord(id="lost", flow_name="etl", state="Pending", queue="q",
                               created_at=1.0))
    worker = WorkerRecord("w", "gone", "host", 1, '["q"]', 1, "running", 1.0, 1.0)
    [claimed] = store.claim_runs(["q"], worker, current_owner(), 1, time.time(), 0.05)
    time.sleep(0.2)  # leases are measured on the database's clock: let this one lapse
    return claimed


def test_a_server_schedules_runs_and_recovers_lost_ones(serve: Callable[..., Server],
                                                        db: Store) -> None:
    deploy(db, deployed_flows.tidy, name="tick", now=time.time(),
           schedules=[Schedule.interval(20)])  # fires within the scheduler's 60 s horizon
    lose_a_run(db)
    server = serve(services=True)  # each service does a first round at once
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        scheduled = db.list_runs(RunFilter(deployment="tick"))
        if scheduled and db.get_run("lost").state == "Pending":
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"the services did nothing:\n{server.output()}")
    assert all(r.id.startswith("tick@") for r in scheduled)
    assert "scheduler, lease reaper and retention running" in server.output()


def test_the_reaper_round_requeues_runs_whose_lease_lapsed(db: Store) -> None:
    claimed = lose_a_run(db)
    reaper_round(db)
    run = db.get_run("lost")
    assert (run.state, run.recoveries) == ("Pending", 1)
    assert run.lease_epoch > claimed.lease_epoch  # the lost executor is fenced off


def test_the_retention_round_prunes_only_when_retention_is_set(
        db: Store, backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if backend == "http":
        pytest.skip("pruning is done where the database is, not through a server")
    now = time.time()
    db.create_run(RunRecord(id="old", flow_name="etl", state="Completed",
                            created_at=now - 10 * DAY, ended_at=now - 9 * DAY))
    db.create_run(RunRecord(id="recent", flow_name="etl", state="Completed",
                            created_at=now - DAY, ended_at=now - DAY))
    db.create_run(RunRecord(id="waiting", flow_name="etl", state="Pending",
                            created_at=now - 10 * DAY))
    retention_round(db)  # STEAD_RETENTION_DAYS unset: keep everything
    assert len(db.list_runs(RunFilter())) == 3
    monkeypatch.setenv("STEAD_RETENTION_DAYS", "7")
    reset_settings()
    retention_round(db)
    assert sorted(r.id for r in db.list_runs(RunFilter())) == ["recent", "waiting"]


def test_a_failing_round_is_logged_and_every_service_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    done: list[str] = []

    def broken(store: Store) -> None:
        done.append("broken")
        raise RuntimeError("database on fire")

    services = Services(store=None, rounds=[  # type: ignore[arg-type]
        ("broken", broken, 0.01), ("fine", lambda store: done.append("fine"), 0.01)])
    with caplog.at_level(logging.ERROR, logger="stead.server"):
        services.start()
        time.sleep(0.3)
        services.stop()
    assert done.count("broken") >= 3 and done.count("fine") >= 3
    assert "broken: this round failed; trying again in 0.01 s" in caplog.text
    assert "database on fire" in caplog.text

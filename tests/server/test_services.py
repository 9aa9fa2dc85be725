"""The server's background services: the lease reaper and retention do their rounds on the
test's database; a failing round is logged and the services go on."""

from __future__ import annotations

import logging
import time

import pytest

from stead.core.process import current_owner
from stead.server.services import Services, reaper_round, retention_round
from stead.settings import reset_settings
from stead.store.base import RunFilter, RunRecord, Store, WorkerRecord

DAY = 86_400.0


def test_the_reaper_round_requeues_runs_whose_lease_lapsed(db: Store) -> None:
    db.create_run(RunRecord(id="lost", flow_name="etl", state="Pending", queue="q",
                            created_at=1.0))
    worker = WorkerRecord("w", "gone", "host", 1, '["q"]', 1, "running", 1.0, 1.0)
    long_ago = time.time() - 100
    [claimed] = db.claim_runs(["q"], worker, current_owner(), 1, long_ago, 5.0)
    reaper_round(db)
    run = db.get_run("lost")
    assert (run.state, run.recoveries) == ("Pending", 1)
    assert run.lease_epoch > claimed.lease_epoch  # the lost executor is fenced off


def test_the_retention_round_prunes_only_when_retention_is_set(
        db: Store, monkeypatch: pytest.MonkeyPatch) -> None:
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

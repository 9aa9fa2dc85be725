"""PostgreSQL outages under running workers, on a cluster of the test's own: longer than a
lease, no run of a live worker is recovered; longer than the store's retry window, runs in
flight are handed back to their queue (not Failed, not counted as recoveries) and finish
once the server is back. And the reaper's grace after an outage, with its clock injected."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import queued_flows

from stead.core.runtime import close_stores, store_for
from stead.errors import StoreError
from stead.settings import reset_settings
from stead.store.base import RunFilter, Store
from tests.postgres import Cluster, create_database
from tests.worker.conftest import Workers, effects, wait_until


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    cluster = Cluster()  # never stop a server someone else started
    yield cluster
    close_stores()
    cluster.stop()


@pytest.fixture
def outage_db(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Store]:
    url = create_database(cluster.url, "stead_outage")
    monkeypatch.setenv("STEAD_DATABASE_URL", url)
    close_stores()
    reset_settings()
    return url, store_for(url)


def runs(db: Store) -> list:
    return db.list_runs(RunFilter(limit=10_000))


def outage(cluster: Cluster, seconds: float) -> None:
    cluster._ctl("stop", "-m", "fast")
    import time

    time.sleep(seconds)
    cluster._ctl("start")


def test_an_outage_longer_than_a_lease_recovers_no_run_of_a_live_worker(
        cluster: Cluster, outage_db: tuple[str, Store], tmp_path: Path) -> None:
    url, db = outage_db
    out = tmp_path / "effects.txt"
    ids = [queued_flows.twenty.enqueue(out=str(out), queue="etl") for _ in range(16)]
    ws = Workers(url, tmp_path)
    try:
        for _ in range(2):
            ws.start("-q", "etl", "-c", "2", "--lease", "3", TASK_SLEEP="0.05")
        wait_until(lambda: Counter(r.state for r in runs(db))["Completed"] >= 2, 120,
                   "some completed runs")
        outage(cluster, 9.0)  # three leases; well within the store's 60 s retry window
        wait_until(lambda: all(r.state == "Completed" for r in runs(db)), 180,
                   "every run to complete")
        for run in runs(db):
            history = [(c.state, c.message) for c in db.run_history(run.id)]
            assert run.recoveries == 0 and "Crashed" not in dict(history), history
        keys = [key for key, _ in effects(out)]
        assert sorted(keys) == sorted({f"{rid}/{k}" for rid in ids for k in range(1, 21)})
        assert all(w.poll() is None for w in ws.procs)
    finally:
        ws.stop_all()


def test_an_outage_longer_than_the_retry_window_hands_runs_back_to_their_queue(
        cluster: Cluster, outage_db: tuple[str, Store], tmp_path: Path) -> None:
    url, db = outage_db
    out = tmp_path / "effects.txt"
    ids = [queued_flows.twenty.enqueue(out=str(out), queue="etl") for _ in range(8)]
    ws = Workers(url, tmp_path)
    try:
        for _ in range(2):
            ws.start("-q", "etl", "-c", "2", "--lease", "3", TASK_SLEEP="0.1",
                     STEAD_STORE_RETRY_SECONDS="1.5")
        wait_until(lambda: Counter(r.state for r in runs(db))["Running"] >= 2, 120,
                   "runs in flight")
        outage(cluster, 10.0)  # far past the 1.5 s retry window of every store call
        wait_until(lambda: all(r.state == "Completed" for r in runs(db)), 180,
                   "every run to complete")
        assert sum(r.recoveries for r in runs(db)) == 0
        logs = "".join(ws.log(w) for w in ws.procs)
        assert "handed back" in logs, [line for line in logs.splitlines() if " | " in line]
        assert "Traceback" not in logs, logs[logs.index("Traceback") - 2000:][:6000]
        handed = [rid for rid in ids if any(c.message and "could not reach the database"
                                            in c.message for c in db.run_history(rid))]
        assert handed  # the runs in flight went back to their queue and were finished
        # Every task ran; only a step whose outcome could not be recorded ran again.
        keys = Counter(key for key, _ in effects(out))
        assert set(keys) == {f"{rid}/{k}" for rid in ids for k in range(1, 21)}
        assert all(n <= 2 for n in keys.values())
        assert all(w.poll() is None for w in ws.procs)
    finally:
        ws.stop_all()


def test_a_reaper_waits_a_lease_of_healthy_connectivity_after_an_outage(
        cluster: Cluster, outage_db: tuple[str, Store], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    from stead.worker.recovery import Reaper

    monkeypatch.setenv("STEAD_STORE_RETRY_SECONDS", "0.5")
    reset_settings()
    close_stores()
    url, _ = outage_db
    db = store_for(url)
    now = [1000.0]
    reaper = Reaper(db, lease_s=30.0, clock=lambda: now[0])
    cluster._ctl("stop", "-m", "fast")
    try:
        with pytest.raises(StoreError, match="STEAD_STORE_RETRY_SECONDS"):
            reaper.reap(0.0)
    finally:
        cluster._ctl("start")
    from stead.core.process import current_owner
    from stead.store.base import RunRecord, WorkerRecord

    db.create_run(RunRecord(id="lost", flow_name="f", state="Pending", queue="q",
                            created_at=1.0))
    gone = WorkerRecord("w", "gone", "host", 1, '["q"]', 1, "running", 1.0, 1.0)
    db.claim_runs(["q"], gone, current_owner(), 1, 1.0, 0.01)
    import time

    time.sleep(0.1)
    assert reaper.waiting() == 30.0  # (the calls above may have retried: still at 1000)
    now[0] += 29.0
    assert reaper.waiting() > 0 and reaper.reap(2.0) == 0  # within the grace
    assert db.get_run("lost").state == "Running"
    now[0] += 2.0
    assert reaper.waiting() == 0 and reaper.reap(3.0) == 1
    assert db.get_run("lost").state == "Pending"

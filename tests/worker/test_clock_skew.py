"""Workers whose clocks disagree: leases and tag slots are measured on the database's clock,
so a reaper whose clock is ahead takes no healthy run, a worker whose clock is behind still
gets a full lease, and a heartbeat retried through an outage extends the lease from when it
was written. Each test runs on SQLite, PostgreSQL and through a server (the `db` fixture)."""

from __future__ import annotations

import time

from stead.core.process import current_owner
from stead.store.base import Fence, Limit, RunRecord, Store, WorkerRecord
from stead.worker.recovery import reap

SKEW = 600.0  # ten minutes: no lease in these tests is that long


def claim(db: Store, run_id: str, now: float, lease_s: float) -> RunRecord:
    db.create_run(RunRecord(id=run_id, flow_name="f", state="Pending", queue="q",
                            created_at=1.0))
    worker = WorkerRecord("w1", "alpha", "host-a", 1, '["q"]', 1, "running", now, now)
    [run] = db.claim_runs(["q"], worker, current_owner(), 1, now, lease_s)
    return run


def test_a_reaper_whose_clock_is_ahead_recovers_no_healthy_run(db: Store) -> None:
    claim(db, "healthy", time.time(), lease_s=30.0)
    assert reap(db, time.time() + SKEW) == 0
    assert db.get_run("healthy").state == "Running"


def test_a_worker_whose_clock_is_behind_still_holds_a_full_lease(db: Store) -> None:
    run = claim(db, "behind", time.time() - SKEW, lease_s=30.0)
    assert run.lease_expires_at is not None and run.lease_expires_at > time.time() + 20
    assert reap(db, time.time()) == 0
    assert db.get_run("behind").state == "Running"


def test_a_heartbeat_stamped_long_ago_extends_the_lease_from_when_it_is_written(
        db: Store) -> None:
    # As a heartbeat whose first attempt was before an outage longer than the lease.
    run = claim(db, "r1", time.time(), lease_s=0.2)
    time.sleep(0.5)
    worker = WorkerRecord("w1", "alpha", "host-a", 1, '["q"]', 1, "running", 0.0, 0.0)
    fence = Fence("r1", run.lease_epoch)
    assert db.heartbeat(worker, [fence], time.time() - SKEW, 30.0) == [fence]
    assert db.get_run("r1").lease_expires_at > time.time() + 20  # type: ignore[operator]
    assert reap(db, time.time()) == 0


def test_a_lease_lapses_on_the_database_clock_whatever_the_reaper_s_clock(db: Store) -> None:
    claim(db, "lost", time.time(), lease_s=0.2)
    time.sleep(0.5)
    assert reap(db, time.time() - SKEW) == 1  # a reaper far behind still sees it lapsed
    assert db.get_run("lost").state == "Pending"


def test_a_host_whose_clock_is_ahead_does_not_take_a_held_tag_slot(db: Store) -> None:
    db.set_limit(Limit("db", concurrency=1))
    held = db.take_slots(["db"], "here/1", time.time(), 30.0)
    assert held.granted
    ahead = db.take_slots(["db"], "there/1", time.time() + SKEW, 30.0)
    assert not ahead.granted
    behind = db.take_slots(["db"], "behind/1", time.time() - SKEW, 30.0)
    assert not behind.granted
    db.release_slots(held.ids)
    late = db.take_slots(["db"], "behind/1", time.time() - SKEW, 30.0)
    assert late.granted  # a host behind gets a slot that lasts: renewal keeps it
    db.renew_slots(late.ids, 30.0)
    assert not db.take_slots(["db"], "there/2", time.time() + SKEW, 30.0).granted

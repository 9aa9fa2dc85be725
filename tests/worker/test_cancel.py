"""Cancelling runs: a queued run leaves its queue; a running run's worker stops its process,
records Cancelled and frees its slots; a parent takes its child runs with it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import queued_flows

from stead.errors import RunConflict
from stead.store.base import Limit, RunRecord, Store
from tests.worker.conftest import Workers, effects, wait_until


def test_cancelling_a_queued_run_removes_it(workers: Workers, db: Store, tmp_path: Path) -> None:
    out = str(tmp_path / "effects.txt")
    gone = queued_flows.twenty.enqueue(out=out, queue="q", n=2)
    kept = queued_flows.twenty.enqueue(out=out, queue="q", n=2)
    assert db.cancel_run(gone, 1.0, "not needed") == "Cancelled"
    workers.start("-q", "q", "-c", "1")
    wait_until(lambda: db.get_run(kept).state == "Completed", 60, "the other run")
    assert db.get_run(gone).state == "Cancelled"
    assert not any(key.startswith(gone) for key, _ in effects(Path(out)))
    with pytest.raises(RunConflict, match="Completed"):
        db.cancel_run(kept, 2.0, "too late")


def test_cancelling_a_running_run_stops_it_and_frees_its_slot(workers: Workers, db: Store,
                                                               tmp_path: Path) -> None:
    db.set_limit(Limit("db", concurrency=1))
    out = str(tmp_path / "effects.txt")
    stuck = queued_flows.tagged.enqueue(out=out, n=1, seconds=600.0, queue="q")
    w = workers.start("-q", "q", "-c", "2")
    wait_until(lambda: db.get_run(stuck).state == "Running" and db.load_steps(stuck) == {}
               and _slot_taken(db), 60, "the run to hold the tag's slot")
    waiting = queued_flows.tagged.enqueue(out=out, n=1, seconds=0.0, queue="q")
    assert db.cancel_run(stuck, 0.0, "stop it") == "Cancelling"
    wait_until(lambda: db.get_run(stuck).state == "Cancelled", 30, "the run to be Cancelled")
    # The slot it held is free at once: the waiting run gets it long before any lease lapses.
    wait_until(lambda: db.get_run(waiting).state == "Completed", 30, "the waiting run")
    history = [c.state for c in db.run_history(stuck)]
    assert history[-2:] == ["Cancelling", "Cancelled"]
    assert "Cancelled" in workers.log(w) and w.poll() is None


def _slot_taken(db: Store) -> bool:
    """Whether the tag's only slot is held (a probe that gets it gives it back at once)."""
    grant = db.take_slots(["db"], "probe/1", time.time(), 1.0)
    if grant.granted:
        db.release_slots(grant.ids)
    return not grant.granted


def test_cancelling_a_parent_cancels_its_waiting_children(db: Store) -> None:
    for run_id, state, parent in (("root", "Running", None), ("root:1", "Running", "root"),
                                  ("root:2", "Pending", "root"), ("rootless", "Pending", None)):
        db.create_run(RunRecord(id=run_id, flow_name="f", state=state, parent_id=parent,
                                created_at=1.0), "test")
    assert db.cancel_run("root", 2.0, "stop") == "Cancelling"
    assert [db.get_run(r).state for r in ("root", "root:1", "root:2", "rootless")] == [
        "Cancelling", "Cancelling", "Cancelled", "Pending"]
    assert db.finish_cancel("root", 3.0, "stopped")
    assert [db.get_run(r).state for r in ("root", "root:1", "root:2")] == ["Cancelled"] * 3
    assert not db.finish_cancel("root", 4.0, "again")

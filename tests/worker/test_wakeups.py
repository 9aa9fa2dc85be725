"""PostgreSQL wakes an idle worker when a run becomes claimable (LISTEN/NOTIFY, migration
0015), so a run does not wait for the worker's next poll. The workers here poll every 30 s:
a run that starts within seconds was started by a wake-up."""

from __future__ import annotations

from pathlib import Path

import pytest
import queued_flows  # type: ignore[import-not-found]  # tests/scripts

from stead.store.base import Store
from tests.worker.conftest import Workers, wait_until

ON_POSTGRES = pytest.mark.parametrize("backend", ["postgres"], indirect=True)
SLOW_POLL = "30"


def completed(db: Store, run_id: str) -> bool:
    return db.get_run(run_id).state == "Completed"


def idle_worker(workers: Workers, db: Store, out: str) -> None:
    """A worker polling every 30 s that has just found its queue empty."""
    first = queued_flows.fenced.enqueue(out=out, seconds=0.0, queue="q")
    workers.start("-q", "q", "-c", "1", "--poll", SLOW_POLL)
    wait_until(lambda: completed(db, first), 60, "the first run")  # then: claims, finds none


@ON_POSTGRES
def test_an_idle_worker_starts_a_new_run_without_waiting_for_its_poll(
        workers: Workers, db: Store, tmp_path: Path) -> None:
    out = str(tmp_path / "effects.txt")
    idle_worker(workers, db, out)
    for _ in range(3):  # each one wakes it again
        run_id = queued_flows.fenced.enqueue(out=out, seconds=0.0, queue="q")
        wait_until(lambda rid=run_id: completed(db, rid), 15, "the run, before the 30 s poll")


@ON_POSTGRES
def test_lifting_a_queue_limit_wakes_its_workers(workers: Workers, db: Store,
                                                 tmp_path: Path) -> None:
    out = str(tmp_path / "effects.txt")
    idle_worker(workers, db, out)
    db.set_queue("q", 0)  # closed: nothing may start
    run_id = queued_flows.fenced.enqueue(out=out, seconds=0.0, queue="q")
    db.set_queue("q", None)
    wait_until(lambda: completed(db, run_id), 15, "the run, before the 30 s poll")


@ON_POSTGRES
def test_a_worker_is_woken_for_its_queue_among_many_runs_of_another(
        workers: Workers, db: Store, tmp_path: Path) -> None:
    """Notifications name the queue: a worker of queue q skips those of queue other, and
    still starts its own run at once."""
    out = str(tmp_path / "effects.txt")
    idle_worker(workers, db, out)
    before = db.get_run(queued_flows.fenced.enqueue(out=out, seconds=0.0, queue="other"))
    for _ in range(20):
        queued_flows.fenced.enqueue(out=out, seconds=0.0, queue="other")
    mine = queued_flows.fenced.enqueue(out=out, seconds=0.0, queue="q")
    wait_until(lambda: completed(db, mine), 15, "the run of its own queue")
    assert db.get_run(before.id).state == "Pending"  # never claimed: another queue

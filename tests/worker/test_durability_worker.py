"""A worker executes an enqueued run at the durability level recorded on it."""

from __future__ import annotations

import durability_flows

from stead.core.serialization import decode
from stead.store.base import Store
from tests.worker.conftest import Workers, wait_until


def test_a_worker_honours_the_level_recorded_on_the_run(workers: Workers, db: Store) -> None:
    durability_flows.probe.enqueue(queue="dur", run_id="batched",
                                   durability="batched")  # per run
    durability_flows.probe_fsync.enqueue(queue="dur", run_id="flow-option")  # the flow's
    durability_flows.probe.enqueue(queue="dur", run_id="default")  # STEAD_DURABILITY
    assert [db.get_run(i).durability for i in ("batched", "flow-option", "default")] == [
        "batched", "fsync", "process"]
    # The worker's own setting differs: the recorded level wins.
    workers.start("-q", "dur", STEAD_DURABILITY="fsync")
    wait_until(lambda: all(db.get_run(i).state == "Completed"
                           for i in ("batched", "flow-option", "default")), 60, "the runs")
    results = {i: decode(db.get_run(i).result or "null")
               for i in ("batched", "flow-option", "default")}
    # What the run's code saw: its level, and whether its steps went through a group.
    assert {i: (level, kind == "BatchedStore") for i, (level, kind) in results.items()} == {
        "batched": ("batched", True), "flow-option": ("fsync", False),
        "default": ("process", False)}

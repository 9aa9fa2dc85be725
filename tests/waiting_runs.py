"""Runs that wait, made with store verbs only (no engine): a run parked by `park_run` after a
real claim, a run whose process waits in place (`record_wait`), a finished run. Shared by
the CLI and API tests of durable waits."""

from __future__ import annotations

import json
import time

from pydantic import BaseModel

from stead.store.base import Fence, RunRecord, Store, WorkerRecord
from stead.store.waits import INPUT_TOPIC, StatusRecord, WaitRecord


class Approval(BaseModel):
    approved: bool
    approver: str
    note: str = ""


APPROVAL = {"schema": Approval.model_json_schema(), "description": "refund 20 for A-1?"}


def wait_of(run_id: str, kind: str, topic: str | None = None, wake_at: float | None = None,
            detail: dict[str, object] | None = None) -> WaitRecord:
    if kind == "input":
        topic, detail = INPUT_TOPIC, detail or APPROVAL
    return WaitRecord(run_id, kind, "2", topic=topic, wake_at=wake_at,
                      detail=json.dumps(detail or {}), since=time.time())


def parked(store: Store, run_id: str, kind: str, topic: str | None = None,
           wake_at: float | None = None, namespace: str = "default",
           queue: str = "q") -> RunRecord:
    """A run enqueued on `queue`, claimed by a worker and parked waiting for `kind`."""
    store.create_run(RunRecord(id=run_id, flow_name="refund", state="Pending",
                               created_at=time.time(), queue=queue, namespace=namespace),
                     "enqueued")
    me = WorkerRecord(f"w-{run_id}", "w", "host", 1, json.dumps([queue]), 1, "running",
                      time.time(), time.time())
    claimed = [r for r in store.claim_runs([queue], me, "host|1|1", 10, time.time(), 30.0)
               if r.id == run_id]
    assert claimed, f"run {run_id} was not claimed"
    run = claimed[0]
    state = store.park_run(run, wait_of(run_id, kind, topic, wake_at), time.time(),  # type: ignore[attr-defined]
                           Fence(run.id, run.lease_epoch))
    assert state == "Paused", state
    return store.get_run(run_id)


def waiting_in_place(store: Store, run_id: str, kind: str, topic: str | None = None,
                     wake_at: float | None = None, namespace: str = "default") -> RunRecord:
    """A run started directly (no queue) whose process waits in place for `kind`."""
    run, _ = store.create_run(RunRecord(id=run_id, flow_name="refund", state="Running",
                                        created_at=time.time(), started_at=time.time(),
                                        namespace=namespace), "started")
    store.record_wait(wait_of(run_id, kind, topic, wake_at))  # type: ignore[attr-defined]
    return run


def finished(store: Store, run_id: str, namespace: str = "default") -> RunRecord:
    run, _ = store.create_run(RunRecord(id=run_id, flow_name="refund", state="Completed",
                                        created_at=time.time(), ended_at=time.time(),
                                        result="1", namespace=namespace), "done")
    return run


def publish(store: Store, run_id: str, key: str, value: object) -> None:
    store.set_status(StatusRecord(run_id, key, json.dumps(value), time.time()))  # type: ignore[attr-defined]

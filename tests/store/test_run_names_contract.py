"""The storage contract for run names (migration 0013): `runs.name`, `runs.version` and
`steps.run_name` go through every verb that writes or reads them, on every backend (SQLite,
PostgreSQL, and the HTTP client in remote mode)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from stead.store import open_store
from stead.store.base import Fence, LogRecord, RunFilter, RunRecord, StepRecord, Store, WorkerRecord
from stead.store.migrate import upgrade_to

WORKER = WorkerRecord(id="w1", name="w1", host="h", pid=1, queues='["q"]', concurrency=4,
                      state="running", started_at=0.0, heartbeat_at=0.0)


def named_run(run_id: str, state: str = "Running", **fields: object) -> RunRecord:
    return RunRecord(id=run_id, flow_name="etl", state=state, created_at=time.time(),
                     name=f"etl-{run_id}", version="1.4.2", **fields)  # type: ignore[arg-type]


def test_a_runs_name_and_version_are_stored_listed_and_updated(store: Store) -> None:
    run, created = store.create_run(named_run("r1"), "started")
    assert created and (run.name, run.version) == ("etl-r1", "1.4.2")
    store.create_run(RunRecord(id="r2", flow_name="etl", state="Running"))
    assert (store.get_run("r1").name, store.get_run("r1").version) == ("etl-r1", "1.4.2")
    assert {r.id: (r.name, r.version) for r in store.list_runs(RunFilter())} == {
        "r1": ("etl-r1", "1.4.2"), "r2": (None, None)}
    unnamed = store.get_run("r2")
    unnamed.name, unnamed.version = "named-later", "2"  # as an executor names a claimed run
    unnamed.ended_at = 5.0
    store.transition_run(unnamed, "Completed", 5.0)
    assert (store.get_run("r2").name, store.get_run("r2").version) == ("named-later", "2")


def test_claims_return_the_name(store: Store) -> None:
    store.create_run(named_run("q1", state="Pending", queue="q"))
    [claimed] = store.claim_runs(["q"], WORKER, "owner", 1, time.time(), 30.0)
    assert (claimed.id, claimed.name, claimed.version) == ("q1", "etl-q1", "1.4.2")


def test_a_steps_display_name_goes_through_every_step_write(store: Store) -> None:
    store.create_run(named_run("s1"))
    store.record_step(StepRecord("s1", "1", "fetch", "task", "Completed", 1, 1.0, 2.0, "{}",
                                 "1", run_name="fetch-eu"))
    store.record_step(StepRecord("s1", "2", "fetch", "task", "Completed", 1, 1.0, 2.0, "{}",
                                 "1"))  # the short statement of a plain outcome
    store.record_steps([
        (StepRecord("s1", "3", "fetch", "task", "Completed", 1, 1.0, 2.0, "{}", "1",
                    run_name="fetch-us"), [LogRecord("s1", "3", 1.5, 20, "x")]),
        (StepRecord("s1", "4", "fetch", "task", "Completed", 1, 1.0, 2.0, "{}", "1"), None),
    ])
    store.mark_steps_running([StepRecord("s1", "5", "slow", "task", "Running", 1, 1.0,
                                         run_name="slow-1")])
    steps = store.load_steps("s1")
    assert {k: s.run_name for k, s in steps.items()} == {
        "1": "fetch-eu", "2": None, "3": "fetch-us", "4": None, "5": "slow-1"}
    assert store.get_step("s1", "3").run_name == "fetch-us"
    assert {s.name for s in steps.values()} == {"fetch", "slow"}  # the task names stay


def test_a_fenced_step_write_keeps_the_display_name(store: Store) -> None:
    store.create_run(named_run("f1", state="Pending", queue="q"))
    [claimed] = store.claim_runs(["q"], WORKER, "owner", 1, time.time(), 30.0)
    fence = Fence(claimed.id, claimed.lease_epoch)
    store.record_step(StepRecord("f1", "1", "fetch", "task", "Completed", 1, 1.0, 2.0, "{}",
                                 "1", run_name="fetch-1"), fence=fence)
    store.record_step(StepRecord("f1", "2", "fetch", "task", "Retrying", 1, 1.0, 2.0, "{}",
                                 history='[["Running",1.0,null]]', run_name="fetch-2"),
                      [LogRecord("f1", "2", 1.5, 30, "retrying")], fence=fence)
    assert {k: s.run_name for k, s in store.load_steps("f1").items()} == {
        "1": "fetch-1", "2": "fetch-2"}


def test_a_database_of_revision_0012_upgrades_with_its_rows_unnamed(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    upgrade_to(f"sqlite:///{path}", "0012")
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO runs (id, flow_name, state, entrypoint, params, created_at) "
                 "VALUES ('old', 'nightly', 'Completed', 'm:f', '{}', 1.0)")
    conn.commit()
    conn.close()
    store = open_store(f"sqlite:///{path}")  # the engine upgrades: no worker is live
    try:
        old = store.get_run("old")
        assert (old.name, old.version) == (None, None)
        store.create_run(named_run("new"))
        assert store.get_run("new").name == "etl-new"
    finally:
        store.close()

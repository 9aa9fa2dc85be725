"""Durable waits on workers: a long wait parks the run (Paused, no lease, its child process
free for other runs), the worker that parked it can be SIGKILLed, and another worker resumes
it when it is due — with a clock three days ahead (libfaketime) — without running any
finished step again. Each test runs on SQLite, PostgreSQL and through a server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import wait_flows

from stead.store.base import RunFilter, Store
from tests.faults.harness import faketime_env
from tests.worker.conftest import Workers, wait_until


def lines(out: Path) -> list[list[str]]:
    return [ln.split() for ln in out.read_text().splitlines()] if out.exists() else []


def test_a_three_day_sleep_parks_frees_the_child_and_resumes_on_another_worker(
        db: Store, workers: Workers, tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    rid = wait_flows.three_days.enqueue(out=str(out), queue="q")
    a = workers.start("-q", "q", "-c", "1")
    wait_until(lambda: db.get_run(rid).state == "Paused", 60, "the run to park")
    run = db.get_run(rid)
    assert run.worker_id is None and run.lease_expires_at is None  # no process holds it
    wait = db.get_wait(rid)
    assert wait is not None and wait.kind == "timer" and wait.parked
    assert wait.wake_at is not None and wait.wake_at > time.time() + 2.9 * 86400
    # The child that ran the first step is free: a second run executes on it meanwhile.
    other = wait_flows.quick.enqueue(out=str(out), queue="q")
    wait_until(lambda: db.get_run(other).state == "Completed", 60, "the second run")
    before, quick = lines(out)
    assert before[2] == "before" and quick[2] == "quick" and before[1] == quick[1]
    assert db.get_run(rid).state == "Paused"
    workers.kill(a)  # SIGKILL the worker (and its child) while the run is parked
    a.wait(10)
    # Three days later, on another worker's clock:
    b = workers.start("-q", "q", "-c", "1", **faketime_env("+3d"))
    wait_until(lambda: db.get_run(rid).state == "Completed", 60,
               f"the run to wake and finish: {workers.log(b)}")
    labels = [ln[2] for ln in lines(out)]
    assert labels == ["before", "quick", "after"]  # the step before the sleep ran once
    history = [h.message or "" for h in db.run_history(rid)]
    assert any("parked" in m and "sleeping until" in m for m in history)
    assert db.get_wait(rid) is None


def test_a_message_wakes_a_parked_run(db: Store, workers: Workers, tmp_path: Path) -> None:
    import stead

    out = tmp_path / "effects.txt"
    rid = wait_flows.waits_for_payment.enqueue(out=str(out), queue="q")
    workers.start("-q", "q", "-c", "1", STEAD_PARK_AFTER_SECONDS="0.2")
    wait_until(lambda: db.get_run(rid).state == "Paused", 60, "the run to park")
    wait = db.get_wait(rid)
    assert wait is not None and wait.kind == "message" and wait.topic == "payment"
    assert stead.get_status(rid, "stage") == "waiting for payment"  # no process holds it
    # Another process waits for a status the run publishes once it has the payment.
    reader = subprocess.Popen(
        [sys.executable, "-c", "import stead, sys; print(stead.get_status(sys.argv[1], 'ref', "
         "wait=60))", rid],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "STEAD_DATABASE_URL": workers.url})
    time.sleep(0.5)
    stead.send(rid, "payment", {"ref": "tx-1"}, idempotency_key="tx-1")
    wait_until(lambda: db.get_run(rid).state == "Completed", 60, "the run to finish")
    assert [ln[2] for ln in lines(out)] == ["before", "paid"]
    assert stead.get_status(rid, "stage") == "paid"
    assert reader.communicate(timeout=60)[0].strip() == "tx-1"


def test_cancelling_a_parked_run_is_immediate(db: Store, workers: Workers,
                                              tmp_path: Path) -> None:
    rid = wait_flows.three_days.enqueue(out=str(tmp_path / "e.txt"), queue="q")
    workers.start("-q", "q", "-c", "1")
    wait_until(lambda: db.get_run(rid).state == "Paused", 60, "the run to park")
    assert db.cancel_run(rid, time.time(), "not needed") == "Cancelled"
    assert db.get_run(rid).state == "Cancelled"
    assert db.get_wait(rid) is None


def test_a_parent_waiting_for_its_child_parks_and_is_woken_across_worker_kills(
        db: Store, workers: Workers, tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    rid = wait_flows.parent_waits.enqueue(out=str(out), seconds=3.0, queue="q")
    # One child process: the child run can only execute once its parent let go of it.
    a = workers.start("-q", "q", "-c", "1", "--lease", "2", STEAD_PARK_AFTER_SECONDS="0.2")
    child = f"{rid}:2"
    wait_until(lambda: db.get_run(rid).state == "Paused", 60, "the parent to park")
    wait_until(lambda: db.get_run(child).state == "Running", 60, "the child to start")
    workers.kill(a)  # SIGKILL the worker while the child runs and the parent is parked
    a.wait(10)
    workers.start("-q", "q", "-c", "1", "--lease", "2", STEAD_PARK_AFTER_SECONDS="0.2")
    wait_until(lambda: db.get_run(rid).state == "Completed", 90,
               f"the parent to finish: {db.get_run(child).state}")
    from stead.core.handles import outcome

    assert outcome(db.get_run(rid)) == 42
    labels = [ln[2] for ln in lines(out)]
    assert labels.count("parent-before") == 1 and labels.count("parent-after") == 1
    assert labels.count("child-21") in (1, 2)  # the child's step may rerun after the kill
    children = [r for r in db.list_runs(RunFilter(parent_id=rid)) if r.id != rid]
    assert [r.id for r in children] == [child]  # enqueued once
    assert db.get_run(child).parent_id == rid


def test_a_long_retry_delay_parks_the_run_and_survives_the_worker(
        db: Store, workers: Workers, tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    rid = wait_flows.retries_in_an_hour.enqueue(out=str(out), queue="q")
    a = workers.start("-q", "q", "-c", "1")
    wait_until(lambda: db.get_run(rid).state == "Paused", 60, "the run to park")
    wait = db.get_wait(rid)
    assert wait is not None and wait.kind == "retry" and wait.parked
    workers.kill(a)
    a.wait(10)
    b = workers.start("-q", "q", "-c", "1", **faketime_env("+2h"))
    wait_until(lambda: db.get_run(rid).state == "Completed", 60,
               f"the retry an hour later: {workers.log(b)}")
    assert len(lines(out)) == 2  # two attempts, the second an hour later


def test_an_async_flow_parks_and_resumes_too(db: Store, workers: Workers,
                                             tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    rid = wait_flows.three_days_async.enqueue(out=str(out), queue="q")
    a = workers.start("-q", "q", "-c", "1")
    wait_until(lambda: db.get_run(rid).state == "Paused", 60, "the run to park")
    workers.kill(a)
    a.wait(10)
    b = workers.start("-q", "q", "-c", "1", **faketime_env("+3d"))
    wait_until(lambda: db.get_run(rid).state == "Completed", 60,
               f"the run to finish: {workers.log(b)}")
    assert [ln[2] for ln in lines(out)] == ["before", "after"]

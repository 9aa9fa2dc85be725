"""`Flow.enqueue` returns a RunHandle and `stead.get_run` gives one for any run: the run id
itself (old code using the id keeps working), its state, and a wait for its result.

Runs on SQLite, PostgreSQL and in remote mode (tests/core/conftest.py). Enqueued runs are
executed in a thread of this process, claimed as a worker would (tests/core/test_enqueue.py).
"""

from __future__ import annotations

import json
import pickle
import threading
import time

import pytest

import stead
from stead import FlowRunFailed, FlowRunStopped, RunHandle, RunNotFound, State, flow, get_run
from stead.core.runtime import result_files
from stead.errors import StoreError
from stead.store.base import Store, WorkerRecord

WORKER = WorkerRecord(id="w-handles", name="tester", host="here", pid=1, queues='["h"]',
                      concurrency=1, state="running", started_at=0.0, heartbeat_at=0.0)


@flow
def add(a: int, b: int) -> dict:
    return {"sum": a + b}


@flow
def big(n: int) -> str:
    return "x" * n


@flow
def fails(why: str) -> None:
    raise ValueError(why)


def execute_later(store: Store, delay: float) -> threading.Thread:
    """Claim the next run of queue "h" after `delay` and execute it, as a worker would."""
    def work() -> None:
        time.sleep(delay)
        [run] = store.claim_runs(["h"], WORKER, "here|1|1", 1, now=1e6, lease_s=30.0)
        flows = {"add": add, "big": big, "fails": fails}
        try:
            flows[run.flow_name].execute_claimed(run, store)
        except Exception:
            pass  # recorded as the run's error; the handle raises it

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def test_the_handle_is_the_run_id(store: Store) -> None:
    handle = add.enqueue(1, 2, queue="h", run_id="add-1")
    assert isinstance(handle, RunHandle) and isinstance(handle, str)
    assert handle == "add-1" and handle.id == "add-1" and type(handle.id) is str
    assert str(handle) == f"{handle}" == "add-1" and repr(handle) == "RunHandle('add-1')"
    assert {handle: 1}["add-1"] == 1
    assert json.dumps({"run": handle}) == '{"run": "add-1"}'
    assert store.get_run(handle).id == "add-1"  # the database drivers take it as text
    assert pickle.loads(pickle.dumps(handle)) == handle
    assert add.enqueue(1, 2, queue="h", run_id="add-1") == handle  # idempotent, as before


def test_result_waits_for_a_worker(store: Store) -> None:
    handle = add.enqueue(2, 3, queue="h")
    assert handle.state() is State.PENDING and not handle.done()
    worker = execute_later(store, 0.3)
    start = time.monotonic()
    assert handle.result(timeout=30) == {"sum": 5}
    assert time.monotonic() - start >= 0.25  # it did wait
    worker.join()
    assert handle.state() is State.COMPLETED and handle.done()
    assert get_run(handle.id).result() == {"sum": 5}


def test_a_large_result_is_read_from_its_file(store: Store) -> None:
    handle = big.enqueue(100_000, queue="h")
    execute_later(store, 0).join()
    assert store.get_run(handle).result_ref is not None  # not inline: in a result file
    assert handle.result(timeout=10) == "x" * 100_000


def test_a_result_file_this_host_cannot_read_is_explained(store: Store, backend: str) -> None:
    handle = big.enqueue(100_000, queue="h")
    execute_later(store, 0).join()
    ref = store.get_run(handle).result_ref
    assert ref is not None
    result_files().load(None, ref)  # readable here
    (result_files().root / ref).unlink()  # as if another host had executed the run
    hint = "STEAD_RESULT_INLINE_MAX" if backend == "http" else "cannot be read"
    with pytest.raises(StoreError, match=hint):
        handle.result(timeout=10)


def test_a_failed_run_raises_its_error(store: Store) -> None:
    handle = fails.enqueue("no input file", queue="h")
    worker = execute_later(store, 0.1)
    with pytest.raises(FlowRunFailed, match="ValueError: no input file") as caught:
        handle.result(timeout=30)
    worker.join()
    assert caught.value.run_id == handle.id
    assert any("raise ValueError(why)" in note for note in caught.value.__notes__)
    assert handle.state() is State.FAILED


def test_a_cancelled_run_raises_run_stopped(store: Store) -> None:
    handle = add.enqueue(1, 1, queue="h")
    assert store.cancel_run(handle, time.time(), "not needed") == "Cancelled"
    with pytest.raises(FlowRunStopped, match="was Cancelled") as caught:
        handle.result(timeout=5)
    assert caught.value.state == "Cancelled" and caught.value.run_id == handle.id


def test_result_times_out_saying_what_to_check() -> None:
    handle = add.enqueue(1, 1, queue="h")
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"still Pending after 0.3 s.*queue 'h'"):
        handle.result(timeout=0.3, poll=0.05)
    assert 0.25 <= time.monotonic() - start < 5
    with pytest.raises(ValueError, match="poll"):
        handle.result(poll=0)


def test_get_run_gives_a_handle_of_any_run() -> None:
    assert add.with_options(run_id="direct")(4, 5) == {"sum": 9}
    handle = stead.get_run("direct")
    assert handle == "direct" and handle.state() is State.COMPLETED
    assert handle.result() == {"sum": 9}


def test_get_run_of_an_unknown_id_says_what_to_do() -> None:
    with pytest.raises(RunNotFound, match=r"no run with id 'nope'.*stead runs ls"):
        get_run("nope")
    with pytest.raises(RunNotFound, match="takes a run id"):
        get_run(42)  # type: ignore[arg-type]

"""The storage contract of taking runs over: a takeover transition is a compare-and-set on
the lease epoch (two resumers of one run: one wins), and an enqueued run is resumed by hand
only by handing it back to its queue, fencing off its last executor. Every backend."""

from __future__ import annotations

import copy
import threading
import time

import pytest

from stead.errors import LeaseLost, RunConflict, RunNotFound
from stead.store.base import Fence, RunRecord, StepRecord, Store
from tests.store.test_leases import enqueue, history, worker


def direct_run(store: Store, run_id: str = "d1", state: str = "Running") -> RunRecord:
    run, created = store.create_run(RunRecord(id=run_id, flow_name="f", state=state,
                                              created_at=1.0, owner="host|1|1"), "started")
    assert created
    return run


def test_of_two_takeovers_from_the_same_read_only_one_wins(store: Store) -> None:
    direct_run(store)
    first, second = store.get_run("d1"), store.get_run("d1")
    store.transition_run(first, "Crashed", 2.0, "owner gone", expected=("Running",),
                         take_over=True)
    assert first.lease_epoch == store.get_run("d1").lease_epoch == 1
    # The second resumer read the run before the first took it: same state it expected
    # once the first moves it on again, but the epoch has moved.
    store.transition_run(first, "Running", 3.0, "resumed", expected=("Crashed",),
                         take_over=True)
    with pytest.raises(RunConflict, match="taken over by another process"):
        store.transition_run(second, "Crashed", 4.0, "owner gone", expected=("Running",),
                             take_over=True)
    stored = store.get_run("d1")
    assert (stored.state, stored.lease_epoch) == ("Running", 2)
    assert [s for s, _ in history(store, "d1")] == ["Running", "Crashed", "Running"]


def test_concurrent_takeovers_let_exactly_one_through(store: Store) -> None:
    direct_run(store)
    read = store.get_run("d1")
    outcomes: list[str] = []
    barrier = threading.Barrier(6)

    def take() -> None:
        mine = copy.copy(read)
        barrier.wait()
        try:
            store.transition_run(mine, "Crashed", 2.0, "owner gone", expected=("Running",),
                                 take_over=True)
            outcomes.append("won")
        except RunConflict:
            outcomes.append("conflict")

    threads = [threading.Thread(target=take) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(outcomes) == ["conflict"] * 5 + ["won"]
    assert store.get_run("d1").lease_epoch == 1


def test_a_crashed_enqueued_run_is_handed_back_and_its_old_executor_fenced(store: Store) -> None:
    enqueue(store, "q1", max_recoveries=0)  # its first lost executor leaves it Crashed
    [run] = store.claim_runs(["q"], worker(), "o", 1, time.time(), 30.0)
    old = Fence(run.id, run.lease_epoch)
    assert store.recover_run("q1", run.lease_epoch, time.time(), "lost") == "Crashed"
    stored = store.get_run("q1")
    assert store.requeue_run("q1", stored.lease_epoch, time.time(), "resumed by hand") \
        == "Pending"
    after = store.get_run("q1")
    assert (after.state, after.lease_epoch, after.worker_id, after.lease_expires_at) == (
        "Pending", stored.lease_epoch + 1, None, None)
    assert history(store, "q1")[-1] == ("Pending", "resumed by hand: handed back to queue 'q'")
    step = StepRecord("q1", "1", "t", "task", "Completed", 1, 1.0, 2.0, "{}", "1")
    with pytest.raises(LeaseLost):
        store.record_step(step, None, old)


def test_a_run_whose_lease_lapsed_is_recorded_crashed_then_handed_back(store: Store) -> None:
    enqueue(store, "q1")
    [run] = store.claim_runs(["q"], worker(), "o", 1, time.time(), 0.05)
    time.sleep(0.2)  # the lease lapses (on the database's clock)
    assert store.requeue_run("q1", run.lease_epoch, time.time(), "resumed") == "Pending"
    assert [s for s, _ in history(store, "q1")] == ["Pending", "Running", "Crashed",
                                                       "Pending"]
    with pytest.raises(LeaseLost):
        store.record_step(StepRecord("q1", "1", "t", "task", "Completed", 1, 1.0, 2.0, "{}",
                                     "1"), None, Fence("q1", run.lease_epoch))


def test_a_run_its_worker_still_holds_is_not_taken(store: Store) -> None:
    enqueue(store, "q1")
    [run] = store.claim_runs(["q"], worker(), "o", 1, time.time(), 300.0)
    with pytest.raises(RunConflict, match="being executed"):
        store.requeue_run("q1", run.lease_epoch, time.time(), "resumed")
    assert store.get_run("q1").lease_epoch == run.lease_epoch


def test_hand_backs_refuse_stale_reads_waiting_finished_and_direct_runs(store: Store) -> None:
    enqueue(store, "q1")
    with pytest.raises(RunConflict, match="waits in its queue"):
        store.requeue_run("q1", 0, time.time(), "resumed")
    [run] = store.claim_runs(["q"], worker(), "o", 1, time.time(), 0.05)
    time.sleep(0.2)
    with pytest.raises(RunConflict, match="changed meanwhile"):
        store.requeue_run("q1", run.lease_epoch - 1, time.time(), "resumed")
    direct_run(store, "d1", state="Crashed")
    with pytest.raises(RunConflict, match="not enqueued"):
        store.requeue_run("d1", 0, time.time(), "resumed")
    with pytest.raises(RunNotFound):
        store.requeue_run("nope", 0, time.time(), "resumed")
    done = store.get_run("q1")
    store.transition_run(done, "Completed", time.time(), fence=Fence("q1", done.lease_epoch))
    with pytest.raises(RunConflict, match="Completed"):
        store.requeue_run("q1", done.lease_epoch, time.time(), "resumed")

"""The storage contract of queues, claims, leases, fencing, workers and tag limits.

Every test runs on SQLite and on PostgreSQL. The `now` arguments of these verbs stamp
history and started_at, and the tests pass the values they choose; leases and slots are
measured on the database's clock, so the tests of their expiry use short real leases and
compare expiry times with `time.time()` (the database runs on this host).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stead.errors import LeaseLost, RunNotFound
from stead.store.base import (
    Fence,
    Limit,
    LogRecord,
    QueueInfo,
    RunFilter,
    RunRecord,
    StepRecord,
    Store,
    WorkerRecord,
)

LEASE = 30.0


def soon(seconds: float) -> float:
    """What the database's clock will say in `seconds` (it runs on this host)."""
    return time.time() + seconds


def db_approx(seconds: float) -> object:
    """Matches a database time about `seconds` from now (lease expiries)."""
    return pytest.approx(soon(seconds), abs=5.0)




def worker(wid: str = "w1", name: str = "alpha", host: str = "host-a", *, queues: str = '["q"]',
           heartbeat_at: float = 100.0, state: str = "running", running: int = 0
           ) -> WorkerRecord:
    return WorkerRecord(id=wid, name=name, host=host, pid=4242, queues=queues, concurrency=4,
                        state=state, started_at=50.0, heartbeat_at=heartbeat_at,
                        running=running)


def enqueue(store: Store, run_id: str, queue: str = "q", priority: int = 0,
            created_at: float = 1.0, max_recoveries: int = 3) -> RunRecord:
    run = RunRecord(id=run_id, flow_name="f", state="Pending", params='{"x": 1}',
                    created_at=created_at, queue=queue, priority=priority,
                    max_recoveries=max_recoveries)
    stored, created = store.create_run(run, f"enqueued on queue {queue!r}")
    assert created
    return stored


def claim(store: Store, queues: list[str], n: int = 10, w: WorkerRecord | None = None,
          now: float = 100.0, lease_s: float = LEASE) -> list[str]:
    return [r.id for r in store.claim_runs(queues, w or worker(), "host-a|1|1", n, now,
                                           lease_s)]


def history(store: Store, run_id: str) -> list[tuple[str, str | None]]:
    return [(c.state, c.message) for c in store.run_history(run_id)]


def complete(store: Store, run_id: str, at: float = 150.0) -> None:
    run = store.get_run(run_id)
    run.ended_at = at
    store.transition_run(run, "Completed", at)


# -- claims -----------------------------------------------------------------------------------


def test_claims_take_the_highest_priority_then_the_oldest(store: Store) -> None:
    enqueue(store, "low-old", priority=0, created_at=1.0)
    enqueue(store, "high-new", priority=5, created_at=4.0)
    enqueue(store, "high-old", priority=5, created_at=2.0)
    enqueue(store, "low-older", priority=0, created_at=0.5)
    enqueue(store, "negative", priority=-1, created_at=0.1)
    assert claim(store, ["q"], n=3) == ["high-old", "high-new", "low-older"]
    assert claim(store, ["q"], n=10) == ["low-old", "negative"]
    assert claim(store, ["q"], n=10) == []


def test_claims_take_only_from_the_named_queues_and_at_most_n(store: Store) -> None:
    for i in range(3):
        enqueue(store, f"etl-{i}", queue="etl", created_at=float(i))
        enqueue(store, f"ml-{i}", queue="ml", created_at=float(i))
        enqueue(store, f"web-{i}", queue="web", created_at=float(i))
    assert claim(store, ["etl", "ml"], n=0) == []
    assert claim(store, [], n=5) == []
    assert claim(store, ["nowhere"], n=5) == []
    first = claim(store, ["etl", "ml"], n=4)
    assert len(first) == 4
    assert set(first) == {"etl-0", "ml-0", "etl-1", "ml-1"}  # the oldest of both queues
    rest = claim(store, ["etl", "ml"], n=10)
    assert set(rest) == {"etl-2", "ml-2"}
    assert {r.id for r in store.list_runs(RunFilter(state="Pending"))} == {
        "web-0", "web-1", "web-2"}


def test_a_claimed_run_is_running_leased_to_its_worker_with_a_history_entry(store: Store) -> None:
    enqueue(store, "r1", created_at=1.0)
    w = worker("w-7", name="night-shift", host="box-3")
    [claimed] = store.claim_runs(["q"], w, "box-3|77|123", 5, now=100.0, lease_s=30.0)
    stored = store.get_run("r1")
    for run in (claimed, stored):
        assert run.state == "Running"
        assert run.lease_epoch == 1
        assert run.worker_id == "w-7"
        assert run.lease_expires_at == db_approx(30.0)  # the database's clock, not `now`
        assert run.owner == "box-3|77|123"
        assert run.started_at == pytest.approx(100.0)
        assert run.queue == "q" and run.params == '{"x": 1}'
    assert history(store, "r1") == [("Pending", "enqueued on queue 'q'"),
                                    ("Running", "claimed by worker night-shift on box-3")]
    assert store.run_history("r1")[-1].at == pytest.approx(100.0)
    assert store.list_runs(RunFilter(state="Running", queue="q"))[0].id == "r1"


def test_every_claim_and_recovery_bumps_the_epoch(store: Store) -> None:
    enqueue(store, "r1")
    assert store.claim_runs(["q"], worker(), "o", 1, 100.0, LEASE)[0].lease_epoch == 1
    assert store.recover_run("r1", 1, 200.0, "lost") == "Pending"
    assert store.get_run("r1").lease_epoch == 2
    again = store.claim_runs(["q"], worker("w2", "beta"), "o2", 1, 300.0, LEASE)[0]
    assert again.lease_epoch == 3 and again.worker_id == "w2"


def test_a_queue_limit_caps_claims_across_workers_and_calls(store: Store) -> None:
    store.set_queue("q", 2)
    for i in range(5):
        enqueue(store, f"r{i}", created_at=float(i))
    enqueue(store, "other-0", queue="other")
    w1, w2 = worker("w1", "alpha"), worker("w2", "beta")
    assert claim(store, ["q"], n=5, w=w1) == ["r0", "r1"]
    assert claim(store, ["q"], n=5, w=w2) == []
    assert claim(store, ["q", "other"], n=5, w=w2) == ["other-0"]  # a full queue blocks no other
    run = store.get_run("r0")
    store.transition_run(run, "Retrying", 120.0, "attempt 1 failed")  # still executing
    assert claim(store, ["q"], n=5, w=w2) == []
    complete(store, "r0")
    assert claim(store, ["q"], n=5, w=w2) == ["r2"]
    store.recover_run("r1", 1, 200.0, "lost")  # requeued: it waits again, and frees its place
    assert claim(store, ["q"], n=5, w=w1) == ["r1"]
    store.set_queue("q", None)
    assert claim(store, ["q"], n=5, w=w1) == ["r3", "r4"]


def test_a_full_limited_queue_does_not_hide_claimable_runs_of_other_queues(store: Store) -> None:
    store.set_queue("limited", 1)
    for i in range(4):
        enqueue(store, f"limited-{i}", queue="limited", priority=9, created_at=float(i))
    enqueue(store, "free-0", queue="free", priority=0, created_at=0.0)
    # Two runs are claimable (one of `limited`, one of `free`) and two are asked for.
    assert claim(store, ["limited", "free"], n=2) == ["limited-0", "free-0"]


def test_concurrent_claimers_never_take_the_same_run(store: Store) -> None:
    total = 60
    for i in range(total):
        enqueue(store, f"c{i:02d}", created_at=float(i))
    got: dict[str, list[str]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def claimer(wid: str) -> None:
        try:
            mine = got.setdefault(wid, [])
            w = worker(wid, name=wid)
            start.wait()
            while True:
                ids = claim(store, ["q"], n=3, w=w)
                mine.extend(ids)
                if not ids and not store.list_runs(RunFilter(state="Pending", queue="q")):
                    return
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    claimed = [run_id for ids in got.values() for run_id in ids]
    assert len(claimed) == len(set(claimed)) == total
    for wid, ids in got.items():
        for run_id in ids:
            run = store.get_run(run_id)
            assert run.worker_id == wid and run.lease_epoch == 1


def test_concurrent_claimers_respect_a_queue_limit(store: Store) -> None:
    store.set_queue("q", 5)
    for i in range(20):
        enqueue(store, f"c{i:02d}", created_at=float(i))
    got: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def claimer(wid: str) -> None:
        w = worker(wid, name=wid)
        start.wait()
        for _ in range(3):
            ids = claim(store, ["q"], n=2, w=w)
            with lock:
                got.extend(ids)

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(got) == len(set(got)) == 5
    assert sorted(got) == [f"c{i:02d}" for i in range(5)]  # the five oldest


# A model of claims: enqueue(priority, queue), claim(queues, n), set a queue's limit, finish
# a running run, recover a running run (requeued with its priority and age).
QUEUES = ["a", "b", "c"]
operations = st.lists(st.one_of(
    st.tuples(st.just("enqueue"), st.sampled_from(QUEUES), st.integers(-2, 2)),
    st.tuples(st.just("claim"), st.sets(st.sampled_from(QUEUES), min_size=1),
              st.integers(0, 4)),
    st.tuples(st.just("limit"), st.sampled_from(QUEUES), st.none() | st.integers(1, 3)),
    st.tuples(st.just("finish"), st.integers(0, 1000)),
    st.tuples(st.just("recover"), st.integers(0, 1000)),
), min_size=1, max_size=40)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_claims_follow_priority_age_and_limits(store: Store, ops: list[tuple]) -> None:
    ns = uuid.uuid4().hex[:8]  # every example uses its own queues and run ids

    def qname(q: str) -> str:
        return f"{ns}-{q}"

    clock = itertools.count(1)
    pending: dict[str, tuple[str, int, float]] = {}  # id -> (queue, priority, created_at)
    running: dict[str, str] = {}  # id -> queue
    info: dict[str, tuple[str, int, float]] = {}
    limits: dict[str, int | None] = {}
    for op in ops:
        if op[0] == "enqueue":
            _, q, priority = op
            run_id = f"{ns}-{len(info):03d}"
            info[run_id] = pending[run_id] = (q, priority, float(next(clock)))
            enqueue(store, run_id, qname(q), priority, info[run_id][2], max_recoveries=1000)
        elif op[0] == "limit":
            _, q, limit = op
            limits[q] = limit
            store.set_queue(qname(q), limit)
        elif op[0] == "claim":
            _, queues, n = op
            room = {q: limits[q] - sum(1 for r in running.values() if r == q)
                    for q in queues if limits.get(q) is not None}
            ideal = []
            for run_id in sorted((r for r, (q, _, _) in pending.items() if q in queues),
                                 key=lambda r: (-pending[r][1], pending[r][2])):
                q = pending[run_id][0]
                if q in room:
                    if room[q] <= 0:
                        continue
                    room[q] -= 1
                ideal.append(run_id)
            got = claim(store, sorted(qname(q) for q in queues), n, now=float(next(clock)))
            assert len(got) <= n
            assert got == ideal[:len(got)]  # the best claimable runs, best first
            assert bool(got) == bool(ideal and n)  # something, when anything is claimable
            for run_id in got:
                running[run_id] = pending.pop(run_id)[0]
        elif running:
            run_id = sorted(running)[op[1] % len(running)]
            if op[0] == "finish":
                complete(store, run_id, float(next(clock)))
                del running[run_id]
            else:
                epoch = store.get_run(run_id).lease_epoch
                assert store.recover_run(run_id, epoch, float(next(clock)), "lost") == "Pending"
                del running[run_id]
                pending[run_id] = info[run_id]
    stored = {r.id: r.state for r in store.list_runs(RunFilter(limit=1000)) if r.id in info}
    assert {r for r, s in stored.items() if s == "Pending"} == set(pending)
    assert {r for r, s in stored.items() if s == "Running"} == set(running)


# -- heartbeats and expiry --------------------------------------------------------------------


def test_heartbeat_extends_leases_and_returns_the_fences_still_held(store: Store) -> None:
    enqueue(store, "r1", created_at=1.0)
    enqueue(store, "r2", created_at=2.0)
    w = worker()
    store.register_worker(w)
    runs = store.claim_runs(["q"], w, "o", 2, now=100.0, lease_s=30.0)
    fences = [Fence(r.id, r.lease_epoch) for r in runs]
    assert store.heartbeat(w, fences, now=110.0, lease_s=30.0) == fences
    assert store.get_run("r1").lease_expires_at == db_approx(30.0)
    assert store.get_run("r2").lease_expires_at == db_approx(30.0)
    assert store.recover_run("r1", 1, 120.0, "lease expired") == "Pending"
    assert store.heartbeat(w, fences, now=125.0, lease_s=30.0) == [Fence("r2", 1)]
    assert store.get_run("r2").lease_expires_at == db_approx(30.0)
    assert store.get_run("r1").lease_expires_at is None  # the recovered run is not leased
    assert store.heartbeat(w, [Fence("r2", 0)], now=126.0, lease_s=30.0) == []  # stale epoch


def test_a_reclaimed_run_does_not_revive_the_old_fence(store: Store) -> None:
    enqueue(store, "r1")
    w = worker()
    [first] = store.claim_runs(["q"], w, "o", 1, now=100.0, lease_s=30.0)
    store.recover_run("r1", first.lease_epoch, 140.0, "lease expired")
    [second] = store.claim_runs(["q"], w, "o", 1, now=150.0, lease_s=30.0)  # same worker
    old, new = Fence("r1", first.lease_epoch), Fence("r1", second.lease_epoch)
    assert store.heartbeat(w, [old, new], now=160.0, lease_s=30.0) == [new]


def test_heartbeat_records_the_worker_alive(store: Store) -> None:
    w = worker(heartbeat_at=100.0)
    store.register_worker(w)
    w.running, w.state = 3, "draining"
    assert store.heartbeat(w, [], now=200.0, lease_s=30.0) == []
    [stored] = store.list_workers()
    assert (stored.heartbeat_at, stored.running, stored.state) == (200.0, 3, "draining")
    ghost = worker("w-ghost", "ghost")  # never registered (or removed): a heartbeat reports it
    store.heartbeat(ghost, [], now=300.0, lease_s=30.0)
    assert [x.id for x in store.list_workers()] == ["w-ghost", "w1"]
    assert store.list_workers()[0] == replace(ghost, heartbeat_at=300.0)


def test_expired_runs_are_the_live_leased_runs_past_their_expiry(store: Store) -> None:
    for i, name in enumerate(["soon", "later", "finished", "crashed", "waiting"]):
        enqueue(store, name, created_at=float(i))
    store.claim_runs(["q"], worker(), "o", 1, now=100.0, lease_s=0.3)  # soon
    store.claim_runs(["q"], worker(), "o", 1, now=100.0, lease_s=1.0)  # later
    store.claim_runs(["q"], worker(), "o", 1, now=100.0, lease_s=0.1)  # finished
    complete(store, "finished", 105.0)
    store.claim_runs(["q"], worker(), "o", 1, now=100.0, lease_s=0.1)  # crashed, not leased
    store.recover_run("crashed", 1, 105.0, "lost")
    store.create_run(RunRecord(id="direct", flow_name="f", state="Running", created_at=0.0))
    started = time.monotonic()
    expired = store.expired_runs()
    if time.monotonic() - started < 0.25:  # (a slow machine may take longer than the lease)
        assert expired == []
    time.sleep(0.5)
    assert [r.id for r in store.expired_runs()] == ["soon"]
    time.sleep(0.7)
    assert [r.id for r in store.expired_runs()] == ["soon", "later"]
    assert [r.id for r in store.expired_runs(limit=1)] == ["soon"]
    [first, _] = store.expired_runs()
    assert first.lease_epoch == 1 and first.lease_expires_at < time.time()


# -- recovery ---------------------------------------------------------------------------------


def test_recover_run_is_a_compare_and_set_on_the_epoch(store: Store) -> None:
    enqueue(store, "r1")
    store.claim_runs(["q"], worker(), "o", 1, now=100.0, lease_s=30.0)
    before = store.get_run("r1")
    for wrong in (0, 2):
        assert store.recover_run("r1", wrong, 200.0, "lease expired") is None
    assert store.get_run("r1") == before
    assert [s for s, _ in history(store, "r1")] == ["Pending", "Running"]
    assert store.recover_run("no-such-run", 1, 200.0, "lease expired") is None
    assert store.recover_run("r1", 1, 200.0, "lease expired") == "Pending"
    assert store.recover_run("r1", 1, 201.0, "lease expired") is None  # a second reaper
    enqueue(store, "never-claimed")
    assert store.recover_run("never-claimed", 0, 200.0, "lease expired") is None
    assert store.get_run("never-claimed").state == "Pending"


def test_recovery_requeues_until_max_recoveries_then_leaves_it_crashed(store: Store) -> None:
    enqueue(store, "r1", max_recoveries=2)
    states = []
    for round_ in range(3):
        [run] = store.claim_runs(["q"], worker(), "o", 1, now=100.0 * (round_ + 1),
                                 lease_s=30.0)
        states.append(store.recover_run("r1", run.lease_epoch, 100.0 * (round_ + 1) + 50,
                                        f"lease expired ({round_})"))
        stored = store.get_run("r1")
        assert stored.lease_epoch == run.lease_epoch + 1
        assert stored.worker_id is None and stored.lease_expires_at is None
        if round_ < 2:
            assert stored.state == "Pending" and stored.recoveries == round_ + 1
            assert stored.ended_at is None and stored.error is None
    assert states == ["Pending", "Pending", "Crashed"]
    final = store.get_run("r1")
    assert final.state == "Crashed" and final.recoveries == 2
    assert final.ended_at == pytest.approx(350.0)
    error = json.loads(final.error or "null")
    assert error["type"].startswith("stead.errors.")
    assert "lease expired (2)" in error["message"] and "max_recoveries=2" in error["message"]
    assert "stead runs resume r1" in error["message"]
    assert history(store, "r1") == [
        ("Pending", "enqueued on queue 'q'"),
        ("Running", "claimed by worker alpha on host-a"),
        ("Crashed", "lease expired (0)"),
        ("Pending", "requeued (recovery 1 of 2)"),
        ("Running", "claimed by worker alpha on host-a"),
        ("Crashed", "lease expired (1)"),
        ("Pending", "requeued (recovery 2 of 2)"),
        ("Running", "claimed by worker alpha on host-a"),
        ("Crashed", "lease expired (2)"),
    ]
    assert claim(store, ["q"]) == []  # a Crashed run waits for a person, not a worker
    assert store.recover_run("r1", final.lease_epoch, 400.0, "again") is None


def test_max_recoveries_zero_never_requeues(store: Store) -> None:
    enqueue(store, "r1", max_recoveries=0)
    [run] = store.claim_runs(["q"], worker(), "o", 1, now=100.0, lease_s=30.0)
    assert store.recover_run("r1", run.lease_epoch, 200.0, "lost") == "Crashed"
    assert store.get_run("r1").recoveries == 0


def test_a_hand_back_requeues_without_counting(store: Store) -> None:
    enqueue(store, "r1", max_recoveries=0)
    for now in (100.0, 200.0, 300.0):
        [run] = store.claim_runs(["q"], worker(), "o", 1, now=now, lease_s=30.0)
        assert store.recover_run("r1", run.lease_epoch, now + 10, "worker shut down",
                                 count=False) == "Pending"
    stored = store.get_run("r1")
    assert stored.state == "Pending" and stored.recoveries == 0 and stored.lease_epoch == 6
    assert history(store, "r1")[-2:] == [("Crashed", "worker shut down"),
                                         ("Pending", "handed back to its queue")]


def test_a_recovered_run_is_claimed_again_as_a_resume(store: Store) -> None:
    enqueue(store, "r1")
    store.claim_runs(["q"], worker(), "o", 1, now=100.0, lease_s=30.0)
    store.recover_run("r1", 1, 150.0, "lost")
    [again] = store.claim_runs(["q"], worker("w2", "beta"), "o2", 1, now=200.0, lease_s=30.0)
    assert again.attempts == 2 and again.resumes == 1
    assert again.started_at == pytest.approx(200.0) and again.ended_at is None


# -- fencing ----------------------------------------------------------------------------------


def _step(run_id: str, key: str, result: str = "1") -> StepRecord:
    return StepRecord(run_id, key, "t", "task", "Completed", 1, 1.0, 2.0, "{}", result)


def _log(run_id: str, message: str) -> LogRecord:
    return LogRecord(run_id, "1", 1.5, 20, message)


def _snapshot(store: Store, run_id: str) -> tuple:
    steps = {k: (s.state, s.result) for k, s in store.load_steps(run_id).items()}
    return (store.get_run(run_id), history(store, run_id), steps,
            [g.message for g in store.read_logs(run_id)])


FENCED_WRITES = {
    "record_step": lambda s, f: s.record_step(_step("r1", "9", "99"), [_log("r1", "late")],
                                              fence=f),
    "record_step_overwrite": lambda s, f: s.record_step(_step("r1", "1", "overwritten"),
                                                        fence=f),
    "record_steps": lambda s, f: s.record_steps(
        [(_step("r1", "8"), [_log("r1", "late")]), (_step("r1", "9"), None)], fence=f),
    "transition_run": lambda s, f: s.transition_run(
        replace(s.get_run("r1"), ended_at=300.0), "Completed", 300.0, "done", fence=f),
    "append_logs": lambda s, f: s.append_logs([_log("r1", "late")], fence=f),
    "mark_steps_running": lambda s, f: s.mark_steps_running(
        [StepRecord("r1", "9", "t", "task", "Running", 1, 1.0)], fence=f),
    "create_run": lambda s, f: s.create_run(
        RunRecord(id="r1:9", flow_name="child", state="Running", parent_id="r1",
                  parent_step="9", created_at=3.0), "started", fence=f),
}


@pytest.mark.parametrize("verb", list(FENCED_WRITES))
def test_fenced_writes_need_the_current_epoch(store: Store, verb: str) -> None:
    enqueue(store, "r1")
    [run] = store.claim_runs(["q"], worker(), "o", 1, now=100.0, lease_s=30.0)
    held = Fence("r1", run.lease_epoch)
    store.record_step(_step("r1", "1"), [_log("r1", "first")], fence=held)
    assert store.recover_run("r1", held.epoch, 200.0, "lease expired") == "Pending"
    before = _snapshot(store, "r1")
    with pytest.raises(LeaseLost, match=r"lost the lease on run r1: this executor holds epoch 1, "
                                        r"the run is now at lease epoch 2") as lost:
        FENCED_WRITES[verb](store, held)
    assert lost.value.run_id == "r1" and lost.value.epoch == 1
    assert not isinstance(lost.value, Exception)  # `except Exception` must not swallow it
    assert _snapshot(store, "r1") == before
    with pytest.raises(RunNotFound):
        store.get_run("r1:9")
    # The executor holding the current epoch writes.
    [again] = store.claim_runs(["q"], worker("w2", "beta"), "o2", 1, now=300.0, lease_s=30.0)
    FENCED_WRITES[verb](store, Fence("r1", again.lease_epoch))


def test_fenced_writes_with_the_current_epoch_are_written(store: Store) -> None:
    enqueue(store, "r1")
    [run] = store.claim_runs(["q"], worker(), "o", 1, now=100.0, lease_s=30.0)
    fence = Fence("r1", run.lease_epoch)
    store.record_step(_step("r1", "1"), [_log("r1", "one")], fence=fence)
    store.record_steps([(_step("r1", "2"), [_log("r1", "two")]), (_step("r1", "3"), None)],
                       fence=fence)
    store.mark_steps_running([StepRecord("r1", "4", "t", "task", "Running", 1, 1.0)],
                             fence=fence)
    store.append_logs([_log("r1", "three")], fence=fence)
    child, created = store.create_run(RunRecord(id="r1:5", flow_name="child", state="Running",
                                                parent_id="r1", parent_step="5",
                                                created_at=3.0), "started", fence=fence)
    assert created and child.parent_id == "r1"
    stale_copy = RunRecord(id="r1", flow_name="f", state="Running", created_at=1.0,
                           ended_at=150.0, result="42")  # no queue, lease or worker fields
    store.transition_run(stale_copy, "Completed", 150.0, "done", fence=fence)
    steps = store.load_steps("r1")
    assert {k: s.state for k, s in steps.items()} == {
        "1": "Completed", "2": "Completed", "3": "Completed", "4": "Running"}
    assert [g.message for g in store.read_logs("r1")] == ["one", "two", "three"]
    stored = store.get_run("r1")
    assert stored.state == "Completed" and stored.result == "42"
    # A transition never writes the lease fields: the executor's copy cannot undo a claim.
    assert (stored.queue, stored.lease_epoch, stored.worker_id) == ("q", 1, "w1")
    assert stored.lease_expires_at == db_approx(30.0)


def test_a_fence_on_an_unknown_run_is_refused(store: Store) -> None:
    store.create_run(RunRecord(id="r1", flow_name="f", state="Running", created_at=1.0))
    with pytest.raises(LeaseLost, match="the run is gone"):
        store.append_logs([_log("r1", "x")], fence=Fence("gone", 1))
    with pytest.raises(LeaseLost):
        store.record_step(_step("r1", "1"), fence=Fence("gone", 1))
    assert store.load_steps("r1") == {} and store.read_logs("r1") == []


# -- workers and queues -----------------------------------------------------------------------


def test_workers_are_registered_replaced_and_listed_by_latest_heartbeat(store: Store) -> None:
    assert store.list_workers() == []
    a = worker("wa", "alpha", queues='["etl", "ml"]', heartbeat_at=100.0, running=2)
    b = worker("wb", "beta", host="host-b", heartbeat_at=300.0)
    c = worker("wc", "gamma", heartbeat_at=200.0, state="stopped")
    for w in (a, b, c):
        store.register_worker(w)
    assert store.list_workers() == [b, c, a]
    a2 = replace(a, name="alpha-2", heartbeat_at=400.0, state="draining", concurrency=8)
    store.register_worker(a2)
    assert store.list_workers() == [a2, b, c]


def test_list_queues_counts_pending_and_running_per_queue(store: Store) -> None:
    assert store.list_queues() == []
    store.set_queue("declared", 3)
    for i, created in enumerate([10.0, 5.0, 1.0, 7.0]):
        enqueue(store, f"etl-{i}", queue="etl", created_at=created)
    enqueue(store, "old-0", queue="old", created_at=0.5)
    store.create_run(RunRecord(id="direct", flow_name="f", state="Pending", created_at=0.0))
    claim(store, ["etl"], n=2)  # etl-2 (1.0) and etl-1 (5.0)
    store.transition_run(store.get_run("etl-1"), "Retrying", 101.0, "attempt 1 failed")
    claim(store, ["old"], n=1)
    complete(store, "old-0")
    assert store.list_queues() == [
        QueueInfo("declared", 3, 0, 0, None),
        QueueInfo("etl", None, pending=2, running=2, oldest_pending_at=7.0),
        QueueInfo("old", None, 0, 0, None),  # known only from a run, all of them finished
    ]
    store.set_queue("etl", 4)
    store.set_queue("declared", None)
    assert [(q.name, q.concurrency_limit) for q in store.list_queues()] == [
        ("declared", None), ("etl", 4), ("old", None)]


# -- tag limits and slots ---------------------------------------------------------------------


def test_limits_are_set_replaced_listed_and_removed(store: Store) -> None:
    assert store.list_limits() == []
    store.set_limit(Limit("warehouse", concurrency=5, rate=100, period=60.0))
    store.set_limit(Limit("api", rate=10, period=1.0))
    store.set_limit(Limit("db", concurrency=2))
    assert store.list_limits() == [Limit("api", None, 10, 1.0), Limit("db", 2, None, None),
                                   Limit("warehouse", 5, 100, 60.0)]
    store.set_limit(Limit("db", concurrency=3))
    store.delete_limit("api")
    store.delete_limit("never-set")
    assert store.list_limits() == [Limit("db", 3), Limit("warehouse", 5, 100, 60.0)]


def test_a_concurrency_limit_grants_n_slots_then_asks_to_wait(store: Store) -> None:
    store.set_limit(Limit("db", concurrency=2))
    first = store.take_slots(["db"], "r/1", now=0.0, lease_s=10.0)
    second = store.take_slots(["db"], "r/2", now=0.0, lease_s=10.0)
    assert first.granted and second.granted
    assert len(first.ids) == len(second.ids) == 1 and first.ids != second.ids
    third = store.take_slots(["db"], "r/3", now=1.0, lease_s=10.0)
    assert not third.granted and third.ids == [] and third.wait > 0
    store.release_slots(first.ids)
    assert store.take_slots(["db"], "r/3", now=2.0, lease_s=10.0).granted
    assert not store.take_slots(["db"], "r/4", now=2.0, lease_s=10.0).granted


def test_a_slot_not_renewed_lapses_and_a_renewed_one_does_not(store: Store) -> None:
    store.set_limit(Limit("db", concurrency=1))
    dead = store.take_slots(["db"], "dead/1", now=0.0, lease_s=0.5)
    assert dead.granted
    assert not store.take_slots(["db"], "r/2", now=0.0, lease_s=0.5).granted
    time.sleep(0.7)
    alive = store.take_slots(["db"], "r/2", now=0.0, lease_s=0.5)  # the dead holder's lapsed
    assert alive.granted
    for _ in range(3):  # renewed every 0.3 s, it outlives its first 0.5 s lease
        time.sleep(0.3)
        store.renew_slots(alive.ids, lease_s=0.5)
    assert not store.take_slots(["db"], "r/3", now=0.0, lease_s=0.5).granted
    time.sleep(0.7)
    assert store.take_slots(["db"], "r/3", now=0.0, lease_s=0.5).granted


def test_a_rate_limit_grants_n_per_period_then_says_how_long_to_wait(store: Store) -> None:
    store.set_limit(Limit("api", rate=3, period=1.0))
    first = store.take_slots(["api"], "r/1", now=0.0, lease_s=10.0)
    time.sleep(0.4)
    taken = [first] + [store.take_slots(["api"], f"r/{i}", now=0.0, lease_s=10.0)
                       for i in (2, 3)]
    assert all(g.granted and len(g.ids) == 1 for g in taken)
    for g in taken:  # rate slots run out by themselves: giving them back frees nothing
        store.release_slots(g.ids)
    refused = store.take_slots(["api"], "r/4", now=0.0, lease_s=10.0)
    assert not refused.granted and 0 < refused.wait <= 0.6  # when the oldest ends
    time.sleep(refused.wait + 0.05)
    assert store.take_slots(["api"], "r/4", now=0.0, lease_s=10.0).granted
    later = store.take_slots(["api"], "r/5", now=0.0, lease_s=10.0)
    assert not later.granted and 0.2 < later.wait <= 1.0  # the two taken at 0.4 s end later


def test_tags_without_a_limit_need_no_slot(store: Store) -> None:
    store.set_limit(Limit("db", concurrency=1))
    for _ in range(3):
        grant = store.take_slots(["free", "other"], "r/1", now=0.0, lease_s=10.0)
        assert grant.granted and grant.ids == []


def test_several_tags_are_taken_all_or_nothing(store: Store) -> None:
    store.set_limit(Limit("a", concurrency=1))
    store.set_limit(Limit("b", concurrency=1))
    held_b = store.take_slots(["b"], "r/1", now=0.0, lease_s=10.0)
    assert held_b.granted
    both = store.take_slots(["a", "b", "free"], "r/2", now=1.0, lease_s=10.0)
    assert not both.granted and both.ids == []
    held_a = store.take_slots(["a"], "r/3", now=2.0, lease_s=10.0)  # `a` was not taken above
    assert held_a.granted
    store.release_slots(held_a.ids + held_b.ids)
    both = store.take_slots(["a", "b", "free"], "r/2", now=3.0, lease_s=10.0)
    assert both.granted and len(both.ids) == 2


def test_one_tag_with_concurrency_and_rate_takes_two_slots(store: Store) -> None:
    store.set_limit(Limit("wh", concurrency=1, rate=2, period=100.0))
    first = store.take_slots(["wh"], "r/1", now=0.0, lease_s=10.0)
    assert first.granted and len(first.ids) == 2
    assert not store.take_slots(["wh"], "r/2", now=1.0, lease_s=10.0).granted  # concurrency
    store.release_slots(first.ids)
    second = store.take_slots(["wh"], "r/2", now=2.0, lease_s=10.0)
    assert second.granted and len(second.ids) == 2
    store.release_slots(second.ids)
    refused = store.take_slots(["wh"], "r/3", now=3.0, lease_s=10.0)  # two starts this period
    assert not refused.granted and 95.0 < refused.wait <= 100.0


def test_deleting_a_limit_frees_its_slots(store: Store) -> None:
    store.set_limit(Limit("db", concurrency=1))
    assert store.take_slots(["db"], "r/1", now=0.0, lease_s=100.0).granted
    store.delete_limit("db")
    assert store.take_slots(["db"], "r/2", now=1.0, lease_s=100.0).ids == []
    store.set_limit(Limit("db", concurrency=1))
    assert store.take_slots(["db"], "r/3", now=2.0, lease_s=100.0).granted


def test_empty_lists_of_tags_and_slots_are_no_ops(store: Store) -> None:
    store.set_limit(Limit("db", concurrency=1))
    assert store.take_slots([], "r/1", now=0.0, lease_s=10.0).ids == []
    store.renew_slots([], lease_s=10.0)
    store.release_slots([])
    assert store.take_slots(["db"], "r/1", now=0.0, lease_s=10.0).granted


def test_concurrent_takers_get_exactly_the_limit(store: Store) -> None:
    store.set_limit(Limit("db", concurrency=3))
    grants = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def taker(i: int) -> None:
        start.wait()
        grant = store.take_slots(["db"], f"r/{i}", now=0.0, lease_s=100.0)
        with lock:
            grants.append(grant)

    threads = [threading.Thread(target=taker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert sum(g.granted for g in grants) == 3 and len(grants) == 8


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rate=st.integers(1, 3), period=st.sampled_from([0.3, 0.5]),
       gaps=st.lists(st.sampled_from([0.0, 0.1, 0.2, 0.4]), min_size=1, max_size=8))
def test_a_rate_limit_is_a_sliding_window(store: Store, rate: int, period: float,
                                          gaps: list[float]) -> None:
    # Real time (slots use the database's clock): each grant happened between the times read
    # before and after it, so the model asserts only what those bounds decide.
    tag = f"rate-{uuid.uuid4().hex[:8]}"
    store.set_limit(Limit(tag, rate=rate, period=period))
    granted: list[tuple[float, float]] = []  # (before, after) of each grant
    for gap in gaps:
        time.sleep(gap)
        before = time.time()
        grant = store.take_slots([tag], "r/1", now=before, lease_s=5.0)
        after = time.time()
        surely_live = sum(1 for b, _ in granted if b + period > after + 0.01)
        maybe_live = sum(1 for _, a in granted if a + period > before - 0.01)
        if grant.granted:
            assert len(grant.ids) == 1 and surely_live < rate
            granted.append((before, after))
        else:
            assert maybe_live >= rate and 0 < grant.wait <= period

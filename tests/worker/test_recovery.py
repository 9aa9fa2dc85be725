"""Workers that die, pause, or lose their database: nothing is lost, nothing runs twice
except a step that was in flight on a lost worker, and a stale worker writes nothing."""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

import pytest
import queued_flows

from stead.core.runtime import close_stores, store_for
from stead.core.serialization import decode
from stead.settings import reset_settings
from stead.store.base import RunFilter, Store
from tests.worker.conftest import Workers, checkpointed, effects, wait_until

ON_POSTGRES = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


def states(db: Store) -> Counter[str]:
    return Counter(r.state for r in db.list_runs(RunFilter(limit=100_000)))


@ON_POSTGRES
def test_300_runs_on_three_workers_survive_one_worker_killed(workers: Workers, db: Store,
                                                              tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    ids = [queued_flows.twenty.enqueue(out=str(out), queue="etl", run_id=f"run-{i:03d}")
           for i in range(300)]
    procs = [workers.start("-q", "etl", "-c", "2", "--lease", "3", TASK_SLEEP="0.002")
             for _ in range(3)]
    wait_until(lambda: states(db)["Completed"] >= 100, 180, "100 completed runs")
    victim = procs[0]
    workers.kill(victim)  # the worker and its children: a lost host
    try:
        wait_until(lambda: states(db)["Completed"] == 300, 240, "every run completed")
    except AssertionError:
        stuck = [r for r in db.list_runs(RunFilter(limit=1000)) if r.state != "Completed"]
        for r in stuck[:3]:
            print(r)
            print([(c.state, c.message) for c in db.run_history(r.id)])
        for p in procs:
            print(workers.log(p)[-3000:])
        raise

    final = states(db)
    assert final == Counter({"Completed": 300}), final  # none Running, Pending or Crashed
    done = effects(out)
    keys = Counter(key for key, _ in done)
    assert set(keys) == {f"{rid}/{k}" for rid in ids for k in range(1, 21)}
    duplicated = {key for key, count in keys.items() if count > 1}
    victim_name = f"{os.uname().nodename}-{victim.pid}"
    recovered = {r.id for r in db.list_runs(RunFilter(limit=1000)) if r.recoveries}
    for rid in recovered:
        history = [c.message or "" for c in db.run_history(rid)]
        assert any(f"claimed by worker {victim_name}" in m for m in history), history
        assert any("lease expired" in m for m in history), history
    # Only the victim's in-flight steps ran twice: at most one per run it held (2 children).
    assert len(recovered) <= 2
    assert {key.split("/")[0] for key in duplicated} <= recovered
    for rid in recovered:
        assert sum(1 for key in duplicated if key.startswith(rid + "/")) <= 1


@ON_POSTGRES
def test_a_worker_paused_past_its_lease_cannot_write_to_the_recovered_run(
        workers: Workers, db: Store, tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    rid = queued_flows.fenced.enqueue(out=str(out), seconds=4.0, queue="q")
    a = workers.start("-q", "q", "-c", "1", "--lease", "1")
    wait_until(lambda: checkpointed(db, rid, "1"), 60, "step 1 on worker A")
    workers.kill(a, signal.SIGSTOP)
    b = workers.start("-q", "q", "-c", "1", "--lease", "1")
    b_name = f"{os.uname().nodename}-{b.pid}"
    wait_until(lambda: any(f"claimed by worker {b_name}" in (c.message or "")
                           for c in db.run_history(rid)), 60, "worker B to take the run over")
    workers.kill(a, signal.SIGCONT)  # A wakes mid-run, its lease long gone, and tries to go on
    wait_until(lambda: "lease" in workers.log(a) or "recovered by another worker"
               in workers.log(a), 30, "worker A to notice")
    wait_until(lambda: db.get_run(rid).state == "Completed", 60, "the run to complete on B")

    run = db.get_run(rid)
    assert decode(run.result) == b.pid  # the process group of the worker that finished it
    assert decode(db.get_step(rid, "2").result) == b.pid
    history = [c.state for c in db.run_history(rid)]
    assert history.count("Completed") == 1, history
    assert history[-4:] == ["Crashed", "Pending", "Running", "Completed"], history
    assert a.poll() is None  # the paused worker itself survives; it lost only that run


def test_postgres_restart_while_workers_run(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.postgres import Cluster, create_database

    cluster = Cluster()  # never restart a server someone else started
    ws: Workers | None = None
    try:
        url = create_database(cluster.url, "stead_restart")
        monkeypatch.setenv("STEAD_DATABASE_URL", url)
        close_stores()
        reset_settings()
        db = store_for(url)
        out = tmp_path / "effects.txt"
        ids = [queued_flows.twenty.enqueue(out=str(out), queue="etl") for _ in range(40)]
        ws = Workers(url, tmp_path)
        for _ in range(2):
            ws.start("-q", "etl", "-c", "2", "--lease", "15", TASK_SLEEP="0.01")
        wait_until(lambda: states(db)["Completed"] >= 8, 120, "some completed runs")
        cluster.restart(down_for=2.0)
        wait_until(lambda: states(db)["Completed"] == 40, 180, "every run completed")
        assert states(db) == Counter({"Completed": 40})
        keys = {key for key, _ in effects(out)}
        assert keys == {f"{rid}/{k}" for rid in ids for k in range(1, 21)}
        assert all(w.poll() is None for w in ws.procs)  # the workers rode it out
    finally:
        if ws is not None:
            ws.stop_all()
        close_stores()
        cluster.stop()


def test_a_dead_child_is_replaced_and_its_run_recovered(workers: Workers, db: Store,
                                                        tmp_path: Path) -> None:
    marker = str(tmp_path / "died")
    rid = queued_flows.dies_once.enqueue(marker=marker, queue="q")
    after = queued_flows.twenty.enqueue(out=str(tmp_path / "e.txt"), queue="q", priority=-1)
    w = workers.start("-q", "q", "-c", "1")
    wait_until(lambda: db.get_run(after).state == "Completed", 60, "both runs to complete")
    run = db.get_run(rid)
    assert run.state == "Completed" and decode(run.result) == "survived"
    assert run.recoveries == 1
    assert any("child process" in (c.message or "") for c in db.run_history(rid))
    # The step before the crash was recorded and not run again.
    assert [k for k, _ in effects(Path(marker + ".out"))] == [f"{rid}/1"]
    assert w.poll() is None


def test_a_run_that_keeps_crashing_stops_at_max_recoveries(workers: Workers, db: Store,
                                                          tmp_path: Path) -> None:
    rid = queued_flows.dies_once.enqueue(marker=str(tmp_path / "m"), always=True, queue="q",
                                         max_recoveries=1)
    w = workers.start("-q", "q", "-c", "1")
    wait_until(lambda: "not requeued" in (db.get_run(rid).error or ""), 60,
               "the run to be given up")
    run = db.get_run(rid)
    assert run.state == "Crashed" and run.recoveries == 1
    assert "max_recoveries=1" in (run.error or "")
    assert [c.state for c in db.run_history(rid)] == [
        "Pending", "Running", "Crashed", "Pending", "Running", "Crashed"]
    assert w.poll() is None


def test_a_starting_worker_recovers_runs_of_a_dead_predecessor_at_once(
        workers: Workers, db: Store, tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    rid = queued_flows.fenced.enqueue(out=str(out), seconds=3.0, queue="q")
    first = workers.start("-q", "q", "-c", "1", "--lease", "600")
    wait_until(lambda: checkpointed(db, rid, "1"), 60, "step 1's checkpoint")
    workers.kill(first)
    first.wait(10)
    # With a 600 s lease only start-up recovery can bring the run back within the timeout.
    second = workers.start("-q", "q", "-c", "1", "--lease", "600")
    wait_until(lambda: db.get_run(rid).state == "Completed", 60, "the run to complete")
    assert decode(db.get_run(rid).result) == second.pid
    assert "recovered 1 runs left by dead workers" in workers.log(second)
    assert [k for k, _ in effects(out)] == [f"{rid}/1"]  # step 1 was not run again


def test_sigterm_drains_then_hands_back_what_did_not_finish(workers: Workers, db: Store,
                                                           tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    quick = queued_flows.fenced.enqueue(out=str(out), seconds=0.5, queue="q", priority=1)
    slow = queued_flows.fenced.enqueue(out=str(out), seconds=8.0, queue="q")
    w = workers.start("-q", "q", "-c", "2", "--grace", "1.5")
    wait_until(lambda: len(effects(out)) == 2, 60, "both runs to start")
    w.send_signal(signal.SIGTERM)
    assert w.wait(30) == 0
    assert db.get_run(quick).state == "Completed"  # finished within the grace period
    run = db.get_run(slow)
    assert run.state == "Pending" and run.recoveries == 0  # handed back, not a recovery
    assert db.run_history(slow)[-1].message == "handed back to its queue"
    log = workers.log(w)
    assert "draining" in log and "handed back" in log
    # Another worker finishes it from its checkpoint.
    workers.start("-q", "q", "-c", "1")
    wait_until(lambda: db.get_run(slow).state == "Completed", 120, "the handed-back run")
    assert sorted(k for k, _ in effects(out)).count(f"{slow}/1") == 1

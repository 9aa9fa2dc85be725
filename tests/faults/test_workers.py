"""Workers on PostgreSQL that are killed, paused, raced by a resume, skewed in time, or killed
while holding a tag-limit slot (matrix rows 2, 3, 7, 8, 10). Leases are 1-2 s, so two lease
periods are a few seconds and every wait below is bounded by them plus the work left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import fault_flows
import pytest

from stead.store.base import RunFilter, Store
from tests.faults.harness import (
    Figures,
    executed,
    executions,
    faketime_env,
    finish,
    finished_steps,
    first_running_after,
    settle,
    start_cli,
    wait_for,
)
from tests.worker.conftest import Workers


@pytest.fixture
def workers(pg_url: str, tmp_path: Path) -> Iterator[Workers]:
    ws = Workers(pg_url, tmp_path)
    yield ws
    ws.stop_all()


@pytest.fixture
def db(pg_url: str) -> Store:
    from stead.core.runtime import store_for

    return store_for(pg_url)


def worker_id(db: Store, proc: subprocess.Popen[bytes]) -> str:
    assert wait_for(lambda: any(w.pid == proc.pid for w in db.list_workers()), 60)
    return next(w.id for w in db.list_workers() if w.pid == proc.pid)


def held_by(db: Store, wid: str) -> list[str]:
    """Runs leased to the worker `wid` right now (after a SIGKILL: those it lost)."""
    return [r.id for r in db.list_runs(RunFilter(state=("Running", "Retrying"), limit=10_000))
            if r.worker_id == wid]


def snapshot(db: Store, ids: list[str]) -> dict[str, set[str]]:
    return {rid: finished_steps(db, rid) for rid in ids}


def test_a_worker_group_killed_with_runs_queued(workers: Workers, db: Store, pg_url: str,
                                                tmp_path: Path,
                                                figures: Callable[..., Figures]) -> None:
    """Row 2: three workers share a queue of 30 runs; one is killed with its children."""
    fig = figures("2 worker process group SIGKILL", "postgres",
                  "kill -9 of 1 of 3 workers (-c 2, lease 2 s), 30 runs queued")
    out = tmp_path / "executions.txt"
    ids = [fault_flows.chain.enqueue(out=str(out), n=10, seconds=0.05, queue="q",
                                     run_id=f"grp-{i:02d}") for i in range(30)]
    procs = [workers.start("-q", "q", "-c", "2", "--lease", "2") for _ in range(3)]
    victim = procs[0]
    wid = worker_id(db, victim)
    assert wait_for(lambda: len(held_by(db, wid)) == 2, 60), workers.log(victim)
    workers.kill(victim)
    killed_at = time.time()
    victim.wait(10)
    lost = held_by(db, wid)
    before = snapshot(db, ids)
    settle(db, ids, 30 + 2 * 2)  # the work left on 4 children, plus two leases
    back = [first_running_after(db, rid, killed_at) for rid in lost]
    fig.recover_s = max((t - killed_at for t in back if t), default=None)
    fig.tally(db, ids, out, allowance=dict.fromkeys(lost, 1), finished_before=before,
              url=pg_url)
    fig.notes.append(f"{len(lost)} runs held by the killed worker")
    fig.check()
    assert lost and all(db.get_run(rid).recoveries == 1 for rid in lost)
    assert all(p.poll() is None for p in procs[1:])
    assert fig.recover_s is not None and fig.recover_s < 2 * 2 + 2  # within two leases


def test_a_worker_stopped_past_its_lease_then_continued(workers: Workers, db: Store,
                                                         pg_url: str, tmp_path: Path,
                                                         figures: Callable[..., Figures]
                                                         ) -> None:
    """Row 3: SIGSTOP a worker (and its children) for longer than its lease; another worker
    takes its runs over; SIGCONT it: its writes are refused, nothing runs twice."""
    fig = figures("3 SIGSTOP past the lease, SIGCONT", "postgres",
                  "SIGSTOP of a worker (lease 1 s) for ~4 s, then SIGCONT")
    out = tmp_path / "executions.txt"
    ids = [fault_flows.chain.enqueue(out=str(out), n=6, seconds=0.4, queue="q",
                                     run_id=f"stop-{i}") for i in range(2)]
    a = workers.start("-q", "q", "-c", "2", "--lease", "1")
    assert wait_for(lambda: all(executed(out, rid) >= 1 for rid in ids), 60)
    workers.kill(a, signal.SIGSTOP)
    stopped_at = time.time()
    before = snapshot(db, ids)
    b = workers.start("-q", "q", "-c", "2", "--lease", "1")
    b_name = f"{os.uname().nodename}-{b.pid}"

    def taken_over() -> bool:
        return all(any(f"claimed by worker {b_name}" in (c.message or "")
                       for c in db.run_history(rid)) for rid in ids)

    assert wait_for(taken_over, 30), workers.log(b)
    fig.recover_s = max(first_running_after(db, rid, stopped_at) or 0 for rid in ids) \
        - stopped_at
    workers.kill(a, signal.SIGCONT)
    settle(db, ids, 6 * 0.4 + 2 * 1 + 15)
    fig.tally(db, ids, out, allowance=dict.fromkeys(ids, 1), finished_before=before,
              url=pg_url)
    fig.check()
    for rid in ids:
        assert [c.state for c in db.run_history(rid)].count("Completed") == 1
    assert a.poll() is None  # the paused worker lost its runs, not its life


def test_resume_of_a_queued_run_whose_worker_died(workers: Workers, db: Store, pg_url: str,
                                                  stead_home: Path, tmp_path: Path,
                                                  figures: Callable[..., Figures]) -> None:
    """Row 7: a worker executing a queued run is killed while another worker serves the
    queue, and someone runs `stead runs resume RUN` at once: one of them executes it."""
    fig = figures("7 runs resume of a queued run, worker killed", "postgres",
                  "kill -9 of the run's worker (lease 3 s) + `stead runs resume` while "
                  "another worker serves the queue")
    out = tmp_path / "executions.txt"
    rid = fault_flows.chain.enqueue(out=str(out), n=10, seconds=0.5, queue="q",
                                    run_id="queued-resume")
    a = workers.start("-q", "q", "-c", "1", "--lease", "3")
    assert wait_for(lambda: executed(out, rid) >= 2, 60)
    worker_id(db, workers.start("-q", "q", "-c", "1", "--lease", "3"))  # up and serving
    workers.kill(a)
    killed_at = time.time()
    a.wait(10)
    before = snapshot(db, [rid])
    seen = len(executions(out))
    log = tmp_path / "resume.log"
    code = finish(start_cli(stead_home, "runs", "resume", rid, log=log), 60)
    settle(db, [rid], 10 * 0.5 + 2 * 3 + 10)
    fig.recover_s = (first_running_after(db, rid, killed_at) or killed_at) - killed_at
    fig.executors = len({pid for _, _, pid in executions(out)[seen:]})
    fig.tally(db, [rid], out, allowance={rid: 1}, finished_before=before, url=pg_url)
    fig.notes.append(f"`stead runs resume` exit code {code}")
    fig.notes.append(" > ".join(f"{c.state} ({c.message})" for c in db.run_history(rid)))
    fig.check()
    assert fig.executors == 1, f"{fig.executors} processes executed the run after the kill"
    assert code in (0, 2), log.read_text()  # resumed it, or refused: never half of it


def test_a_worker_with_a_clock_ahead_steals_no_healthy_run(workers: Workers, db: Store,
                                                           pg_url: str, tmp_path: Path,
                                                           figures: Callable[..., Figures]
                                                           ) -> None:
    """Row 8: a worker whose clock is 10 s ahead (libfaketime) beside two healthy ones: no
    healthy worker's run is recovered, nothing runs twice."""
    fig = figures("8 skewed clock (+10 s) beside healthy workers", "postgres",
                  "1 worker 10 s ahead (faketime) + 2 healthy, lease 2 s, 15 runs")
    out = tmp_path / "executions.txt"
    skew = faketime_env("+10s")
    probe = subprocess.run([sys.executable, "-c", "import time; print(time.time())"],
                           capture_output=True, text=True, env={**os.environ, **skew})
    assert float(probe.stdout) - time.time() > 9, "faketime did not skew the clock"
    ids = [fault_flows.chain.enqueue(out=str(out), n=10, seconds=0.1, queue="q",
                                     run_id=f"skew-{i:02d}") for i in range(15)]
    for _ in range(2):
        workers.start("-q", "q", "-c", "2", "--lease", "2")
    workers.start("-q", "q", "-c", "1", "--lease", "2", **skew)
    settle(db, ids, 20)  # ~4 s of work on 5 children, plus leases
    fig.tally(db, ids, out, url=pg_url)
    stolen = [rid for rid in ids if db.get_run(rid).recoveries]
    fig.notes.append(f"{len(stolen)} healthy runs recovered (stolen)")
    fig.check()
    assert fig.recoveries == 0, f"healthy runs were recovered: {stolen}"


def test_a_slot_holder_killed_frees_the_only_slot(workers: Workers, db: Store, pg_url: str,
                                                  stead_home: Path, tmp_path: Path,
                                                  figures: Callable[..., Figures]) -> None:
    """Row 10: `stead limits set slot --concurrency 1`; a worker with --lease 2 is killed
    while its run holds the only slot; the slot is free again within two lease periods and
    no slot row is left once the runs finish."""
    fig = figures("10 tag-limit slot holder killed", "postgres",
                  "kill -9 of a worker (lease 2 s) holding the only slot of a limit")
    limits = start_cli(stead_home, "limits", "set", "slot", "--concurrency", "1",
                       log=tmp_path / "limits.log")
    assert finish(limits, 60) == 0, (tmp_path / "limits.log").read_text()
    assert [(x.name, x.concurrency) for x in db.list_limits()] == [("slot", 1)]
    out = tmp_path / "executions.txt"
    first = fault_flows.slotted.enqueue(out=str(out), n=1, seconds=3.0, queue="q",
                                        run_id="slot-holder")
    a = workers.start("-q", "q", "-c", "1", "--lease", "2")
    assert wait_for(lambda: executed(out, first) >= 1, 60)  # it holds the slot now
    second = fault_flows.slotted.enqueue(out=str(out), n=1, seconds=0.5, queue="q",
                                         run_id="slot-waiter")
    workers.start("-q", "q", "-c", "2", "--lease", "2")
    assert wait_for(lambda: db.get_run(second).state == "Running", 30)  # waiting for the slot
    workers.kill(a)
    killed_at = time.monotonic()
    a.wait(10)
    seen = len(executions(out))
    before = snapshot(db, [first, second])
    got_slot = wait_for(lambda: len(executions(out)) > seen, 2 * 2 + 4)
    fig.recover_s = time.monotonic() - killed_at if got_slot else None
    settle(db, [first, second], 3.0 + 0.5 + 2 * 2 + 6)
    fig.tally(db, [first, second], out, allowance={first: 1}, finished_before=before,
              url=pg_url)
    fig.check()
    assert got_slot, "the dead holder's slot was not free within two lease periods"

"""A worker's child processes: one that lost its run is never handed the next one, the
worker's --lease reaches its children's tag slots, and a drain signalled to the whole process
group (as systemd does) stops every child cleanly."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
import queued_flows

from stead.store.base import Limit, RunFilter, Store
from tests.worker.conftest import Workers, effects, wait_until

ON_SQLITE = pytest.mark.parametrize("backend", ["sqlite"], indirect=True)


def forkserver_of(worker_pid: int) -> int:
    """The pid of the forkserver in the worker's process group."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
                if os.getpgid(int(entry)) == worker_pid and b"forkserver" in cmdline:
                    return int(entry)
            except (OSError, ProcessLookupError):
                continue
    raise AssertionError("the worker has no forkserver")


def test_a_child_that_lost_its_lease_is_not_handed_the_next_run(workers: Workers, db: Store,
                                                                 tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    taken = queued_flows.hang.enqueue(out=str(out), seconds=1.0, queue="q", priority=1)
    behind = [queued_flows.twenty.enqueue(out=str(out), n=2, queue="q") for _ in range(3)]
    w = workers.start("-q", "q", "-c", "1")
    wait_until(lambda: any(k == f"{taken}/1" for k, _ in effects(out)), 60,
               "the first run to start")
    # With the forkserver stopped, the worker cannot learn that the exiting child is gone
    # (as when it polls between the child's last message and its exit), nor replace it.
    forkserver = forkserver_of(w.pid)
    os.kill(forkserver, signal.SIGSTOP)
    try:
        run = db.get_run(taken)
        # Taken away by hand, as a reaper would: the child's next write finds it lost.
        assert db.recover_run(taken, run.lease_epoch, time.time(), "taken away by the test",
                              count=False) == "Pending"
        wait_until(lambda: "lost the lease" in workers.log(w), 60, "the child to report")
        time.sleep(1.0)  # the worker's next rounds: it must not hand the exiting child a run
    finally:
        os.kill(forkserver, signal.SIGCONT)
    ids = [taken, *behind]
    wait_until(lambda: all(db.get_run(r).state == "Completed" for r in ids), 120,
               "every run to complete")
    log = workers.log(w)
    assert "died" not in log, log  # neither "before it started" nor "during the run"
    for rid in ids:
        assert db.get_run(rid).recoveries == 0, db.run_history(rid)
    crashes = [c.message for c in db.run_history(taken) if c.state == "Crashed"]
    assert crashes == ["taken away by the test"]
    for rid in behind:
        assert [c.state for c in db.run_history(rid)] == ["Pending", "Running", "Completed"]


def test_a_recovered_run_gets_back_its_tag_slot_within_the_worker_s_lease(
        workers: Workers, db: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEAD_LEASE_SECONDS", raising=False)  # only --lease says 2 s
    out = tmp_path / "effects.txt"
    db.set_limit(Limit("db", concurrency=1))
    run_id = queued_flows.holds_slot.enqueue(out=str(out), seconds=1.0, queue="q")
    workers.start("-q", "q", "-c", "1", "--lease", "2")
    [(_, pid)] = wait_until(lambda: effects(out), 60, "the task to take its slot")
    os.kill(pid, signal.SIGKILL)  # the child dies holding the only slot of `db`
    killed = time.monotonic()
    wait_until(lambda: db.get_run(run_id).state == "Completed", 120, "the recovered run")
    # Its own dead execution's slot lapsed after one 2 s lease, not the default 30 s.
    assert time.monotonic() - killed < 15
    assert len(effects(out)) == 2 and db.get_run(run_id).recoveries == 1


@ON_SQLITE
def test_sigterm_to_the_whole_process_group_drains_with_clean_child_exits(
        workers: Workers, db: Store, tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    ids = [queued_flows.twenty.enqueue(out=str(out), n=2, queue="q") for _ in range(4)]
    w = workers.start("-q", "q", "-c", "2")
    wait_until(lambda: all(db.get_run(r).state == "Completed" for r in ids), 60, "the runs")
    workers.kill(w, signal.SIGTERM)  # the worker, its forkserver and its children
    assert w.wait(30) == 0
    log = workers.log(w)
    assert "draining" in log and "exited with code" not in log, log
    assert {r.state for r in db.list_runs(RunFilter())} == {"Completed"}

"""`stead runs resume` of an enqueued run: it is handed back to its queue (its lease epoch
bumped, so its last executor is fenced off) and a worker resumes it, never executed beside
a worker that may hold it."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import queued_flows

from stead.store.base import Store
from tests.conftest import SCRIPTS
from tests.worker.conftest import Workers, effects, wait_until


def stead_cli(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STEAD_DATABASE_URL": url,
           "PYTHONPATH": os.pathsep.join([str(SCRIPTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "stead.cli.main", *args], capture_output=True,
                          text=True, timeout=120, env=env)


def test_resuming_a_run_whose_worker_died_runs_no_finished_step_twice(
        workers: Workers, db: Store, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    rid = queued_flows.twenty.enqueue(out=str(out), n=30, queue="q")
    a = workers.start("-q", "q", "-c", "1", "--lease", "2", TASK_SLEEP="0.05")
    wait_until(lambda: len(effects(out)) >= 5, 60, "worker A to finish 5 steps")
    workers.start("-q", "q", "-c", "1", "--lease", "2", TASK_SLEEP="0.05")  # B serves q too
    workers.kill(a)  # the whole group: worker, forkserver, child
    a.wait(10)
    resumed = stead_cli(db_url, "runs", "resume", rid)
    assert resumed.returncode == 0, resumed.stderr
    said = " ".join(resumed.stdout.split())  # handed back, or already requeued by B, which
    assert "handed back to queue 'q'" in said or "waits in queue 'q'" in said  # saw A die
    wait_until(lambda: db.get_run(rid).state == "Completed", 90, "the run to complete on B")
    counts = Counter(key for key, _ in effects(out))
    assert set(counts) == {f"{rid}/{i}" for i in range(1, 31)}
    twice = [key for key, n in counts.items() if n > 1]
    assert len(twice) <= 1, f"only the step in flight at the kill may run twice: {twice}"
    history = [c.state for c in db.run_history(rid)]
    assert history.count("Completed") == 1 and history.count("Running") == 2, history


def test_resuming_a_failed_enqueued_run_reruns_only_the_failure_that_ended_it(
        workers: Workers, db: Store, db_url: str, tmp_path: Path) -> None:
    out, marker = tmp_path / "effects.txt", tmp_path / "marker"
    rid = queued_flows.handled_then_fails.enqueue(out=str(out), marker=str(marker), queue="q")
    workers.start("-q", "q", "-c", "1", "--lease", "2")
    wait_until(lambda: db.get_run(rid).state == "Failed", 60, "the run to fail")
    marker.touch()
    resumed = stead_cli(db_url, "runs", "resume", rid)
    assert resumed.returncode == 0, resumed.stderr
    wait_until(lambda: db.get_run(rid).state == "Completed", 60, "the resumed run")
    counts = Counter(key for key, _ in effects(out))
    assert counts == {f"{rid}/1": 1, f"{rid}/2": 2}  # the handled failure was replayed
    run = db.get_run(rid)
    assert run.error is None
    again = stead_cli(db_url, "runs", "resume", rid)
    assert again.returncode == 0 and "already Completed" in again.stdout


def test_a_run_its_worker_still_holds_is_not_resumed_beside_it(
        workers: Workers, db: Store, db_url: str, tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    rid = queued_flows.hang.enqueue(out=str(out), seconds=3.0, queue="q")
    workers.start("-q", "q", "-c", "1", "--lease", "5")
    wait_until(lambda: effects(out), 60, "the first step")
    refused = stead_cli(db_url, "runs", "resume", rid)
    assert refused.returncode == 2
    assert "being executed" in " ".join(refused.stderr.split())
    wait_until(lambda: db.get_run(rid).state == "Completed", 60, "the run to complete")
    assert Counter(key for key, _ in effects(out)) == {f"{rid}/1": 1, f"{rid}/2": 1}

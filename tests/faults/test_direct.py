"""Direct flows (a script calling a flow, no worker) under SIGKILL and concurrent starts and
resumes, on SQLite and PostgreSQL (matrix rows 1, 1b, 6a, 6b)."""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path

from stead.store.base import Store
from tests.faults.harness import (
    Figures,
    executed,
    executions,
    finish,
    finished_steps,
    killpg,
    start_cli,
    start_direct,
    wait_for,
)

SEED = int(os.environ.get("STEAD_FAULTS_SEED", str(int(time.time()))))
TRIALS = int(os.environ.get("STEAD_FAULTS_TRIALS", "3"))  # per scenario and backend
STEPS = 30


def test_sigkill_at_random_points_then_resume(db_url: str, db: Store, stead_home: Path,
                                              tmp_path: Path,
                                              figures: Callable[..., Figures]) -> None:
    """Row 1: kill -9 a direct flow at a random step, then resume it: alternately
    `stead runs resume RUN` and the same call again with the same run id."""
    backend = "sqlite" if db_url.startswith("sqlite") else "postgres"
    fig = figures("1 SIGKILL direct flow, resume", backend,
                  f"{TRIALS} kills at random steps of a {STEPS}-step flow")
    fig.trials = TRIALS
    rng = random.Random(SEED)
    fig.notes.append(f"seed {SEED}")
    out = tmp_path / "executions.txt"
    params = {"out": str(out), "n": STEPS, "seconds": 0.02}
    ids, before, resume_s = [], {}, []
    for trial in range(TRIALS):
        rid = f"kill-{backend}-{trial}"
        ids.append(rid)
        proc = start_direct(stead_home, "chain", rid, params, tmp_path / f"{rid}.log")
        at = rng.randint(1, STEPS - 2)
        assert wait_for(lambda rid=rid, at=at: executed(out, rid) >= at, 60), rid
        time.sleep(rng.uniform(0, 0.02))  # inside a body, or between two
        killpg(proc)
        proc.wait(10)
        before[rid] = finished_steps(db, rid)
        started = time.monotonic()
        if trial % 2 == 0:
            resume = start_cli(stead_home, "runs", "resume", rid, log=tmp_path / f"{rid}.log")
        else:
            resume = start_direct(stead_home, "chain", rid, params, tmp_path / f"{rid}.log")
        code = finish(resume, 60)
        resume_s.append(time.monotonic() - started)
        assert code == 0, (tmp_path / f"{rid}.log").read_text()
    fig.recover_s = max(resume_s)
    fig.tally(db, ids, out, allowance=dict.fromkeys(ids, 1), finished_before=before,
              url=db_url)
    fig.check()
    for rid in ids:
        assert {k for r, k, _ in executions(out) if r == rid} == {str(i) for i in
                                                                 range(1, STEPS + 1)}


def test_a_caught_failed_step_is_not_run_again_on_resume(db_url: str, db: Store,
                                                         stead_home: Path, tmp_path: Path,
                                                         figures: Callable[..., Figures]
                                                         ) -> None:
    """Row 1b: a step that failed and that the flow caught is a finished step: a resume
    after a kill later in the flow replays its failure instead of running it again."""
    backend = "sqlite" if db_url.startswith("sqlite") else "postgres"
    fig = figures("1b caught Failed step, kill, resume", backend,
                  "kill after a caught failure")
    out = tmp_path / "executions.txt"
    rid = f"caught-{backend}"
    log = tmp_path / "caught.log"
    proc = start_direct(stead_home, "caught", rid, {"out": str(out), "n": 10, "seconds": 0.05},
                        log)
    assert wait_for(lambda: executed(out, rid) >= 4, 60)
    killpg(proc)
    proc.wait(10)
    before = {rid: finished_steps(db, rid)}
    assert "1" in before[rid]  # the caught failure was recorded
    started = time.monotonic()
    assert finish(start_cli(stead_home, "runs", "resume", rid, log=log), 60) == 0, \
        log.read_text()
    fig.recover_s = time.monotonic() - started
    fig.tally(db, [rid], out, allowance={rid: 1}, finished_before=before, url=db_url)
    fig.check()


def test_many_processes_start_the_same_run_id_at_once(db_url: str, db: Store,
                                                      stead_home: Path, tmp_path: Path,
                                                      figures: Callable[..., Figures]) -> None:
    """Row 6a: six processes call the same flow with the same run id at the same moment:
    one executes it, the others return its result or are refused while it runs."""
    backend = "sqlite" if db_url.startswith("sqlite") else "postgres"
    fig = figures("6a same run id started by 6 processes at once", backend,
                  "6 concurrent starts")
    out = tmp_path / "executions.txt"
    rid = f"same-{backend}"
    params = {"out": str(out), "n": 10, "seconds": 0.05}
    logs = [tmp_path / f"start-{i}.log" for i in range(6)]
    procs = [start_direct(stead_home, "chain", rid, params, log) for log in logs]
    codes = [finish(p, 90) for p in procs]
    fig.tally(db, [rid], out, url=db_url)
    fig.executors = len({pid for _, _, pid in executions(out)})
    fig.check()
    for code, log in zip(codes, logs, strict=True):
        text = log.read_text()
        assert (code == 0 and text.strip().endswith("45")) or "RunConflict" in text, text
    assert fig.executors == 1


def test_two_resumes_of_one_crashed_run_at_once(db_url: str, db: Store, stead_home: Path,
                                                tmp_path: Path,
                                                figures: Callable[..., Figures]) -> None:
    """Row 6b: a direct run is killed, then two `stead runs resume RUN` start at the same
    moment: one resumes it, the other is refused (or finds it finished)."""
    backend = "sqlite" if db_url.startswith("sqlite") else "postgres"
    fig = figures("6b two resumes of a crashed run at once", backend,
                  f"{TRIALS} kills, then 2 concurrent `stead runs resume`")
    fig.trials = TRIALS
    out = tmp_path / "executions.txt"
    ids, before, executors = [], {}, []
    for trial in range(TRIALS):
        rid = f"twice-{backend}-{trial}"
        ids.append(rid)
        log = tmp_path / f"{rid}.log"
        proc = start_direct(stead_home, "chain", rid,
                            {"out": str(out), "n": 12, "seconds": 0.1}, log)
        assert wait_for(lambda rid=rid: executed(out, rid) >= 2, 60)
        killpg(proc)
        proc.wait(10)
        before[rid] = finished_steps(db, rid)
        seen = len(executions(out))
        resumes = [start_cli(stead_home, "runs", "resume", rid, log=tmp_path / f"{rid}-{i}.log")
                   for i in range(2)]
        codes = [finish(p, 60) for p in resumes]
        assert 0 in codes, [(tmp_path / f"{rid}-{i}.log").read_text() for i in range(2)]
        executors.append(len({pid for _, _, pid in executions(out)[seen:]}))
    fig.executors = max(executors)
    fig.tally(db, ids, out, allowance=dict.fromkeys(ids, 1), finished_before=before,
              url=db_url)
    fig.check()
    assert fig.executors == 1, f"runs executed by {executors} processes at once"

"""What a worker tells the person watching it: one line per finished run (its state, and
why when it did not complete), and `stead workers ls` telling a dead worker by its own lease."""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import queued_flows

from stead.store.base import Store
from tests.conftest import SCRIPTS
from tests.worker.conftest import Workers, wait_until

GOOD = """
from stead import flow, task

@task
def double(x: int) -> int:
    return 2 * x

@flow
def reported(x: int) -> int:
    return double(x)
"""


def _finished(db: Store, run_id: str) -> bool:
    return db.get_run(run_id).state in ("Completed", "Failed", "Crashed")


def test_each_finished_run_gets_one_line_with_its_state_and_why_it_failed(
        workers: Workers, db: Store, tmp_path: Path) -> None:
    # A flow module that imports today and not on the worker: its dependency is gone.
    pkg = tmp_path / "mods"
    pkg.mkdir()
    module = pkg / "reported_flow_mod.py"
    module.write_text(GOOD)
    sys.path.insert(0, str(pkg))
    try:
        mod = importlib.import_module("reported_flow_mod")
        broken = mod.reported.enqueue(x=1, queue="q", run_id="broken-import-run-2026-12-02")
    finally:
        sys.path.remove(str(pkg))
        sys.modules.pop("reported_flow_mod", None)
    module.write_text("import no_such_dependency_of_this_flow\n" + GOOD)
    for cached in pkg.glob("__pycache__/*"):
        cached.unlink()
    queued_flows.twenty.enqueue(out=str(tmp_path / "out"), n=1, queue="q",
                                run_id="fine-run-2026-12-02")
    failing = queued_flows.handled_then_fails.enqueue(
        out=str(tmp_path / "out"), marker=str(tmp_path / "never"), queue="q",
        run_id="failing-run-2026-12-02")

    proc = workers.start("-q", "q", "-c", "1", "--max-runs", "3",
                         PYTHONPATH=os.pathsep.join([str(pkg), str(SCRIPTS),
                                                     os.environ.get("PYTHONPATH", "")]))
    for run_id in (str(broken), "fine-run-2026-12-02", str(failing)):
        wait_until(lambda r=run_id: _finished(db, r), 60, f"run {run_id} to finish")
    proc.wait(30)
    log = workers.log(proc)
    lines = {run_id: [line for line in log.splitlines() if f"run {run_id} " in line]
             for run_id in (str(broken), "fine-run-2026-12-02", str(failing))}
    assert [len(found) for found in lines.values()] == [1, 1, 1], log
    assert re.search(r"run broken-import-run-2026-12-02 Failed: reported .*"
                     r"no_such_dependency_of_this_flow", lines[str(broken)][0]), log
    assert re.search(r"run fine-run-2026-12-02 Completed: twenty in [0-9.]+ m?s$",
                     lines["fine-run-2026-12-02"][0]), log
    assert re.search(r"run failing-run-2026-12-02 Failed: handled_then_fails in .* m?s: "
                     r"\w+Error: .*\(step \d", lines[str(failing)][0]), log
    assert "stopped after 3 runs" in log


def _workers_ls(db_url: str) -> str:
    env = {**os.environ, "STEAD_DATABASE_URL": db_url, "COLUMNS": "200",
           "STEAD_LEASE_SECONDS": "30"}  # the reader's own setting must not matter
    return subprocess.run([sys.executable, "-m", "stead.cli.main", "workers", "ls"],
                          capture_output=True, text=True, env=env, timeout=60).stdout


def test_workers_ls_shows_a_killed_worker_lost_once_its_own_lease_lapses(
        workers: Workers, db: Store, db_url: str) -> None:
    proc = workers.start("-q", "q", "--lease", "2")
    worker = wait_until(lambda: [w for w in db.list_workers() if w.pid == proc.pid], 30,
                        "the worker to register")[0]
    assert worker.lease_s == 2.0
    assert "running" in _workers_ls(db_url)
    workers.kill(proc)
    proc.wait(10)
    killed_at = time.time()
    # Lost after 2 s of silence, long before the reader's 30-second default would say so.
    listing = wait_until(lambda: (out := _workers_ls(db_url)) and "lost" in out and out, 20,
                         "workers ls to show the killed worker lost")
    assert time.time() - killed_at < 30
    assert re.search(r"lost .* 2 s", listing), listing
    assert db.list_workers()[0].is_lost(time.time(), default_lease_s=30.0)

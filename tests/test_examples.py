"""The examples the README points to work end to end, in fresh processes."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from stead.core.runtime import store_for
from stead.store.base import RunFilter
from tests.conftest import script_env

EXAMPLES = Path(__file__).parent.parent / "examples"


def copy_example(name: str, tmp_path: Path) -> Path:
    target = tmp_path / name
    shutil.copy(EXAMPLES / name, target)  # the examples write next to themselves
    return target


def test_quickstart_runs_and_records_the_retry(stead_home: Path, tmp_path: Path) -> None:
    script = copy_example("quickstart.py", tmp_path)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=120, env=script_env(stead_home))
    assert done.returncode == 0, done.stderr
    assert "EUR" in done.stdout and "stead runs show" in done.stdout
    assert "Task 'fetch_rates' [2] Retrying" in done.stderr
    [run] = store_for().list_runs(RunFilter())
    assert run.state == "Completed" and run.flow_name == "daily_revenue"
    steps = store_for().load_steps(run.id)
    assert steps["2"].attempts == 2 and (tmp_path / "warehouse.db").exists()


def test_crash_resume_example_resumes_after_kill_9(stead_home: Path, tmp_path: Path) -> None:
    script = copy_example("crash_resume.py", tmp_path)
    env = script_env(stead_home)
    first = subprocess.Popen([sys.executable, str(script), "demo", "6"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    assert first.stdout is not None
    lines = []
    while len(lines) < 3:  # the banner and two finished chunks
        line = first.stdout.readline()
        assert line, first.stderr.read() if first.stderr else "no output"
        lines.append(line)
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    start = time.monotonic()
    again = subprocess.run([sys.executable, str(script), "demo", "6"], capture_output=True,
                           text=True, timeout=120, env=env)
    assert again.returncode == 0, again.stderr
    assert "result: 55" in again.stdout  # 0 + 1 + 4 + 9 + 16 + 25
    assert "finished steps will be reused" in again.stderr
    # The flow body runs again from the top, but chunks 0 and 1 (finished before the kill)
    # come back from the database: their task bodies, which log, do not run again.
    assert "chunk 0 done" not in again.stderr and "chunk 1 done" not in again.stderr
    assert "chunk 5 done" in again.stderr and time.monotonic() - start < 60
    assert store_for().get_run("demo").resumes == 1

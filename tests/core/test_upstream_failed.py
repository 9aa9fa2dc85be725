"""A submitted task skipped because its input failed is recorded, and decided afresh on resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from stead import UpstreamFailed, flow, task
from stead.core.runtime import store_for
from stead.store.base import RunFilter

calls: list[str] = []
fail_extract = [True]


@task
def extract() -> int:
    calls.append("extract")
    if fail_extract[0]:
        raise ConnectionError("source down")
    return 20


@task
def transform(x: int) -> int:
    calls.append("transform")
    return x + 1


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    fail_extract[0] = True


def test_a_skipped_task_is_recorded_failed_with_no_attempt_and_its_reason(store) -> None:
    @flow
    def etl() -> int:
        return transform.submit(extract.submit()).result()

    with pytest.raises(UpstreamFailed):
        etl()
    [run] = store.list_runs(RunFilter())
    steps = store.load_steps(run.id)
    skipped = steps["2"]
    assert skipped.name == "transform" and skipped.state == "Failed" and skipped.attempts == 0
    assert json.loads(skipped.depends_on) == ["1"]
    error = json.loads(skipped.error)
    assert error["type"] == "stead.errors.UpstreamFailed"
    assert "did not run: its input from task 'extract' [1] failed (ConnectionError: source " \
           "down)" in error["message"]
    assert calls == ["extract"]


def test_a_recorded_skip_is_not_replayed_when_its_input_succeeds_on_resume(store) -> None:
    # Nobody uses the futures: the run fails with extract's error, and on resume only that
    # failure is rerun. The recorded skip of transform must not be raised again.
    @flow
    def etl() -> str:
        transform.submit(extract.submit())
        return "submitted"

    with pytest.raises(ConnectionError):
        etl()
    [run] = store.list_runs(RunFilter())
    assert store.load_steps(run.id)["2"].state == "Failed"
    fail_extract[0] = False
    assert etl.resume(run.id) == "submitted"
    steps = store.load_steps(run.id)
    assert steps["1"].state == "Completed" and steps["2"].state == "Completed"
    assert calls == ["extract", "extract", "transform"]
    assert store.get_run(run.id).state == "Completed"


def test_runs_show_lists_the_skipped_step_with_its_reason(store, backend: str) -> None:
    if backend == "http":
        pytest.skip("the CLI reads the database itself; the data is checked above")

    @flow
    def etl() -> int:
        return transform.submit(extract.submit()).result()

    with pytest.raises(UpstreamFailed):
        etl()
    [run] = store_for().list_runs(RunFilter())
    shown = subprocess.run([sys.executable, "-m", "stead.cli.main", "runs", "show", run.id],
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "COLUMNS": "250"})
    assert shown.returncode == 0, shown.stderr
    [line] = [ln for ln in shown.stdout.splitlines() if " transform " in ln]
    assert "Failed" in line and "UpstreamFailed: task 'transform' [2] did not run" in line

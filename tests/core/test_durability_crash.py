"""What each durability level re-runs after a SIGKILL: real processes killed at random points.

The flow (tests/scripts/crash_flow.py) runs N tasks whose bodies append their index to a
file (O_APPEND), so the file says which bodies ran, and how often, across the kill and the
resume. fsync and process re-run at most the step in flight; batched at most the last group.
"""

from __future__ import annotations

import collections
import random
from pathlib import Path

import pytest

from stead.core.runtime import store_for
from tests.conftest import run_script
from tests.core.test_resume import kill9, start, wait_for_lines

pytestmark = pytest.mark.slow
N = 200


def crash_and_resume(home: Path, out: Path, run_id: str, kill_after: int,
                     **env: str) -> tuple[list[int], collections.Counter[int]]:
    """Run the flow, SIGKILL it once `kill_after` bodies ran, resume it to the end; return
    the indexes the first process ran and how often every index ran in all."""
    proc = start(home, "crash_flow.py", run_id, str(N), CRASH_OUT=str(out), **env)
    wait_for_lines(out, kill_after, proc)
    kill9(proc)
    first = [int(x) for x in out.read_text().split()]
    result = run_script(home, "crash_flow.py", run_id, str(N), CRASH_OUT=str(out), **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(sum(range(N)))  # the result is right
    counts = collections.Counter(int(x) for x in out.read_text().split())
    assert set(counts) == set(range(N)), "every step's body ran"
    assert max(counts.values()) <= 2
    assert store_for().get_run(run_id).state == "Completed"
    return first, counts


def twice(counts: collections.Counter[int]) -> list[int]:
    return sorted(i for i, c in counts.items() if c > 1)


@pytest.mark.parametrize("trial", range(3))
def test_batched_re_runs_at_most_the_last_group(stead_home: Path, tmp_path: Path,
                                                trial: int) -> None:
    group = 16
    out = tmp_path / "out.txt"
    first, counts = crash_and_resume(
        stead_home, out, f"batched-{trial}", random.randint(5, N - 5),
        STEAD_DURABILITY="batched", STEAD_BATCH_STEPS=str(group),
        STEAD_BATCH_MS="600000",  # groups commit by count only: the bound is exact
        TASK_SLEEP="0.002")
    again = twice(counts)
    assert len(again) <= group, f"more than a group ran twice: {again}"
    if again:  # the steps of the last, uncommitted group (and the one in flight), no others
        assert again == list(range(again[0], again[-1] + 1))
        assert again[0] % group == 0, f"not a group's steps: {again}"
        assert again[-1] == max(first)


@pytest.mark.parametrize("trial", range(2))
def test_batched_commits_a_group_by_time_while_the_flow_is_in_a_long_step(
        stead_home: Path, tmp_path: Path, trial: int) -> None:
    out = tmp_path / "out.txt"
    first, counts = crash_and_resume(
        stead_home, out, f"timer-{trial}", random.randint(3, 12),
        STEAD_DURABILITY="batched", STEAD_BATCH_STEPS="1000",  # never full in this run
        STEAD_BATCH_MS="5", TASK_SLEEP="0.05")  # each step outlasts the group's age
    again = twice(counts)
    # Without the timer every step before the kill would run twice.
    assert len(again) <= 2 and (not again or again[-1] == max(first)), again


@pytest.mark.parametrize("level", ["fsync", "process"])
@pytest.mark.parametrize("trial", range(2))
def test_fsync_and_process_re_run_at_most_the_step_in_flight(
        stead_home: Path, tmp_path: Path, level: str, trial: int) -> None:
    out = tmp_path / "out.txt"
    first, counts = crash_and_resume(stead_home, out, f"{level}-{trial}",
                                     random.randint(5, 60), STEAD_DURABILITY=level,
                                     TASK_SLEEP="0.002")
    again = twice(counts)
    assert len(again) <= 1 and (not again or again[0] == max(first)), again
    assert store_for().get_run(f"{level}-{trial}").durability == level

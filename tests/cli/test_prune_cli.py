"""`stead runs prune`: dry run, confirmation, --yes, --state, and the errors it reports.

The database is filled by real flows whose FakeClocks stand 40 days and 1 day before the
present (the command prunes relative to the wall clock, as a person would run it).
"""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stead import FakeClock, flow, get_logger, task
from stead.cli.prune import fmt_bytes, parse_duration
from stead.core.runtime import result_files, store_for
from stead.store.base import RunFilter

DAY = 86_400.0


@task
def big(n: int) -> str:
    return "x" * n


@task
def boom() -> None:
    raise ValueError("boom")


def record(run_id: str, days_ago: float, fail: bool = False) -> None:
    """A run (with a child run) that ended `days_ago` days ago; its result is a file."""
    clock = FakeClock(start=time.time() - days_ago * DAY)

    @flow(clock=clock)
    def child() -> int:
        return len(big(10))

    @flow(clock=clock)
    def nightly() -> str:
        get_logger().info("nightly run")
        child()
        if fail:
            boom()
        return big(5000)

    try:
        nightly.with_options(run_id=run_id)()
    except ValueError:
        assert fail


@pytest.fixture(autouse=True)
def small_inline_max(monkeypatch: pytest.MonkeyPatch) -> None:
    from stead.settings import reset_settings

    monkeypatch.setenv("STEAD_RESULT_INLINE_MAX", "1000")
    reset_settings()


@pytest.fixture
def runs() -> None:
    record("old-ok", 40)
    record("old-bad", 40, fail=True)
    record("recent", 1)


def top_level() -> set[str]:
    return {r.id for r in store_for().list_runs(RunFilter(limit=100)) if r.parent_id is None}


def test_dry_run_says_what_would_go_and_deletes_nothing(invoke, runs) -> None:
    files = list(result_files().root.rglob("*.json"))
    result = invoke("runs", "prune", "--older-than", "30d", "--dry-run")
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "Would prune 4 runs, 6 steps, 2 log lines, 0 cache entries and 2 result files" in out
    assert "Nothing was deleted" in out
    assert top_level() == {"old-ok", "old-bad", "recent"}
    assert list(result_files().root.rglob("*.json")) == files


def test_yes_prunes_old_runs_and_their_files(invoke, runs) -> None:
    store = store_for()
    old_file = store.get_run("old-ok").result_ref
    assert old_file and (result_files().root / old_file).exists()
    result = invoke("runs", "prune", "--older-than", "30d", "--yes")
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert "Pruned 4 runs, 6 steps, 2 log lines, 0 cache entries and 2 result files" in out
    assert "freed): the finished runs that ended before" in out
    assert top_level() == {"recent"}
    assert not (result_files().root / old_file).exists()
    again = invoke("runs", "prune", "--older-than", "30d", "--yes")
    assert again.exit_code == 0 and "Nothing to prune" in again.stdout


def test_state_chooses_which_finished_runs_go(invoke, runs) -> None:
    result = invoke("runs", "prune", "--older-than", "720h", "--state", "failed", "--yes")
    assert result.exit_code == 0, result.output
    assert "Pruned 2 runs" in result.stdout and "the Failed runs" in result.stdout
    assert top_level() == {"old-ok", "recent"}


def test_without_yes_and_without_a_terminal_it_refuses(invoke, runs) -> None:
    result = invoke("runs", "prune", "--older-than", "30d")
    assert result.exit_code == 2
    err = " ".join(result.stderr.split())
    assert "error:" in err and "not pruning 4 runs without confirmation" in err
    assert "Pass --yes" in err
    assert top_level() == {"old-ok", "old-bad", "recent"}


@pytest.mark.parametrize(("answer", "code", "left"), [
    ("y", 0, {"recent"}), ("n", 1, {"old-ok", "old-bad", "recent"})])
def test_asks_on_a_terminal(runs, stead_home: Path, answer: str, code: int,
                            left: set[str]) -> None:
    main, secondary = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stead.cli.main", "runs", "prune", "--older-than", "30d"],
            stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "STEAD_HOME": str(stead_home)})
        os.write(main, f"{answer}\n".encode())
        out, err = proc.communicate(timeout=60)
    finally:
        os.close(main)
        os.close(secondary)
    assert proc.returncode == code, (out, err)
    assert "Delete 4 runs, 6 steps" in " ".join(out.split())
    assert top_level() == left
    if answer == "n":
        assert "Nothing was deleted" in err


def test_live_states_and_bad_durations_are_errors(invoke, runs) -> None:
    live = invoke("runs", "prune", "--older-than", "30d", "--state", "Running", "--yes")
    assert live.exit_code == 2
    assert "only finished runs are pruned" in " ".join(live.stderr.split())
    for bad in ("30", "thirty days", "-5d", "3y"):
        result = invoke("runs", "prune", "--older-than", bad)
        assert result.exit_code == 2, bad
        assert "is not a duration" in " ".join(result.output.split())
    unknown = invoke("runs", "prune", "--older-than", "1d", "--state", "Sleeping")
    assert unknown.exit_code == 2 and "unknown state" in unknown.output
    assert top_level() == {"old-ok", "old-bad", "recent"}


def test_nothing_to_prune(invoke, runs) -> None:
    result = invoke("runs", "prune", "--older-than", "90d")
    assert result.exit_code == 0 and "Nothing to prune" in result.stdout


def test_help_has_an_example(invoke) -> None:
    result = invoke("runs", "prune", "--help")
    assert result.exit_code == 0 and "Example" in result.stdout
    assert "prune" in invoke("runs", "--help").stdout


def test_durations_and_sizes() -> None:
    assert [parse_duration(t) for t in ("30d", "12h", "90m", "3600s", "2w", "1.5d", "7 D")] == [
        30 * DAY, 12 * 3600, 90 * 60, 3600, 14 * DAY, 1.5 * DAY, 7 * DAY]
    assert [fmt_bytes(n) for n in (0, 999, 1000, 1_234_567, 5 * 10**12)] == [
        "0 bytes", "999 bytes", "1.0 KB", "1.2 MB", "5000.0 GB"]

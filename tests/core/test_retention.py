"""Retention on runs recorded by real flows: rows and result files go, shared files stay.

Runs are recorded on a FakeClock and pruned with an explicit `now`; results larger than a
small STEAD_RESULT_INLINE_MAX go to files, so every run leaves some behind.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from stead import INPUTS, FakeClock, flow, get_logger, task
from stead.core.results import ResultFiles
from stead.core.retention import DAY, PruneReport, apply_retention, prune
from stead.core.runtime import result_files
from stead.errors import ConfigError, RunNotFound
from stead.settings import get_settings, reset_settings
from stead.store.base import RunFilter, Store

T0 = 1_700_000_000.0
calls: Counter[str] = Counter()


@pytest.fixture(autouse=True)
def _local_only(backend: str) -> None:
    if backend == "http":
        pytest.skip("pruning is done where the database is: remote processes may not prune")


@pytest.fixture(autouse=True)
def small_inline_max(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEAD_RESULT_INLINE_MAX", "200")
    reset_settings()
    calls.clear()


@task(cache_policy=INPUTS)
def embed(text: str) -> str:
    calls["embed"] += 1
    return text * 100  # larger than the inline maximum: a file


@task
def bulky(text: str) -> str:
    return text.upper() * 100


@task
def tiny(i: int) -> int:
    return i


def report_flow(clock: FakeClock, fail_after_embed: bool = False):
    """A flow with a small step, a cached large step, and a child flow with a large result."""

    @flow(clock=clock)
    def summarize(text: str) -> str:
        get_logger().info("summarizing %s", text)
        return bulky(text)

    @flow(clock=clock)
    def report(text: str) -> str:
        get_logger().info("report on %s", text)
        tiny(1)
        embedded = embed(text)
        if fail_after_embed:
            raise RuntimeError("the flow failed after its cached step")
        return embedded + summarize(text)

    return report


def run_at(store: Store, at: float, text: str = "hello", fail: bool = False) -> str:
    """Run the report flow at time `at` (its clock stands still); the run's id."""
    try:
        report_flow(FakeClock(start=at), fail)(text)
    except RuntimeError:
        assert fail
    return next(r.id for r in store.list_runs(RunFilter(limit=10)) if r.parent_id is None)


def files_of(store: Store, run_id: str) -> set[str]:
    """The result files the run, its steps and its child runs refer to."""
    refs = {store.get_run(run_id).result_ref}
    for step in store.load_steps(run_id).values():
        refs.add(step.result_ref)
        if step.child_run_id:
            refs |= files_of(store, step.child_run_id)
    return {r for r in refs if r}


def test_pruning_keeps_a_file_a_newer_cached_step_shares(store: Store) -> None:
    files = result_files(store.url)
    old = run_at(store, T0)
    # A newer run takes embed("hello") from the cache, sharing the old run's file, then fails.
    new = run_at(store, T0 + 10 * DAY, fail=True)
    shared = store.get_step(new, "2")
    assert shared.state == "Cached" and shared.cached_from == f"{old}/2"
    assert shared.result_ref == store.get_step(old, "2").result_ref
    old_files = files_of(store, old)
    only_old = old_files - {shared.result_ref}
    # The run's result, the child-flow step's, the child run's and its bulky step's.
    assert len(only_old) == 4
    sizes = sum((files.root / ref).stat().st_size for ref in only_old)
    now = T0 + 35 * DAY

    dry = prune(store, 30 * DAY, now, dry_run=True)

    assert (dry.runs, dry.steps, dry.files, dry.bytes) == (2, 4, 4, sizes)
    assert store.get_run(old).state == "Completed"
    assert all((files.root / ref).exists() for ref in old_files)

    done = prune(store, 30 * DAY, now)

    assert done == PruneReport(before=now - 30 * DAY, runs=2, steps=4, logs=2, cache=1,
                               files=4, bytes=sizes)
    assert (done.runs, done.steps, done.logs, done.cache, done.files, done.bytes) == (
        dry.runs, dry.steps, dry.logs, dry.cache, dry.files, dry.bytes)
    for run_id in (old, f"{old}:3"):
        with pytest.raises(RunNotFound):
            store.get_run(run_id)
        assert store.read_logs(run_id) == []
    assert not any((files.root / ref).exists() for ref in only_old)
    assert json.loads(files.load(shared.result, shared.result_ref)) == "hello" * 100
    # Resuming the newer run replays its Cached step from the shared file.
    resumed = report_flow(FakeClock(start=T0 + 36 * DAY)).resume(new)
    assert resumed == "hello" * 100 + "HELLO" * 100 and calls["embed"] == 1
    # The cache entry went with the run that produced it: a new run computes the value again.
    newest = run_at(store, T0 + 45 * DAY)
    assert store.get_step(newest, "2").state == "Completed" and calls["embed"] == 2

    later = prune(store, 30 * DAY, T0 + 70 * DAY)  # the resumed run goes, and now the file

    assert later.runs == 2 and not (files.root / shared.result_ref).exists()
    assert [r.id for r in store.list_runs(RunFilter()) if r.parent_id is None] == [newest]
    assert all((files.root / ref).exists() for ref in files_of(store, newest))


def test_a_dry_run_changes_nothing(store: Store) -> None:
    files = result_files(store.url)
    old = run_at(store, T0)
    before = {p: p.read_bytes() for p in files.root.rglob("*") if p.is_file()}
    steps = store.load_steps(old)
    dry = prune(store, 30 * DAY, T0 + 40 * DAY, dry_run=True)
    assert dry.dry_run and dry.runs == 2 and dry.steps == len(steps) + 1  # + the child's
    assert {p: p.read_bytes() for p in files.root.rglob("*") if p.is_file()} == before
    assert store.load_steps(old) == steps
    assert len(store.list_runs(RunFilter())) == 2


def test_recent_and_live_runs_stay(store: Store) -> None:
    run_at(store, T0 + 20 * DAY)
    assert prune(store, 30 * DAY, T0 + 40 * DAY) == PruneReport(before=T0 + 10 * DAY)
    assert len(store.list_runs(RunFilter())) == 2


def test_batches_report_running_totals(store: Store) -> None:
    for i in range(3):
        run_at(store, T0 + i, text=f"t{i}")
    seen: list[int] = []
    done = prune(store, DAY, T0 + 10 * DAY, batch=1, on_batch=lambda r: seen.append(r.runs))
    assert seen == [2, 4, 6] and done.runs == 6


def test_only_finished_states_and_sane_arguments_are_accepted(store: Store) -> None:
    with pytest.raises(ConfigError, match="only finished runs are pruned"):
        prune(store, DAY, T0, states=("Completed", "Running"))
    with pytest.raises(ConfigError, match="0 or more"):
        prune(store, -1, T0)
    with pytest.raises(ConfigError, match="1 or more"):
        prune(store, DAY, T0, batch=0)


def test_retention_setting(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    run_at(store, T0)
    assert get_settings().retention_days == 0
    assert apply_retention(store, T0 + 400 * DAY) is None  # 0: keep forever
    monkeypatch.setenv("STEAD_RETENTION_DAYS", "30")
    reset_settings()
    assert apply_retention(store, T0 + 20 * DAY).runs == 0
    assert apply_retention(store, T0 + 31 * DAY).runs == 2
    for bad in ("-1", "soon", "inf"):
        monkeypatch.setenv("STEAD_RETENTION_DAYS", bad)
        reset_settings()
        with pytest.raises(ConfigError, match="STEAD_RETENTION_DAYS"):
            get_settings()


def test_result_files_delete_only_inside_their_folder(tmp_path: Path) -> None:
    files = ResultFiles(tmp_path / "results", 10)
    _, ref = files.place("r", "1", "x" * 100)
    assert ref is not None and files.size(ref) == 100
    outside = tmp_path / "outside.json"
    outside.write_text("keep me")
    assert files.delete("../outside.json") is None and files.delete(str(outside)) is None
    assert outside.exists()
    assert files.delete(ref) == 100 and files.delete(ref) is None and files.size(ref) == 0

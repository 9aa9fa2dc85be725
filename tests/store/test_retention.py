"""The storage contract of retention: prune_runs, count_prunable, results_in_use.

Every test runs on SQLite and on PostgreSQL. Times are parameters: runs are recorded with the
created/ended times a test chooses and pruned with the `before` it chooses.
"""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stead.core.runtime import store_for
from stead.errors import ConfigError, RunNotFound
from stead.store.base import (
    PRUNABLE_STATES,
    CacheEntry,
    LogRecord,
    RunFilter,
    RunRecord,
    StepRecord,
    Store,
)

DAY = 86_400.0
NOW = 1_800_000_000.0
OLD = NOW - 40 * DAY
RECENT = NOW - 1 * DAY
BEFORE = NOW - 30 * DAY
LIVE = ("Pending", "Running", "Retrying", "Paused", "Scheduled", "Late", "Cancelling")


@pytest.fixture
def store(backend: str) -> Store:
    if backend == "http":
        pytest.skip("pruning is done where the database is: remote processes may not prune")
    return store_for()


def record(store: Store, run_id: str, state: str = "Completed", at: float = OLD,
           parent: str | None = None, ended: float | str | None = "auto", steps: int = 2,
           ref: str | None = None) -> None:
    """A run created at `at`, ended at `ended` (default: `at` + 60 for a final state, else
    not ended), with `steps` steps, one log line per step, and a Running -> `state` history."""
    if ended == "auto":
        ended = at + 60 if state in PRUNABLE_STATES else None
    assert not isinstance(ended, str)
    run = RunRecord(id=run_id, flow_name="f", state="Running", parent_id=parent,
                    parent_step=parent and run_id.rpartition(":")[2], created_at=at,
                    started_at=at)
    store.create_run(run, "started")
    for key in range(1, steps + 1):
        store.record_step(StepRecord(run_id, str(key), "t", "task", "Completed", 1, at, at + 1,
                                     "{}", str(key)),
                          [LogRecord(run_id, str(key), at + 1, 20, f"step {key}")])
    run.ended_at, run.result_ref = ended, ref
    store.transition_run(run, state, ended if ended is not None else at)


def remaining(store: Store) -> set[str]:
    return {r.id for r in store.list_runs(RunFilter(limit=100_000))}


def prune_all(store: Store, before: float = BEFORE, states: tuple[str, ...] = PRUNABLE_STATES,
              limit: int = 500) -> list[int]:
    """prune_runs until nothing is left; the runs deleted by each call."""
    counts = []
    while (done := store.prune_runs(before, states, limit)).runs:
        counts.append(done.runs)
    return counts


def test_old_finished_runs_go_with_child_runs_steps_history_and_logs(store: Store) -> None:
    record(store, "old")
    record(store, "old:2", parent="old")
    record(store, "old:2:1", parent="old:2", state="Failed")
    record(store, "named-child", parent="old")  # a child run given an id of its own
    record(store, "old:3", parent="old", state="Running")  # left behind by a crash: goes too
    record(store, "new", at=RECENT)
    record(store, "new:1", parent="new", at=OLD)  # old, but its top-level run is recent
    record(store, "failed", state="Failed")
    record(store, "crashed", state="Crashed")
    record(store, "cancelled", state="Cancelled")
    before_counts = store.count_prunable(BEFORE, PRUNABLE_STATES)

    done = store.prune_runs(BEFORE, PRUNABLE_STATES, 100)

    gone = {"old", "old:2", "old:2:1", "named-child", "old:3", "failed", "crashed", "cancelled"}
    assert (done.runs, done.steps, done.logs) == (8, 16, 16)
    assert (before_counts.runs, before_counts.steps, before_counts.logs) == (8, 16, 16)
    assert remaining(store) == {"new", "new:1"}
    for run_id in gone:
        with pytest.raises(RunNotFound):
            store.get_run(run_id)
        assert store.run_history(run_id) == []
        assert store.read_logs(run_id) == []
    assert store.count_steps(["new", "new:1"]) == {"new": 2, "new:1": 2}
    assert [g.message for g in store.read_logs("new")] == ["step 1", "step 2"]
    assert [c.state for c in store.run_history("new")] == ["Running", "Completed"]
    assert store.prune_runs(BEFORE, PRUNABLE_STATES, 100).runs == 0


def test_live_runs_stay_however_old(store: Store) -> None:
    for state in LIVE:
        record(store, f"live-{state}", state=state, ended=None)
    record(store, "running-with-an-end", state="Running", ended=OLD)  # state decides, not time
    record(store, "done")
    assert prune_all(store, before=NOW) == [1]
    assert remaining(store) == {f"live-{s}" for s in LIVE} | {"running-with-an-end"}


def test_only_runs_that_ended_before_the_cutoff_go(store: Store) -> None:
    record(store, "at-cutoff", at=BEFORE - 60)  # ends exactly at `before`: stays
    record(store, "just-before", at=BEFORE - 61)
    record(store, "long-run", at=OLD, ended=BEFORE + 1)  # started long ago, ended later
    assert prune_all(store) == [1]
    assert remaining(store) == {"at-cutoff", "long-run"}


def test_limit_counts_top_level_runs_oldest_first(store: Store) -> None:
    for i in range(5):
        record(store, f"r{i}", at=OLD + i)
        record(store, f"r{i}:1", parent=f"r{i}", at=OLD + i)
    first = store.prune_runs(BEFORE, PRUNABLE_STATES, 2)
    assert (first.runs, first.steps) == (4, 8)  # two top-level runs, each with its child
    assert remaining(store) == {"r2", "r2:1", "r3", "r3:1", "r4", "r4:1"}
    assert prune_all(store, limit=2) == [4, 2]
    assert remaining(store) == set()


def test_states_choose_among_final_states(store: Store) -> None:
    record(store, "ok")
    record(store, "bad", state="Failed")
    assert store.count_prunable(BEFORE, ("Failed",)).runs == 1
    assert prune_all(store, states=("Failed",)) == [1]
    assert remaining(store) == {"ok"}


@pytest.mark.parametrize("states", [("Running",), ("Completed", "Pending"), ()])
def test_live_states_are_refused(store: Store, states: tuple[str, ...]) -> None:
    record(store, "r", state="Completed")
    with pytest.raises(ConfigError, match="only finished runs are pruned"):
        store.prune_runs(BEFORE, states, 10)
    with pytest.raises(ConfigError, match="only finished runs are pruned"):
        store.count_prunable(BEFORE, states)
    assert remaining(store) == {"r"}


def test_cache_entries_of_pruned_runs_go_and_their_files_are_reported(store: Store) -> None:
    record(store, "old", ref="ru/old.json")
    record(store, "old:1", parent="old", steps=0)
    store.record_step(StepRecord("old", "3", "big", "task", "Completed", 1, OLD, OLD, "{}",
                                 None, "st/old-3.json", cache_key="k-old"))
    store.write_cache(CacheEntry("k-old", None, "st/old-3.json", "old", "3", OLD))
    store.write_cache(CacheEntry("k-child", "7", None, "old:1", "1", OLD))
    record(store, "new", at=RECENT)
    store.write_cache(CacheEntry("k-new", "8", None, "new", "1", RECENT))
    # The newer run's Cached step shares the old run's file.
    store.record_step(StepRecord("new", "3", "big", "task", "Cached", 0, RECENT, RECENT, "{}",
                                 None, "st/old-3.json", cache_key="k-old",
                                 cached_from="old/3"))
    counted = store.count_prunable(BEFORE, PRUNABLE_STATES)
    assert (counted.runs, counted.cache) == (2, 2)
    assert counted.result_refs == ["ru/old.json"]  # the shared file would stay

    done = store.prune_runs(BEFORE, PRUNABLE_STATES, 10)

    assert (done.runs, done.cache) == (2, 2)
    assert done.result_refs == ["ru/old.json", "st/old-3.json"]
    assert store.read_cache("k-old") is None and store.read_cache("k-child") is None
    assert store.read_cache("k-new") is not None
    assert store.results_in_use(done.result_refs) == ["st/old-3.json"]
    assert store.get_step("new", "3").result_ref == "st/old-3.json"


def test_results_in_use_looks_at_runs_steps_and_cache(store: Store) -> None:
    record(store, "a", ref="runs/a.json", at=RECENT)
    store.record_step(StepRecord("a", "9", "t", "task", "Completed", 1, 1.0, 2.0, "{}", None,
                                 "steps/a-9.json"))
    store.write_cache(CacheEntry("k", None, "cache/k.json", "gone-run", "1", 1.0))
    refs = ["cache/k.json", "nobody.json", "runs/a.json", "steps/a-9.json"]
    assert store.results_in_use(refs) == ["cache/k.json", "runs/a.json", "steps/a-9.json"]
    assert store.results_in_use([]) == []
    many = [f"x/{i}.json" for i in range(12_000)] + ["runs/a.json"]  # more than one query
    assert store.results_in_use(many) == ["runs/a.json"]


def test_a_pruned_run_id_can_be_used_again(store: Store) -> None:
    record(store, "daily")
    assert store.load_steps("daily").keys() == {"1", "2"}
    prune_all(store)
    record(store, "daily", at=RECENT, steps=1)
    assert store.load_steps("daily").keys() == {"1"}


# -- random trees of runs ---------------------------------------------------------------------

STATES = (*PRUNABLE_STATES, *LIVE)
# A run: its state, its end (days before the example's "now", None: not ended), and how
# many child runs it has (each drawn the same way, two levels deep at most).
leaf = st.tuples(st.sampled_from(STATES), st.none() | st.integers(0, 60), st.just([]))
child = st.tuples(st.sampled_from(STATES), st.none() | st.integers(0, 60),
                  st.lists(leaf, max_size=2))
root = st.tuples(st.sampled_from(STATES), st.none() | st.integers(0, 60),
                 st.lists(child, max_size=3))
_examples = itertools.count()


@settings(max_examples=30, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture,
                                 HealthCheck.too_slow])
@given(roots=st.lists(root, max_size=8), age=st.integers(0, 60),
       states=st.sets(st.sampled_from(PRUNABLE_STATES), min_size=1), limit=st.integers(1, 4))
def test_exactly_the_old_finished_top_level_trees_are_pruned(
        store: Store, roots: list, age: int, states: set[str], limit: int) -> None:
    # Each example lives earlier in time than the previous ones, so what they left behind
    # (which ended after their own cutoffs) ends after this example's cutoff too.
    k = next(_examples)
    now = NOW - k * 1000 * DAY
    before = now - age * DAY
    ns = f"ex{k}-"
    expected_gone: set[str] = set()
    all_ids: set[str] = set()
    steps: dict[str, int] = {}

    def add(run_id: str, node: tuple, parent: str | None) -> None:
        state, ended_days, children = node
        ended = None if ended_days is None else now - ended_days * DAY
        n = len(run_id) % 3
        record(store, run_id, state=state, at=now - 100 * DAY, parent=parent, ended=ended,
               steps=n)
        all_ids.add(run_id)
        steps[run_id] = n
        for i, c in enumerate(children, 1):
            add(f"{run_id}:{i}", c, run_id)

    prunable_roots = []
    for i, node in enumerate(roots):
        run_id = f"{ns}{i}"
        add(run_id, node, None)
        state, ended_days, _ = node
        if state in states and ended_days is not None and now - ended_days * DAY < before:
            prunable_roots.append(run_id)
    for run_id in prunable_roots:
        expected_gone |= {r for r in all_ids if r == run_id or r.startswith(run_id + ":")}
    chosen = tuple(sorted(states))

    counted = store.count_prunable(before, chosen)
    calls = prune_all(store, before=before, states=chosen, limit=limit)

    assert sum(calls) == counted.runs == len(expected_gone)
    assert counted.steps == sum(steps[r] for r in expected_gone)
    # Each call takes up to `limit` top-level runs, and only the last may take fewer.
    assert len(calls) == -(-len(prunable_roots) // limit)
    left = {r for r in remaining(store) if r.startswith(ns)}
    assert left == all_ids - expected_gone
    assert store.count_steps(sorted(left)) == {r: steps[r] for r in left}

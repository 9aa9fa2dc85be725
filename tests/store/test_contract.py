"""The storage contract: every backend (SQLite, PostgreSQL) passes these same tests."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from stead.errors import RunConflict, RunNotFound
from stead.store.base import CacheEntry, LogRecord, RunFilter, RunRecord, StepRecord, Store


def new_run(run_id: str, state: str = "Running") -> RunRecord:
    return RunRecord(id=run_id, flow_name="f", state=state, created_at=time.time())


def test_runs_steps_logs_round_trip(store: Store) -> None:
    run, created = store.create_run(new_run("r1"), "started")
    assert created
    again, created = store.create_run(new_run("r1", state="Pending"))
    assert not created and again.state == "Running"
    for key in ("1", "2", "2.1", "10"):
        store.record_step(StepRecord("r1", key, "t", "task", "Completed", 1, 1.0, 2.0, "{}", "1"))
    store.record_step(StepRecord("r1", "2", "t", "task", "Completed", 2, 1.0, 3.0, "{}", "5",
                                 history='[["Running",1.0,null]]'),
                      [LogRecord("r1", "2", 1.5, 20, "hello")])
    steps = store.load_steps("r1")
    assert sorted(steps) == ["1", "10", "2", "2.1"]
    assert steps["2"].result == "5" and steps["2"].attempts == 2
    assert steps["1"].history == "[]"
    assert store.count_steps(["r1", "unknown"]) == {"r1": 4, "unknown": 0}
    assert [g.message for g in store.read_logs("r1")] == ["hello"]
    run.ended_at = 4.0
    store.transition_run(run, "Completed", 4.0)
    assert store.get_run("r1").state == "Completed"
    assert [c.state for c in store.run_history("r1")] == ["Running", "Completed"]
    assert store.list_runs(RunFilter(state="Completed"))[0].id == "r1"
    assert store.resolve_run_id("r") == "r1"


def test_unknown_and_ambiguous_run_ids(store: Store) -> None:
    store.create_run(new_run("abc1"))
    store.create_run(new_run("abc2"))
    with pytest.raises(RunNotFound, match=r"no run with id 'zzz'.*stead runs ls"):
        store.resolve_run_id("zzz")
    with pytest.raises(RunNotFound, match=r"'abc' matches 2 runs \(abc1, abc2\)"):
        store.resolve_run_id("abc")
    with pytest.raises(RunNotFound):
        store.get_run("nope")


def test_child_runs_are_named_by_root_prefix_and_key(store: Store) -> None:
    for run_id in ("3f2a9c1e77", "3f2a9c1e77:2", "3f2a9c1e77:2:1", "3f2a9c1e77:10"):
        store.create_run(new_run(run_id))
    assert store.resolve_run_id("3f2a") == "3f2a9c1e77"  # children do not make it ambiguous
    assert store.resolve_run_id("3f2a:2") == "3f2a9c1e77:2"
    assert store.resolve_run_id("3f2a:2:1") == "3f2a9c1e77:2:1"
    with pytest.raises(RunNotFound):
        store.resolve_run_id("3f2a:3")


def test_compare_and_set_transition_refuses_a_changed_run(store: Store) -> None:
    run, _ = store.create_run(new_run("cas"))
    store.transition_run(run, "Crashed", 2.0, "owner gone", expected=("Running",))
    stale = new_run("cas")
    with pytest.raises(RunConflict, match="run cas is Crashed, expected Running"):
        store.transition_run(stale, "Completed", 3.0, expected=("Running",))
    assert store.get_run("cas").state == "Crashed"


def test_cache_entries_and_single_steps(store: Store) -> None:
    store.create_run(new_run("c1"))
    assert store.read_cache("k") is None
    store.write_cache(CacheEntry("k", "1", None, "c1", "1", 10.0, 20.0))
    store.write_cache(CacheEntry("k", "2", None, "c1", "2", 11.0, None))
    assert store.read_cache("k") == CacheEntry("k", "2", None, "c1", "2", 11.0, None)
    store.record_steps([(StepRecord("c1", "1", "t", "task", "Completed", 1, 1.0, 2.0, "{}", "7",
                                    depends_on='["0"]'), [LogRecord("c1", "1", 1.5, 20, "x")]),
                        (StepRecord("c1", "2", "t", "task", "Cached", 0, 1.0, 1.0, "{}", "7",
                                    cache_key="k", cached_from="other/3"), None)])
    assert store.get_step("c1", "1").depends_on == '["0"]'
    assert store.get_step("c1", "2").cached_from == "other/3"
    with pytest.raises(RunNotFound):
        store.get_step("c1", "9")
    store.mark_steps_running([StepRecord("c1", "1", "t", "task", "Running", 1, 1.0),
                              StepRecord("c1", "3", "t", "task", "Running", 1, 1.0)])
    assert store.get_step("c1", "1").state == "Completed"  # an outcome is never overwritten
    assert store.get_step("c1", "3").state == "Running"


WRITER = """
import sys, time
from stead.store import open_store
from stead.store.base import RunRecord, StepRecord, LogRecord
store = open_store(sys.argv[1])
me = sys.argv[2]
store.create_run(RunRecord(id=me, flow_name="w", state="Running", created_at=time.time()))
for i in range(1, 301):
    logs = [LogRecord(me, str(i), time.time(), 20, "line")] if i % 3 == 0 else None
    store.record_step(StepRecord(me, str(i), "t", "task", "Completed", 1, 0.0, 1.0, "{}", "1"),
                      logs)
    if i % 50 == 0:
        run = store.get_run(me)
        store.transition_run(run, "Running", time.time(), f"progress {i}")
print("ok")
"""


def test_concurrent_writers_in_several_processes(store: Store) -> None:
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, store.url, f"w{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(6)]
    outputs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0 and out.strip() == "ok", err
    for i in range(6):
        assert len(store.load_steps(f"w{i}")) == 300
        assert len(store.read_logs(f"w{i}")) == 100

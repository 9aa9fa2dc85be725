"""The SQLite store: migrations, bad files, and concurrent writers from several processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stead.errors import RunNotFound, StoreError
from stead.store import open_store
from stead.store.base import LogRecord, RunFilter, RunRecord, StepRecord
from stead.store.migrate import SCHEMA_HEAD, script_head


def new_run(run_id: str, state: str = "Running") -> RunRecord:
    return RunRecord(id=run_id, flow_name="f", state=state, created_at=time.time())


def test_schema_head_constant_matches_the_migrations() -> None:
    assert script_head() == SCHEMA_HEAD


def test_new_database_is_created_in_wal_mode(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/deep/folder/s.db")
    conn = sqlite3.connect(tmp_path / "deep/folder/s.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == SCHEMA_HEAD
    store.close()


def test_runs_steps_logs_round_trip(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
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


def test_unknown_and_ambiguous_run_ids(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    store.create_run(new_run("abc1"))
    store.create_run(new_run("abc2"))
    with pytest.raises(RunNotFound, match=r"no run with id 'zzz'.*stead runs ls"):
        store.resolve_run_id("zzz")
    with pytest.raises(RunNotFound, match=r"'abc' matches 2 runs \(abc1, abc2\)"):
        store.resolve_run_id("abc")
    with pytest.raises(RunNotFound):
        store.get_run("nope")


def test_child_runs_are_named_by_root_prefix_and_key(tmp_path: Path) -> None:
    store = open_store(str(tmp_path / "s.db"))
    for run_id in ("3f2a9c1e77", "3f2a9c1e77:2", "3f2a9c1e77:2:1", "3f2a9c1e77:10"):
        store.create_run(new_run(run_id))
    assert store.resolve_run_id("3f2a") == "3f2a9c1e77"  # children do not make it ambiguous
    assert store.resolve_run_id("3f2a:2") == "3f2a9c1e77:2"
    assert store.resolve_run_id("3f2a:2:1") == "3f2a9c1e77:2:1"
    with pytest.raises(RunNotFound):
        store.resolve_run_id("3f2a:3")


def test_corrupt_file_gives_one_clear_error_and_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "stead.db"
    junk = b"this is not a database" * 100
    path.write_bytes(junk)
    with pytest.raises(StoreError, match=r"cannot be used.*move it aside"):
        open_store(str(path))
    assert path.read_bytes() == junk


def test_database_from_a_newer_stead_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stead.db"
    open_store(str(path)).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE alembic_version SET version_num = '9999'")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match=r"revision '9999'.*newer Stead.*Upgrade Stead"):
        open_store(str(path))


def test_foreign_sqlite_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE customers (id INTEGER)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="not a Stead one"):
        open_store(str(path))


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


def test_concurrent_writers_in_several_processes_never_see_database_is_locked(
        tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"w{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(6)]  # all six also race to create the schema
    outputs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0 and out.strip() == "ok", err
    store = open_store(str(path))
    for i in range(6):
        assert len(store.load_steps(f"w{i}")) == 300
        assert len(store.read_logs(f"w{i}")) == 100


def test_upgrade_from_the_first_schema_keeps_the_data(tmp_path: Path) -> None:
    from stead.store.migrate import upgrade_to

    path = tmp_path / "old.db"
    sqlite3.connect(path).close()
    upgrade_to(f"sqlite:///{path}", "0001")  # a database as the first release made it
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO runs (id, flow_name, state, entrypoint, params, created_at) "
                 "VALUES ('old', 'f', 'Completed', 'm:f', '{}', 1.0)")
    conn.execute("INSERT INTO steps (run_seq, key, name, kind, state) "
                 "VALUES (1, 1, 't', 'task', 'Completed')")
    conn.commit()
    conn.close()
    store = open_store(str(path))  # upgrades to the newest schema
    assert store.get_run("old").state == "Completed"
    assert store.load_steps("old")["1"].cache_key is None
    assert store.read_cache("nothing") is None

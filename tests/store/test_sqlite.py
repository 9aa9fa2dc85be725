"""The SQLite store: migrations, bad files, and concurrent writers from several processes."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stead.errors import StoreError
from stead.store import open_store
from stead.store.base import RunRecord
from stead.store.migrate import SCHEMA_HEAD, script_head
from tests.store.test_contract import WRITER as CONTRACT_WRITER


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


def test_concurrent_writers_in_several_processes_never_see_database_is_locked(
        tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    procs = [subprocess.Popen([sys.executable, "-c", CONTRACT_WRITER, str(path), f"w{i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(6)]  # all six also race to create the schema
    outputs = [p.communicate(timeout=180) for p in procs]
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0 and out.strip() == "ok", err
    store = open_store(str(path))
    for i in range(6):
        assert len(store.load_steps(f"w{i}")) == 300
        assert len(store.read_logs(f"w{i}")) == 100

"""Who changes a schema: read-only commands never (they name `stead db upgrade`), `stead db
status` shows, `stead db upgrade` migrates, and the engine upgrades only while no worker is
live on the old schema."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stead.errors import SchemaMismatch
from stead.store import open_store
from stead.store.migrate import SCHEMA_HEAD, migrations, script_head, upgrade_to

Cli = Callable[..., subprocess.CompletedProcess[str]]
OLD = "0008"
AFTER_OLD = [m.revision for m in migrations()][[m.revision for m in migrations()].index(OLD) + 1:]


def old_sqlite(path: Path, *, worker_state: str | None = None,
               heartbeat_at: float | None = None) -> Path:
    """A database as Stead at revision 0008 left it, with one run (and maybe a worker)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    upgrade_to(f"sqlite:///{path}", OLD)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO runs (id, flow_name, state, entrypoint, params, created_at) "
                 "VALUES ('old-run', 'nightly', 'Completed', 'm:f', '{}', 1.0)")
    if worker_state is not None:
        _add_worker(conn, "?", worker_state, heartbeat_at)
    conn.commit()
    conn.close()
    return path


def _add_worker(conn: object, mark: str, state: str, heartbeat_at: float | None) -> None:
    now = time.time() if heartbeat_at is None else heartbeat_at
    conn.execute(  # type: ignore[attr-defined]
        "INSERT INTO workers (id, name, host, pid, queues, concurrency, state, started_at, "
        f"heartbeat_at, running) VALUES ({', '.join([mark] * 10)})",
        ("w1", "old-worker", "hostA", 4242, '["default"]', 1, state, now, now, 0))


def revision_of(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    finally:
        conn.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_light_migration_list_is_alembics_chain() -> None:
    from alembic.script import ScriptDirectory

    from stead.store.migrate import _config

    walked = [s.revision for s in ScriptDirectory.from_config(_config()).walk_revisions()]
    assert [m.revision for m in migrations()] == walked[::-1]
    assert migrations()[-1].revision == SCHEMA_HEAD == script_head()
    assert all(m.summary for m in migrations())


@pytest.mark.parametrize("command", [("runs", "ls"), ("runs", "show", "old-run"),
                                     ("logs", "old-run"), ("workers", "ls"), ("queues", "ls")])
def test_a_read_only_command_refuses_an_old_schema_and_leaves_it(
        tmp_path: Path, stead_cli: Cli, command: tuple[str, ...]) -> None:
    db = old_sqlite(tmp_path / "data" / "old.db")
    before = digest(db)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = stead_cli(*command, "--db", f"sqlite:///{db}", cwd=elsewhere)
    assert done.returncode == 2
    line = done.stderr.strip()
    assert len(line.splitlines()) == 1
    assert f"{db} has schema revision '{OLD}', older than this Stead's '{SCHEMA_HEAD}'" in line
    assert "stead db upgrade" in line
    assert revision_of(db) == OLD and digest(db) == before


def test_db_status_then_db_upgrade_brings_an_old_database_up(tmp_path: Path,
                                                              stead_cli: Cli) -> None:
    db = old_sqlite(tmp_path / "old.db")
    url = "sqlite:///old.db"  # relative: the status shows the resolved path
    status = stead_cli("db", "status", "--db", url)
    assert status.returncode == 1
    assert f"database   sqlite {db}" in status.stdout
    assert f"revision   {OLD}  (out of date)" in status.stdout
    assert f"head       {SCHEMA_HEAD}  (this Stead)" in status.stdout
    for revision in AFTER_OLD:
        assert f" {revision}  " in status.stdout
    assert revision_of(db) == OLD  # status changes nothing

    upgraded = stead_cli("db", "upgrade", "--db", url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"Upgraded sqlite {db}: revision {OLD} -> {SCHEMA_HEAD}, {len(AFTER_OLD)} " \
           "migration(s):" in upgraded.stdout
    assert revision_of(db) == SCHEMA_HEAD

    listed = stead_cli("runs", "ls", "--db", url)
    assert listed.returncode == 0 and "old-run" in listed.stdout
    again = stead_cli("db", "status", "--db", url, "--json")
    assert again.returncode == 0
    assert '"state": "up to date"' in again.stdout and '"pending": []' in again.stdout
    noop = stead_cli("db", "upgrade", "--db", url)
    assert noop.returncode == 0 and "up to date" in noop.stdout and "nothing to do" in noop.stdout


def test_a_newer_schema_is_refused_naming_both_revisions(tmp_path: Path, stead_cli: Cli) -> None:
    db = tmp_path / "new.db"
    open_store(str(db)).close()
    conn = sqlite3.connect(db)
    conn.execute("UPDATE alembic_version SET version_num = '0042'")
    conn.commit()
    conn.close()
    for command in (("runs", "ls"), ("db", "upgrade")):
        done = stead_cli(*command, "--db", str(db))
        assert done.returncode == 2
        assert f"revision '0042', newer than this Stead knows (it uses '{SCHEMA_HEAD}')" \
            in done.stderr and "pip install -U stead" in done.stderr
    status = stead_cli("db", "status", "--db", str(db))
    assert status.returncode == 1 and "(newer)" in status.stdout
    assert revision_of(db) == "0042"


def test_db_status_of_a_missing_file_creates_nothing(tmp_path: Path, stead_cli: Cli) -> None:
    status = stead_cli("db", "status", "--db", "sqlite:///none/x.db")
    assert status.returncode == 1 and "(no database)" in status.stdout
    assert f"sqlite {tmp_path / 'none' / 'x.db'}" in status.stdout
    assert not (tmp_path / "none").exists()
    created = stead_cli("db", "upgrade", "--db", "sqlite:///none/x.db")
    assert created.returncode == 0
    assert "Created the schema of" in created.stdout and f"-> {SCHEMA_HEAD}" in created.stdout
    assert revision_of(tmp_path / "none" / "x.db") == SCHEMA_HEAD


def test_a_flow_on_a_fresh_database_still_needs_no_setup(tmp_path: Path) -> None:
    import stead

    @stead.flow(database_url=f"sqlite:///{tmp_path / 'fresh' / 'x.db'}")
    def fresh() -> int:
        return 7

    assert fresh() == 7
    assert revision_of(tmp_path / "fresh" / "x.db") == SCHEMA_HEAD


# -- the engine's rule, on both backends ---------------------------------------------------
@pytest.fixture(params=["sqlite", "postgres"])
def old_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Makes a database at revision 0008, optionally with a worker row; yields its URL."""
    made: list[str] = []

    def make(worker_state: str | None = None, heartbeat_at: float | None = None) -> str:
        if request.param == "sqlite":
            path = old_sqlite(tmp_path / "old.db", worker_state=worker_state,
                              heartbeat_at=heartbeat_at)
            return f"sqlite:///{path}"
        import psycopg

        from tests.postgres import create_database

        admin = request.getfixturevalue("postgres_admin")
        url = create_database(admin, f"stead_dbcli_{len(made)}_{time.time_ns()}")
        made.append(url)
        upgrade_to(url.replace("postgresql://", "postgresql+psycopg://", 1), OLD)
        if worker_state is not None:
            with psycopg.connect(url, autocommit=True) as conn:
                _add_worker(conn, "%s", worker_state, heartbeat_at)
        return url

    yield make
    if made:
        from stead.core.runtime import close_stores
        from tests.postgres import drop_database

        close_stores()
        admin = request.getfixturevalue("postgres_admin")
        for url in made:
            drop_database(admin, url.rsplit("/", 1)[1])


def _revision(url: str) -> str:
    from stead.store.migrate import read_status

    current = read_status(url, 5).current
    assert current is not None
    return current


def test_the_engine_does_not_upgrade_under_a_live_older_worker(old_url: Callable[..., str],
                                                               stead_cli: Cli) -> None:
    url = old_url(worker_state="running")
    with pytest.raises(SchemaMismatch, match=r"revision '0008'.*1 live worker\(s\) use it "
                                             r"\(old-worker on hostA:4242\).*stead db upgrade"):
        open_store(url)
    assert _revision(url) == OLD
    upgraded = stead_cli("db", "upgrade", "--db", url)
    assert upgraded.returncode == 0, upgraded.stderr
    assert "old-worker on hostA:4242" in upgraded.stderr and "older Stead" in upgraded.stderr
    assert _revision(url) == SCHEMA_HEAD


@pytest.mark.parametrize(("state", "age_s"), [("stopped", 0.0), ("running", 3600.0)])
def test_the_engine_upgrades_when_no_worker_is_live(old_url: Callable[..., str], state: str,
                                                    age_s: float) -> None:
    url = old_url(worker_state=state, heartbeat_at=time.time() - age_s)
    open_store(url).close()
    assert _revision(url) == SCHEMA_HEAD


def test_a_read_only_open_of_an_empty_postgresql_database_creates_nothing(
        postgres_admin: str, stead_cli: Cli) -> None:
    import psycopg

    from tests.postgres import create_database, drop_database

    name = f"stead_dbcli_empty_{time.time_ns()}"
    url = create_database(postgres_admin, name)
    try:
        listed = stead_cli("runs", "ls", "--db", url)
        assert listed.returncode == 2 and "has no Stead schema yet" in listed.stderr
        assert "stead db upgrade" in listed.stderr
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = "
                                "current_schema()").fetchone() == (0,)
        assert stead_cli("db", "upgrade", "--db", url).returncode == 0
        assert _revision(url) == SCHEMA_HEAD
    finally:
        drop_database(postgres_admin, name)


@pytest.mark.parametrize(("policy", "current", "live", "expected"), [
    ("read", SCHEMA_HEAD, ["w"], False), ("auto", SCHEMA_HEAD, ["w"], False),
    ("upgrade", SCHEMA_HEAD, [], False),
    ("read", None, [], "no Stead schema yet"), ("auto", None, [], True),
    ("upgrade", None, [], True),
    ("read", OLD, [], "stead db upgrade"), ("auto", OLD, [], True),
    ("auto", OLD, ["w on h:1"], "1 live worker"), ("upgrade", OLD, ["w on h:1"], True),
    ("read", "0042", [], "newer"), ("auto", "0042", [], "newer"), ("upgrade", "0042", [], "newer"),
])
def test_the_schema_rule_of_each_policy(policy: str, current: str | None, live: list[str],
                                        expected: bool | str) -> None:
    from stead.store.migrate import decide

    if isinstance(expected, bool):
        assert decide(current, policy, "db", lambda: live) is expected
    else:
        with pytest.raises(SchemaMismatch, match=expected):
            decide(current, policy, "db", lambda: live)

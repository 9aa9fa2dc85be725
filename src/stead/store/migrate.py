"""Schema migrations through Alembic, imported only when a database's schema must change.

Opening an up-to-date database costs one SELECT of its revision; Alembic and SQLAlchemy
(~150 ms to import) load only to create or upgrade a schema.

Who may change a schema (`decide`): commands that only read or change existing records
(`stead runs ls`, `show`, `logs`, `workers ls`, ...: policy "read") never do; they refuse an
out-of-date schema naming `stead db upgrade`. The engine, workers, the server and the
scheduler (policy "auto") create the schema of a new database, and upgrade an out-of-date
one only while no worker is live there (a live worker on an old schema runs an older Stead,
which the upgrade would lock out). `stead db upgrade` (policy "upgrade") always migrates.
A schema newer than this Stead knows is refused by all.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stead.errors import ConfigError, SchemaMismatch

SCHEMA_HEAD = "0016"  # newest revision in migrations/versions; a test pins it to Alembic's head
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
POLICIES = ("auto", "read", "upgrade")
UPGRADE_HINT = "run `stead db upgrade` with the same --db or STEAD_DATABASE_URL"


@dataclass(frozen=True, slots=True)
class Migration:
    """One revision of the schema: its id and the first line of its docstring."""

    revision: str
    summary: str


def check_policy(policy: str) -> str:
    if policy not in POLICIES:
        raise ConfigError(f"schema policy {policy!r} is not one of {', '.join(POLICIES)}")
    return policy


def migrations() -> list[Migration]:
    """Every revision, oldest first, read from the files (no Alembic import: ~1 ms)."""
    found: dict[str | None, Migration] = {}  # down_revision -> the revision that follows it
    for file in sorted((MIGRATIONS_DIR / "versions").glob("*.py")):
        text = file.read_text()
        rev = re.search(r'^revision\s*=\s*"([^"]+)"', text, re.M)
        if rev is None:
            continue
        down = re.search(r'^down_revision\s*=\s*"([^"]+)"', text, re.M)
        doc = re.match(r'\s*"""(.*?)(?:\n\s*\n|""")', text, re.S)  # its first paragraph
        found[down.group(1) if down else None] = Migration(
            rev.group(1), " ".join(doc.group(1).split()) if doc else "")
    chain, prev = [], None
    while prev in found:
        chain.append(found[prev])
        prev = chain[-1].revision
    return chain


def pending(current: str | None) -> list[Migration]:
    """The migrations that bring a schema at `current` (None: no schema) to SCHEMA_HEAD."""
    chain = migrations()
    revisions = [m.revision for m in chain]
    if current is None:
        return chain
    if current not in revisions:
        return []
    return chain[revisions.index(current) + 1:]


def is_known(revision: str) -> bool:
    return revision in {m.revision for m in migrations()}


def decide(current: str | None, policy: str, where: str,
           live_workers: Callable[[], list[str]]) -> bool:
    """Whether to migrate a schema at revision `current` now, under `policy` (see the module
    docstring); raises SchemaMismatch when the schema must not be used as it is.

    >>> decide(SCHEMA_HEAD, "read", "x.db", list)
    False
    >>> decide(None, "auto", "x.db", list)
    True
    """
    if current == SCHEMA_HEAD:
        return False
    if current is not None and not is_known(current):
        raise SchemaMismatch(
            f"{where} has schema revision {current!r}, newer than this Stead knows (it uses "
            f"{SCHEMA_HEAD!r}): a newer Stead upgraded it. Upgrade Stead (pip install -U stead) "
            "to use this database.")
    if policy == "upgrade":
        return True
    if policy == "read":
        if current is None:
            raise SchemaMismatch(
                f"{where} has no Stead schema yet: nothing has been recorded there. Running a "
                "flow or `stead worker start` creates it, or `stead db upgrade` does.")
        raise SchemaMismatch(
            f"{where} has schema revision {current!r}, older than this Stead's {SCHEMA_HEAD!r}. "
            f"Commands that read never change a schema: {UPGRADE_HINT}. Older Stead processes "
            "that use this database must then be upgraded too.")
    if current is None:
        return True
    live = live_workers()
    if live:
        names = ", ".join(live[:5]) + (f" and {len(live) - 5} more" if len(live) > 5 else "")
        raise SchemaMismatch(
            f"{where} has schema revision {current!r}, older than this Stead's {SCHEMA_HEAD!r}, "
            f"and {len(live)} live worker(s) use it ({names}): they run an older Stead, which "
            f"an upgrade would lock out. Stop or upgrade them, then {UPGRADE_HINT} (a killed "
            "worker stops counting two leases after its last heartbeat).")
    return True


def live_workers(conn: Any, mark: str, current: str | None, lease_s: float,
                 now: float | None = None) -> list[str]:
    """The workers (``name on host:pid``) that heartbeat within two leases, on a schema at
    `current`; `mark` is the dialect's placeholder. Workers exist from revision 0003."""
    if current is None or current < "0003":
        return []
    since = (time.time() if now is None else now) - 2 * lease_s
    rows = conn.execute(f"SELECT name, host, pid FROM workers WHERE state <> 'stopped' AND "
                        f"heartbeat_at > {mark} ORDER BY heartbeat_at DESC", (since,)).fetchall()
    return [f"{name} on {host}:{pid}" for name, host, pid in rows]


def _config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {rev.revision for rev in ScriptDirectory.from_config(_config()).walk_revisions()}


def script_head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


def upgrade_to(sqlalchemy_url: str, revision: str) -> None:
    """Migrate the schema at `sqlalchemy_url` to `revision` (tests of upgrade paths)."""
    import sqlalchemy
    from alembic import command

    cfg = _config()
    engine = sqlalchemy.create_engine(sqlalchemy_url)
    try:
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def upgrade(sqlalchemy_url: str) -> None:
    """Bring the schema at `sqlalchemy_url` to SCHEMA_HEAD (after `decide` said so)."""
    upgrade_to(sqlalchemy_url, "head")


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """What `stead db status` shows of one database, read without changing anything."""

    where: str  # "sqlite /abs/x.db", "postgresql user@host:5432/db"
    exists: bool  # False: no SQLite file there (yet)
    current: str | None  # the schema's revision; None: no Stead schema
    live_workers: list[str]

    @property
    def head(self) -> str:
        return SCHEMA_HEAD

    @property
    def pending(self) -> list[Migration]:
        return pending(self.current)

    @property
    def state(self) -> str:
        """One of: up to date, out of date, newer, no schema, no database."""
        if not self.exists:
            return "no database"
        if self.current is None:
            return "no schema"
        if self.current == SCHEMA_HEAD:
            return "up to date"
        return "out of date" if is_known(self.current) else "newer"


def read_status(url: str, wait_s: float) -> SchemaStatus:
    """The schema status of the database at `url`, read without creating or migrating it.

    >>> read_status("sqlite:////nowhere/x.db", 1).state
    'no database'
    """
    from stead.settings import get_settings
    from stead.store.urls import parse_database_url

    where = parse_database_url(url)
    lease_s = get_settings().lease_seconds
    if where.kind == "http":
        raise ConfigError(f"{url} is a Stead server: its schema is shown and upgraded where "
                          "its database is (run `stead db` there, with that database's URL)")
    if where.path is not None:
        import sqlite3

        if not where.path.exists():
            return SchemaStatus(where.describe(), False, None, [])
        conn = sqlite3.connect(where.path.as_uri() + "?mode=ro", uri=True)
        try:
            current = _sqlite_revision(conn, str(where.path))
            return SchemaStatus(where.describe(), True, current,
                                live_workers(conn, "?", current, lease_s))
        finally:
            conn.close()
    from stead.store.postgres import connect

    with connect(url, wait_s) as conn:
        exists = conn.execute("SELECT to_regclass('alembic_version')").fetchone()[0]
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone() if exists \
            else None
        current = row[0] if row else None
        return SchemaStatus(where.describe(), True, current,
                            live_workers(conn, "%s", current, lease_s))


def _sqlite_revision(conn: Any, where: str) -> str | None:
    import sqlite3

    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise SchemaMismatch(f"{where} cannot be read: {exc}") from exc
        return None
    except sqlite3.DatabaseError as exc:
        raise SchemaMismatch(f"{where} is not a readable SQLite database: {exc}") from exc
    return row[0] if row else None

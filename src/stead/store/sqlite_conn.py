"""The SQLite database file as the store uses it: one file in WAL mode, safe for several
processes writing at once; its connections, its schema, its WAL checkpoints and its errors.
`SQLiteStore` (store/sqlite.py) builds its verbs on `SQLiteConnections`.

Writes that touch more than one row use BEGIN IMMEDIATE, so a writer waits for the lock
(busy_timeout) instead of failing with "database is locked" when it upgrades a read
transaction. Each thread gets its own connection; a forked child opens fresh ones. A run's
commits follow its durability level (PRAGMA synchronous, set only when it changes).

WAL checkpoints (copying the log back into the database file, with an fsync) run in a
background thread, not inside a step's commit: measured, this takes the per-step write from
~32 us to ~25 us (bench/bench.py). SQLite's own automatic checkpoint stays as a safety
net at a larger size, should the thread fall behind.

    >>> import tempfile
    >>> store = SQLiteConnections(tempfile.mkdtemp() + "/stead.db")
    >>> store._read(lambda conn, dialect: conn.execute("SELECT 1").fetchone())
    (1,)
    >>> store.close()
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stead.errors import RunNotFound, SchemaMismatch, StoreError
from stead.settings import get_settings
from stead.store.durability import SQLITE_SYNCHRONOUS, strongest
from stead.store.migrate import check_policy, decide, live_workers, upgrade
from stead.store.sql import SQLITE

BUSY_TIMEOUT_MS = 60_000
AUTOCHECKPOINT_PAGES = 10_000  # SQLite checkpoints by itself only past this (~40 MB of WAL)
CHECKPOINT_EVERY_S = 0.5


@contextmanager
def write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (take the write lock now, waiting up to busy_timeout), then commit,
    or roll back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:  # SQLite may have rolled back already (a full disk)
            conn.execute("ROLLBACK")
        raise


def _call_if_alive(ref: weakref.ref[SQLiteConnections], method: str) -> None:
    obj = ref()
    if obj is not None:
        getattr(obj, method)()


class SQLiteConnections:
    """One SQLite file: a connection per thread (at the durability of the run being
    written), its schema checked or migrated on open, a WAL checkpointer, `_write`/`_read`
    for the verbs whose SQL is shared (store/verbs.py)."""

    def __init__(self, path: str | os.PathLike[str], synchronous: str = "NORMAL", *,
                 schema: str = "auto") -> None:
        self.path = Path(path).expanduser().absolute()
        self.schema = check_policy(schema)
        self.url = f"sqlite:///{self.path}"
        self.synchronous = synchronous
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._seqs: dict[str, int] = {}  # run id -> seq, for the step writes
        self._levels: dict[str, str] = {}  # run id -> PRAGMA synchronous of its commits
        self._checkpointer: _Checkpointer | None = None
        me = weakref.ref(self)
        os.register_at_fork(after_in_child=lambda: _call_if_alive(me, "_forget_after_fork"))
        try:
            self._ensure_schema()
        except BaseException:
            self.close()  # a refused schema leaves no open connection behind
            raise

    # -- connections ---------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=BUSY_TIMEOUT_MS / 1000)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")
        except sqlite3.DatabaseError as exc:
            raise self._broken(exc) from exc
        with self._lock:
            self._all.append(conn)
        return conn

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
            self._local.sync = self.synchronous
            if self._checkpointer is None:
                self._checkpointer = _Checkpointer(self)
        return conn

    def _conn_for(self, run_id: str | None) -> sqlite3.Connection:
        """The thread's connection, committing at the durability of run `run_id` (None: the
        store's own level). The PRAGMA runs only when the level changes (sub-microsecond)."""
        conn = self._conn()
        want = (self.synchronous if run_id is None
                else self._levels.get(run_id) or self._level_of(run_id))
        if self._local.sync != want:
            conn.execute(f"PRAGMA synchronous = {want}")
            self._local.sync = want
        return conn

    def _conn_for_runs(self, run_ids: set[str]) -> sqlite3.Connection:
        """`_conn_for` for a write of several runs: the strongest of their levels."""
        if len(run_ids) == 1:
            return self._conn_for(next(iter(run_ids)))
        levels = [self._levels.get(r) or self._level_of(r) for r in run_ids]
        want = strongest(levels) if levels else self.synchronous
        conn = self._conn()
        if self._local.sync != want:
            conn.execute(f"PRAGMA synchronous = {want}")
            self._local.sync = want
        return conn

    def _level_of(self, run_id: str) -> str:
        try:
            self._seq(run_id)  # reads the run's level too
        except RunNotFound:
            return self.synchronous
        return self._levels.get(run_id) or self.synchronous

    def _forget_after_fork(self) -> None:
        """In a forked child: never use the parent's connections or threads."""
        self._all, self._local, self._checkpointer = [], threading.local(), None
        self._lock = threading.Lock()

    def _broken(self, exc: Exception) -> StoreError:
        return StoreError(
            f"the Stead database {self.path} cannot be used: {exc}. If the file is damaged, "
            "move it aside (nothing in it is deleted) and Stead will start a new one, or set "
            "STEAD_DATABASE_URL to another file."
        )

    def _ensure_schema(self) -> None:
        if self.schema == "read":  # never create the file (nor its folder) to read it
            if not self.path.exists():
                raise SchemaMismatch(f"no Stead database at {self.path}: nothing has been "
                                     "recorded there yet.")
            decide(self._revision(), "read", str(self.path), list)
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the folder for {self.path}: {exc}") from exc
        current = self._revision()
        if not decide(current, self.schema, str(self.path), lambda: self._live(current)):
            return
        lock_path = self.path.with_name(self.path.name + ".migrate-lock")
        with open(lock_path, "w") as lock:  # one process migrates; the others wait for it
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self._revision()
            if decide(current, self.schema, str(self.path), lambda: self._live(current)):
                try:
                    self._conn().execute("PRAGMA journal_mode = WAL")
                except sqlite3.DatabaseError as exc:
                    raise self._broken(exc) from exc
                upgrade(f"sqlite:///{self.path}")

    def _live(self, current: str | None) -> list[str]:
        return live_workers(self._conn(), "?", current, get_settings().lease_seconds)

    def _revision(self) -> str | None:
        conn = self._conn()
        try:
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                raise self._broken(exc) from exc
            tables = conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            if tables:
                raise StoreError(
                    f"{self.path} is an SQLite database but not a Stead one (it has tables "
                    "and no Stead schema). Point STEAD_DATABASE_URL at a new file."
                ) from exc
            return None
        except sqlite3.DatabaseError as exc:
            raise self._broken(exc) from exc
        return row[0] if row else None

    def close(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all = []
        self._local = threading.local()

    def _seq(self, run_id: str) -> int:
        """The run's row number (steps refer to it), and its durability level, cached."""
        seq = self._seqs.get(run_id)
        if seq is None:
            row = self._conn().execute("SELECT seq, durability FROM runs WHERE id = ?",
                                       (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(f"no run with id {run_id!r} in {self.path}")
            seq = self._seqs[run_id] = row[0]
            self._levels[run_id] = SQLITE_SYNCHRONOUS.get(row[1], self.synchronous)
        return seq

    # -- the queue, lease, limit, deployment and retention verbs' SQL (store/verbs.py) -----
    def _write(self, fn: Any, *args: Any) -> Any:
        conn = self._conn_for(None)
        with write_transaction(conn):
            return fn(conn, SQLITE, *args)

    def _read(self, fn: Any, *args: Any) -> Any:
        return fn(self._conn(), SQLITE, *args)


class _Checkpointer:
    """A daemon thread that checkpoints the WAL every CHECKPOINT_EVERY_S while writes happen.

    PASSIVE checkpoints never block writers or readers; they copy what they can.
    """

    def __init__(self, store: SQLiteConnections) -> None:
        self._store = store
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="stead-checkpoint", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        conn: sqlite3.Connection | None = None
        seen = None
        while not self._stopped.wait(CHECKPOINT_EVERY_S):
            try:
                if conn is None:
                    conn = sqlite3.connect(self._store.path, isolation_level=None,
                                           check_same_thread=False)
                    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
                # data_version changes when any other connection has committed since.
                version = conn.execute("PRAGMA data_version").fetchone()[0]
                if version != seen:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    seen = version
            except sqlite3.Error:
                pass  # SQLite's own autocheckpoint remains as the fallback
        if conn is not None:
            conn.close()

    def stop(self) -> None:
        self._stopped.set()


def store_error(path: Path, exc: sqlite3.DatabaseError) -> Exception:
    """The StoreError for an error SQLite raised on the database at `path` (errors that mean
    a bug in Stead, such as a constraint violation or misuse, are returned unchanged)."""
    if isinstance(exc, (sqlite3.IntegrityError, sqlite3.ProgrammingError)):
        return exc
    text = str(exc)
    if "full" in text:
        advice = (f"free space on the disk holding {path.parent} (the database and its "
                  "results folder), then resume the run (`stead runs resume RUN_ID`)")
    elif "readonly" in text or "read-only" in text:
        advice = f"make {path} and its folder writable by this user"
    elif "locked" in text or "busy" in text:
        advice = ("another process held the write lock for over a minute; find it (e.g. "
                  f"`fuser {path}`) or try again")
    else:
        advice = ("if the file is damaged, move it aside (nothing in it is deleted) and "
                  "Stead will start a new one, or set STEAD_DATABASE_URL to another file")
    return StoreError(f"the Stead database {path} failed: {text}. To go on, {advice}.")

"""The SQLite store: one file in WAL mode, safe for several processes writing at once.

Writes that touch more than one row use BEGIN IMMEDIATE, so a writer waits for the lock
(busy_timeout) instead of failing with "database is locked" when it upgrades a read
transaction. Each thread gets its own connection; a forked child opens fresh ones.

SQLite's errors (a full disk, a read-only file, a lock held too long) leave the store as
StoreError saying which file and what to do: every verb is wrapped at the end of this module,
except record_step, the per-step hot path, which catches them in its own body (a wrapper costs
a function call per step; a try costs nothing in Python 3.11).

WAL checkpoints (copying the log back into the database file, with an fsync) run in a
background thread, not inside a step's commit: measured, this takes the per-step write from
~32 us to ~25 us (bench/bench.py). SQLite's own automatic checkpoint stays as a safety
net at a larger size, should the thread fall behind.
"""

from __future__ import annotations

import fcntl
import functools
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
from stead.store.audit import AuditVerbs
from stead.store.base import (
    CacheEntry,
    Fence,
    LogRecord,
    RunFilter,
    RunRecord,
    StateChange,
    StepRecord,
)
from stead.store.durability import SQLITE_SYNCHRONOUS, strongest
from stead.store.migrate import check_policy, decide, live_workers, upgrade
from stead.store.secrets import SecretVerbs
from stead.store.sql import (
    SQLITE,
    TASK_DONE_ROWS,
    check_expected,
    check_fence,
    is_plain_task_done,
    lease_lost,
    log_values,
    one_match,
    resolve_matches,
    run_filter_sql,
    run_update_values,
    run_values,
    statements,
    step_record,
    step_values,
    take_over_run,
    task_done_rows,
)
from stead.store.variables import VariableVerbs
from stead.store.verbs import QueueVerbs, RetentionVerbs

Q = statements(SQLITE)
BUSY_TIMEOUT_MS = 60_000
AUTOCHECKPOINT_PAGES = 10_000  # SQLite checkpoints by itself only past this (~40 MB of WAL)
CHECKPOINT_EVERY_S = 0.5


@contextmanager
def _write_transaction(conn: sqlite3.Connection) -> Iterator[None]:
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


def _call_if_alive(ref: weakref.ref[SQLiteStore], method: str) -> None:
    obj = ref()
    if obj is not None:
        getattr(obj, method)()


def _db_key(key: str) -> int | str:
    """Top-level keys ("7") are stored as integers, nested ones ("7.2") as text."""
    return int(key) if key.isdigit() else key


def _step_values(seq: int, s: StepRecord) -> tuple:
    return step_values(seq, _db_key(s.key), s)


class SQLiteStore(QueueVerbs, RetentionVerbs, AuditVerbs, SecretVerbs, VariableVerbs):
    """Store implementation on one SQLite file. Create with `SQLiteStore(path)`; `schema`
    says who may create or upgrade its schema (store/migrate.py: "auto", "read", "upgrade")."""

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

    # -- runs ----------------------------------------------------------------------------
    def create_run(self, run: RunRecord, message: str | None = None,
                   fence: Fence | None = None) -> tuple[RunRecord, bool]:
        if run.id not in self._levels:
            self._levels[run.id] = SQLITE_SYNCHRONOUS.get(run.durability, self.synchronous)
        conn = self._conn_for(run.id)
        with _write_transaction(conn):
            if fence is not None:
                check_fence(conn, SQLITE, fence)
            created = conn.execute(Q.run_insert, run_values(run)).rowcount == 1
            if not created:
                self._levels.pop(run.id, None)  # the stored run's level, read when needed
            if created:
                conn.execute(Q.history_insert, (run.id, run.state, run.created_at, message))
        return (run, True) if created else (self.get_run(run.id), False)

    def get_run(self, run_id: str) -> RunRecord:
        row = self._conn().execute(f"{Q.run_select} WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(f"no run with id {run_id!r} in {self.path}")
        return RunRecord(*row)

    def resolve_run_id(self, prefix: str) -> str:
        conn = self._conn()
        if conn.execute("SELECT 1 FROM runs WHERE id = ?", (prefix,)).fetchone():
            return prefix
        root, sep, child = prefix.partition(":")
        if sep:  # "3f2a9c1e:3": a child run named by a prefix of its root's id and its key
            rows = conn.execute(
                "SELECT id FROM runs WHERE substr(id, 1, ?) = ? AND id LIKE ? LIMIT 1000",
                (len(root), root, f"%:{child}")).fetchall()
        else:  # a prefix of a top-level run's id; child runs ("<id>:3") do not count
            rows = conn.execute(
                "SELECT id FROM runs WHERE substr(id, 1, ?) = ? "
                "AND instr(substr(id, ? + 1), ':') = 0 LIMIT 4",
                (len(prefix), prefix, len(prefix))).fetchall()
        return one_match(prefix, resolve_matches(prefix, [r[0] for r in rows]), str(self.path))

    def list_runs(self, flt: RunFilter) -> list[RunRecord]:
        where, args = run_filter_sql(flt, "?")
        sql = f"{Q.run_select}{where} ORDER BY created_at DESC, id DESC LIMIT ?"
        return [RunRecord(*row) for row in self._conn().execute(sql, (*args, flt.limit))]

    def transition_run(self, run: RunRecord, state: str, at: float,
                       message: str | None = None,
                       expected: tuple[str, ...] | None = None,
                       fence: Fence | None = None, take_over: bool = False) -> None:
        conn = self._conn_for(run.id)
        with _write_transaction(conn):
            if fence is not None:
                check_fence(conn, SQLITE, fence)
            if take_over:
                take_over_run(conn, SQLITE, run)
            if expected is not None:
                row = conn.execute("SELECT state FROM runs WHERE id = ?", (run.id,)).fetchone()
                check_expected(run.id, row[0] if row else None, expected)
            run.state = state
            conn.execute(Q.run_update, run_update_values(run))
            conn.execute(Q.history_insert, (run.id, state, at, message))
        if take_over:
            run.lease_epoch += 1

    def run_history(self, run_id: str) -> list[StateChange]:
        return [StateChange(*row) for row in self._conn().execute(Q.history_select, (run_id,))]

    # -- steps ---------------------------------------------------------------------------
    def _seq(self, run_id: str) -> int:
        seq = self._seqs.get(run_id)
        if seq is None:
            row = self._conn().execute("SELECT seq, durability FROM runs WHERE id = ?",
                                       (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(f"no run with id {run_id!r} in {self.path}")
            seq = self._seqs[run_id] = row[0]
            self._levels[run_id] = SQLITE_SYNCHRONOUS.get(row[1], self.synchronous)
        return seq

    def load_steps(self, run_id: str) -> dict[str, StepRecord]:
        rows = self._conn().execute(Q.step_select, (self._seq(run_id),))
        steps = {}
        for key, *rest in rows:
            steps[str(key)] = step_record(run_id, str(key), rest)
        return steps

    def get_step(self, run_id: str, key: str) -> StepRecord:
        row = self._conn().execute(f"{Q.step_select} AND key = ?",
                                   (self._seq(run_id), _db_key(key))).fetchone()
        if row is None:
            raise RunNotFound(f"run {run_id!r} has no recorded step {key!r}")
        return step_record(run_id, key, row[1:])

    def count_steps(self, run_ids: list[str]) -> dict[str, int]:
        counts = dict.fromkeys(run_ids, 0)
        for start in range(0, len(run_ids), 500):
            chunk = run_ids[start:start + 500]
            rows = self._conn().execute(
                "SELECT runs.id, count(*) FROM steps JOIN runs ON runs.seq = steps.run_seq "
                f"WHERE runs.id IN ({', '.join('?' * len(chunk))}) GROUP BY runs.id", chunk)
            counts.update(dict(rows.fetchall()))
        return counts

    def record_step(self, step: StepRecord, logs: list[LogRecord] | None = None,
                    fence: Fence | None = None) -> None:
        conn = self._conn_for(step.run_id)
        try:  # (not a wrapper: this is the per-step hot path, see the module's docstring)
            seq = self._seqs.get(step.run_id) or self._seq(step.run_id)
            if fence is not None:
                if logs:
                    self.record_steps([(step, logs)], fence)
                elif conn.execute(Q.fenced_step_upsert, (*_step_values(seq, step),
                                                         fence.run_id, fence.epoch)
                                  ).rowcount != 1:
                    raise lease_lost(conn, SQLITE, fence)
                return
            if not logs:  # the hot path: one statement, one implicit transaction, one commit
                if is_plain_task_done(step):
                    key = step.key
                    conn.execute(Q.task_done, (seq, int(key) if key.isdigit() else key,
                                               step.name, step.started_at, step.ended_at,
                                               step.params, step.result))
                else:
                    conn.execute(Q.step_upsert, _step_values(seq, step))
                return
            with _write_transaction(conn):
                conn.execute(Q.step_upsert, _step_values(seq, step))
                conn.executemany(Q.log_insert, log_values(logs))
        except (sqlite3.OperationalError, sqlite3.DatabaseError) as exc:
            raise store_error(self.path, exc) from exc

    def record_steps(self, batch: list[tuple[StepRecord, list[LogRecord] | None]],
                     fence: Fence | None = None) -> None:
        conn = self._conn_for_runs({s.run_id for s, _ in batch})
        seqs = self._seqs
        steps, done = [], []
        for s, _ in batch:  # plain outcomes go in multi-row INSERTs: ~1.5 us a row, not ~12
            seq = seqs.get(s.run_id) or self._seq(s.run_id)
            if is_plain_task_done(s):
                done.extend((seq, _db_key(s.key), s.name, s.started_at, s.ended_at, s.params,
                             s.result))
            else:
                steps.append(_step_values(seq, s))
        logs = [line for _, lines in batch if lines for line in log_values(lines)]
        with _write_transaction(conn):
            if fence is not None:
                check_fence(conn, SQLITE, fence)
            if steps:  # first: a plain outcome may follow a Retrying row of its step
                conn.executemany(Q.step_upsert, steps)
            for start in range(0, len(done), TASK_DONE_ROWS * 7):
                chunk = done[start:start + TASK_DONE_ROWS * 7]
                conn.execute(task_done_rows(SQLITE, len(chunk) // 7), chunk)
            if logs:
                conn.executemany(Q.log_insert, logs)

    def mark_steps_running(self, steps: list[StepRecord], fence: Fence | None = None) -> None:
        conn = self._conn_for_runs({s.run_id for s in steps})
        with _write_transaction(conn):
            if fence is not None:
                check_fence(conn, SQLITE, fence)
            conn.executemany(Q.step_if_absent,
                             [_step_values(self._seq(s.run_id), s) for s in steps])

    # -- cache ---------------------------------------------------------------------------
    def read_cache(self, key: str) -> CacheEntry | None:
        row = self._conn().execute(Q.cache_select, (key,)).fetchone()
        return CacheEntry(*row) if row else None

    def write_cache(self, entry: CacheEntry) -> None:
        self._conn_for(entry.run_id).execute(Q.cache_upsert, (
            entry.key, entry.result, entry.result_ref, entry.run_id, entry.step_key,
            entry.created_at, entry.expires_at))

    # -- logs ----------------------------------------------------------------------------
    def append_logs(self, logs: list[LogRecord], fence: Fence | None = None) -> None:
        if not logs:
            return
        conn = self._conn_for_runs({g.run_id for g in logs})
        with _write_transaction(conn):
            if fence is not None:
                check_fence(conn, SQLITE, fence)
            conn.executemany(Q.log_insert, log_values(logs))

    def read_logs(self, run_id: str, after_id: int = 0, limit: int = 10_000) -> list[LogRecord]:
        rows = self._conn().execute(Q.log_select, (run_id, after_id, limit))
        return [LogRecord(*row) for row in rows]

    # -- queues, workers, leases (SQL in store/leases.py and store/slots.py) -------------
    def _write(self, fn: Any, *args: Any) -> Any:
        conn = self._conn_for(None)
        with _write_transaction(conn):
            return fn(conn, SQLITE, *args)

    def _read(self, fn: Any, *args: Any) -> Any:
        return fn(self._conn(), SQLITE, *args)


class _Checkpointer:
    """A daemon thread that checkpoints the WAL every CHECKPOINT_EVERY_S while writes happen.

    PASSIVE checkpoints never block writers or readers; they copy what they can.
    """

    def __init__(self, store: SQLiteStore) -> None:
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


def _speaks_store_error(method: Any) -> Any:
    @functools.wraps(method)
    def wrapped(self: SQLiteStore, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise store_error(self.path, exc) from exc

    return wrapped


# Every public verb (record_step catches its own: it is the hot path), and the two helpers
# through which the queue, lease, limit, deployment and retention verbs go.
for _name in [n for n in dir(SQLiteStore) if not n.startswith("__")]:
    if _name in ("_write", "_read") or (not _name.startswith("_") and _name != "record_step"
                                        and callable(getattr(SQLiteStore, _name))
                                        and _name not in ("close",)):
        setattr(SQLiteStore, _name, _speaks_store_error(getattr(SQLiteStore, _name)))

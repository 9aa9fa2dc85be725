"""The SQLite store: the runs-and-steps verbs on one SQLite file (store/sqlite_conn.py holds
the file's connections, schema, checkpoints and errors), and the other parts' verbs, whose SQL
is shared with PostgreSQL (store/verbs.py).

SQLite's errors (a full disk, a read-only file, a lock held too long) leave the store as
StoreError saying which file and what to do: every verb is wrapped at the end of this module,
except record_step, the per-step hot path, which catches them in its own body (a wrapper costs
a function call per step; a try costs nothing in Python 3.11).
"""

from __future__ import annotations

import functools
import sqlite3
from typing import Any

from stead.errors import RunNotFound
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
from stead.store.durability import SQLITE_SYNCHRONOUS
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
from stead.store.sqlite_conn import SQLiteConnections, store_error, write_transaction
from stead.store.variables import VariableVerbs
from stead.store.verbs import QueueVerbs, RetentionVerbs
from stead.store.waits_sql import WaitVerbs

Q = statements(SQLITE)


def _db_key(key: str) -> int | str:
    """Top-level keys ("7") are stored as integers, nested ones ("7.2") as text."""
    return int(key) if key.isdigit() else key


def _step_values(seq: int, s: StepRecord) -> tuple:
    return step_values(seq, _db_key(s.key), s)


class SQLiteStore(SQLiteConnections, QueueVerbs, RetentionVerbs, AuditVerbs, SecretVerbs,
                  VariableVerbs, WaitVerbs):
    """Store implementation on one SQLite file. Create with `SQLiteStore(path)`; `schema`
    says who may create or upgrade its schema (store/migrate.py: "auto", "read", "upgrade")."""

    # -- runs ----------------------------------------------------------------------------
    def create_run(self, run: RunRecord, message: str | None = None,
                   fence: Fence | None = None) -> tuple[RunRecord, bool]:
        if run.id not in self._levels:
            self._levels[run.id] = SQLITE_SYNCHRONOUS.get(run.durability, self.synchronous)
        conn = self._conn_for(run.id)
        with write_transaction(conn):
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
        with write_transaction(conn):
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
            with write_transaction(conn):
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
        with write_transaction(conn):
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
        with write_transaction(conn):
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
        with write_transaction(conn):
            if fence is not None:
                check_fence(conn, SQLITE, fence)
            conn.executemany(Q.log_insert, log_values(logs))

    def read_logs(self, run_id: str, after_id: int = 0, limit: int = 10_000) -> list[LogRecord]:
        rows = self._conn().execute(Q.log_select, (run_id, after_id, limit))
        return [LogRecord(*row) for row in rows]


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

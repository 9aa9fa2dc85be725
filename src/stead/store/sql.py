"""The SQL both relational backends share, written once with a placeholder of each dialect.

SQLite binds `?`, psycopg binds `%s`; everything else here is standard SQL that both run.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, fields
from typing import Any

from stead.errors import LeaseLost, RunConflict, RunNotFound
from stead.store.base import Fence, LogRecord, RunFilter, RunRecord, StepRecord

RUN_COLUMNS = [f.name for f in fields(RunRecord)]
# Written only by enqueue, claims, heartbeats and recovery: an executor's transitions must
# not write back a stale copy of them.
LEASE_COLUMNS = ("queue", "priority", "lease_epoch", "lease_expires_at", "worker_id",
                 "recoveries", "max_recoveries")
# Written only when the run is created: what it executes, where it belongs and who made it.
# A transition (an executor's whole record) must not rewrite them, or a worker could point a
# run it holds at other code or move it to another namespace.
IDENTITY_COLUMNS = ("flow_name", "entrypoint", "script_path", "params", "parent_id",
                    "parent_step", "created_at", "deployment", "deployment_version",
                    "scheduled_for", "namespace", "created_by")
RUN_UPDATE_COLUMNS = [c for c in RUN_COLUMNS[1:]
                      if c not in LEASE_COLUMNS and c not in IDENTITY_COLUMNS]
LIVE_STATES = ("Running", "Retrying")  # states of a run that an executor is working on
# Steps refer to their run by its integer `seq`, not its text id: a smaller key makes the
# per-step insert (the hot path) cheaper.
STEP_COLUMNS = ["run_seq", *[f.name for f in fields(StepRecord)][1:]]
CACHE_COLUMNS = "key, result, result_ref, run_id, step_key, created_at, expires_at"


@dataclass(frozen=True)
class Dialect:
    """What differs in the shared SQL: the placeholder and the row-locking clauses."""

    p: str  # "?" or "%s"
    for_update: str  # lock the rows read until commit ("" on SQLite: the write lock covers it)
    for_share: str  # the same, shared (fence checks; they conflict with a recovery's UPDATE)
    skip_locked: str  # lock the rows read, skipping rows other transactions hold
    # The database's clock in seconds since the epoch: leases are measured on it, never on a
    # worker's clock, so workers whose clocks disagree still agree on which leases lapsed.
    clock: str

    def marks(self, n: int) -> str:
        return ", ".join([self.p] * n)


# SQLite 3.40 has no unixepoch('subsec'): julianday('now') has millisecond precision and is
# the same throughout one statement. PostgreSQL's statement_timestamp() is when the
# statement arrived (not the transaction's start, as now() would be), and being stable
# within the statement, a comparison with it can use an index.
SQLITE = Dialect("?", "", "", "", "((julianday('now') - 2440587.5) * 86400.0)")
POSTGRES = Dialect("%s", " FOR UPDATE", " FOR SHARE", " FOR UPDATE SKIP LOCKED",
                   "extract(epoch from statement_timestamp())::float8")


def check_fence(conn: Any, d: Dialect, fence: Fence) -> None:
    """Inside a write transaction: raise LeaseLost unless `fence` still holds its run."""
    row = conn.execute(f"SELECT lease_epoch FROM runs WHERE id = {d.p}{d.for_share}",
                       (fence.run_id,)).fetchone()
    if row is None or row[0] != fence.epoch:
        raise LeaseLost(fence.run_id, fence.epoch, None if row is None else row[0])


def take_over_run(conn: Any, d: Dialect, run: RunRecord) -> None:
    """Inside a write transaction: bump the run's lease epoch if it is still `run`'s (the
    compare-and-set of a takeover), else raise RunConflict. The caller bumps
    `run.lease_epoch` once the transaction committed (a retried one must compare the same)."""
    if conn.execute(f"UPDATE runs SET lease_epoch = lease_epoch + 1 WHERE id = {d.p} AND "
                    f"lease_epoch = {d.p}", (run.id, run.lease_epoch)).rowcount != 1:
        raise RunConflict(f"run {run.id} was taken over by another process meanwhile (it "
                          "resumed or recovered the run first, and executes it now); "
                          "`stead runs show` tells where")


def lease_lost(conn: Any, d: Dialect, fence: Fence) -> LeaseLost:
    """The LeaseLost to raise after a fenced write wrote nothing."""
    row = conn.execute(f"SELECT lease_epoch FROM runs WHERE id = {d.p}",
                       (fence.run_id,)).fetchone()
    return LeaseLost(fence.run_id, fence.epoch, None if row is None else row[0])


@dataclass(frozen=True)
class Statements:
    """Every statement the stores run, for one placeholder style."""

    run_select: str
    run_insert: str
    run_update: str
    history_insert: str
    history_select: str
    step_select: str
    step_upsert: str
    fenced_step_upsert: str
    task_done: str
    step_if_absent: str
    log_insert: str
    log_select: str
    cache_select: str
    cache_upsert: str
    fenced_transition: str
    fenced_task_done: str


def statements(d: Dialect) -> Statements:
    """The statements in dialect `d` (placeholder "?" or "%s", and its locking clauses)."""
    p = d.p

    def marks(n: int) -> str:
        return ", ".join([p] * n)

    update_step = ", ".join(f"{c} = excluded.{c}" for c in STEP_COLUMNS[2:])
    return Statements(
        run_select=f"SELECT {', '.join(RUN_COLUMNS)} FROM runs",
        run_insert=(f"INSERT INTO runs ({', '.join(RUN_COLUMNS)}) VALUES "
                    f"({marks(len(RUN_COLUMNS))}) ON CONFLICT (id) DO NOTHING"),
        run_update=(f"UPDATE runs SET {', '.join(f'{c} = {p}' for c in RUN_UPDATE_COLUMNS)} "
                    f"WHERE id = {p}"),
        history_insert=(f"INSERT INTO run_history (run_id, state, at, message) "
                        f"VALUES ({marks(4)})"),
        history_select=(f"SELECT run_id, state, at, message FROM run_history "
                        f"WHERE run_id = {p} ORDER BY id"),
        step_select=f"SELECT {', '.join(STEP_COLUMNS[1:])} FROM steps WHERE run_seq = {p}",
        step_upsert=(f"INSERT INTO steps ({', '.join(STEP_COLUMNS)}) VALUES "
                     f"({marks(len(STEP_COLUMNS))}) ON CONFLICT (run_seq, key) DO UPDATE SET "
                     f"{update_step}"),
        # The common outcome (a task completed on its first attempt with a small result)
        # binds 7 values instead of 16: each bound parameter costs time on the hot path.
        task_done=("INSERT INTO steps (run_seq, key, name, kind, state, attempts, started_at, "
                   f"ended_at, params, result) VALUES ({p}, {p}, {p}, 'task', 'Completed', 1, "
                   f"{marks(4)}) ON CONFLICT (run_seq, key) DO UPDATE SET {update_step}"),
        # A step write that checks its fence in the same statement: one round trip instead of
        # a transaction around a fence check and the write. No row written: the fence is lost.
        fenced_step_upsert=(
            f"INSERT INTO steps ({', '.join(STEP_COLUMNS)}) SELECT {marks(len(STEP_COLUMNS))} "
            f"WHERE EXISTS (SELECT 1 FROM runs WHERE id = {p} AND lease_epoch = {p}"
            f"{d.for_share}) ON CONFLICT (run_seq, key) DO UPDATE SET {update_step}"),
        # A transition of a leased run in one statement (PostgreSQL: a CTE may write): the
        # update only while the fence holds, and its history row. No row: the fence is lost.
        fenced_transition=(
            f"WITH moved AS (UPDATE runs SET "
            f"{', '.join(f'{c} = {p}' for c in RUN_UPDATE_COLUMNS)} WHERE id = {p} AND "
            f"EXISTS (SELECT 1 FROM runs AS fence WHERE fence.id = {p} AND "
            f"fence.lease_epoch = {p}{d.for_share}) RETURNING id) "
            f"INSERT INTO run_history (run_id, state, at, message) SELECT id, {p}, {p}, {p} "
            "FROM moved"),
        # `task_done` checking its fence in the same statement (see fenced_step_upsert).
        fenced_task_done=(
            "INSERT INTO steps (run_seq, key, name, kind, state, attempts, started_at, "
            f"ended_at, params, result) SELECT {p}, {p}, {p}, 'task', 'Completed', 1, "
            f"{marks(4)} WHERE EXISTS (SELECT 1 FROM runs WHERE id = {p} AND lease_epoch = {p}"
            f"{d.for_share}) ON CONFLICT (run_seq, key) DO UPDATE SET {update_step}"),
        step_if_absent=(f"INSERT INTO steps ({', '.join(STEP_COLUMNS)}) VALUES "
                        f"({marks(len(STEP_COLUMNS))}) ON CONFLICT (run_seq, key) DO NOTHING"),
        log_insert=(f"INSERT INTO logs (run_id, step_key, at, level, message) "
                    f"VALUES ({marks(5)})"),
        log_select=(f"SELECT run_id, step_key, at, level, message, id FROM logs "
                    f"WHERE run_id = {p} AND id > {p} ORDER BY id LIMIT {p}"),
        cache_select=f"SELECT {CACHE_COLUMNS} FROM cache WHERE key = {p}",
        cache_upsert=(f"INSERT INTO cache ({CACHE_COLUMNS}) VALUES ({marks(7)}) "
                      "ON CONFLICT (key) DO UPDATE SET result = excluded.result, "
                      "result_ref = excluded.result_ref, run_id = excluded.run_id, "
                      "step_key = excluded.step_key, created_at = excluded.created_at, "
                      "expires_at = excluded.expires_at"),
    )


TASK_DONE_ROWS = 256  # rows per multi-row `task_done_rows` statement (7 values a row)


@functools.lru_cache(maxsize=64)
def task_done_rows(d: Dialect, n: int) -> str:
    """`task_done` for `n` rows in one statement: one call into the database for a group of
    plain outcomes (measured on SQLite: ~1.5 us a row, against ~3 us with executemany)."""
    row = f"({d.p}, {d.p}, {d.p}, 'task', 'Completed', 1, {d.marks(4)})"
    update_step = ", ".join(f"{c} = excluded.{c}" for c in STEP_COLUMNS[2:])
    return ("INSERT INTO steps (run_seq, key, name, kind, state, attempts, started_at, "
            f"ended_at, params, result) VALUES {', '.join([row] * n)} "
            f"ON CONFLICT (run_seq, key) DO UPDATE SET {update_step}")


def run_values(run: RunRecord) -> tuple:
    return tuple(getattr(run, c) for c in RUN_COLUMNS)


def run_update_values(run: RunRecord) -> tuple:
    """The values of `run_update`: RUN_UPDATE_COLUMNS, then the id."""
    return (*(getattr(run, c) for c in RUN_UPDATE_COLUMNS), run.id)


def step_values(seq: int, key: object, s: StepRecord) -> tuple:
    """The values of STEP_COLUMNS for `s`; "[]" (derived history) is stored as NULL."""
    return (seq, key, s.name, s.kind, s.state, s.attempts, s.started_at, s.ended_at,
            s.params, s.result, s.result_ref, s.error,
            None if s.history == "[]" else s.history, s.child_run_id, s.depends_on,
            s.cache_key, s.cached_from, s.run_name)


def log_values(logs: list[LogRecord]) -> list[tuple]:
    return [(g.run_id, g.step_key, g.at, g.level, g.message) for g in logs]


def is_plain_task_done(step: StepRecord) -> bool:
    """Whether `step` can be written with the short `task_done` statement."""
    return (step.attempts == 1 and step.state == "Completed" and step.kind == "task"
            and step.result_ref is None and step.child_run_id is None and step.history == "[]"
            and step.depends_on is None and step.cache_key is None and step.run_name is None)


def run_filter_sql(flt: RunFilter, p: str) -> tuple[str, list]:
    """The WHERE clause (possibly empty) and arguments of a run listing."""
    where: list[str] = []
    args: list[Any] = []
    states = (flt.state,) if isinstance(flt.state, str) else flt.state
    if states:
        where.append(f"state IN ({', '.join([p] * len(states))})")
        args.extend(states)
    for column, value in (("flow_name", flt.flow_name), ("parent_id", flt.parent_id),
                          ("queue", flt.queue), ("deployment", flt.deployment)):
        if value is not None:
            where.append(f"{column} = {p}")
            args.append(value)
    if flt.namespaces is not None:
        where.append(f"namespace IN ({', '.join([p] * len(flt.namespaces))})"
                     if flt.namespaces else "1 = 0")
        args.extend(flt.namespaces)
    if flt.tag is not None:
        # `tags` is a JSON list written by json.dumps: a tag is in it iff its JSON string is.
        # replace() compares case-sensitively on both backends (SQLite's LIKE does not).
        where.append(f"replace(tags, {p}, '') <> tags")
        args.append(json.dumps(flt.tag))
    if flt.created_after is not None:
        where.append(f"created_at >= {p}")
        args.append(flt.created_after)
    if flt.created_before is not None:
        where.append(f"created_at < {p}")
        args.append(flt.created_before)
    if flt.after is not None:  # keyset pagination in the order created_at DESC, id DESC
        where.append(f"(created_at < {p} OR (created_at = {p} AND id < {p}))")
        args.extend((flt.after[0], flt.after[0], flt.after[1]))
    return (f" WHERE {' AND '.join(where)}" if where else ""), args


def resolve_matches(prefix: str, candidates: list[str]) -> list[str]:
    """The run ids among `candidates` that `prefix` names (see Store.resolve_run_id)."""
    root, sep, child = prefix.partition(":")
    if sep:
        return sorted(c for c in candidates
                      if c.startswith(root) and c.partition(":")[2] == child)
    return sorted(c for c in candidates if c.startswith(prefix) and ":" not in c[len(prefix):])


def step_record(run_id: str, key: str, rest: list | tuple) -> StepRecord:
    """A StepRecord from the columns after `key` (see STEP_COLUMNS); NULL history is "[]"."""
    *head, history, child, depends, cache_key, cached_from, run_name = rest
    return StepRecord(run_id, key, *head, history or "[]", child, depends, cache_key,
                      cached_from, run_name)


def check_expected(run_id: str, actual: str | None, expected: tuple[str, ...]) -> None:
    if actual is None or actual not in expected:
        raise RunConflict(f"run {run_id} is {actual or 'gone'}, expected "
                          f"{' or '.join(expected)}; another process changed it")


def one_match(prefix: str, ids: list[str], where: str) -> str:
    if not ids:
        raise RunNotFound(f"no run with id {prefix!r} in {where}; `stead runs ls` lists the runs")
    if len(ids) > 1:
        many = f"{len(ids)} runs" if len(ids) <= 3 else "more than 3 runs"
        shown = ", ".join(ids[:3]) + (", ..." if len(ids) > 3 else "")
        raise RunNotFound(f"{prefix!r} matches {many} ({shown}); give more characters of the id")
    return ids[0]

"""The PostgreSQL store (psycopg 3 with a connection pool): many processes on many hosts.
The runs-and-steps verbs are here; the pool, commit levels, schema and retries in
store/postgres_conn.py; the other parts' verbs, whose SQL is shared with SQLite, in
store/verbs.py.

Same verbs and the same SQL as the SQLite store (store/sql.py). Multi-row writes run in one
transaction; compare-and-set transitions lock the run's row (SELECT ... FOR UPDATE).
The verbs are idempotent (upserts, compare-and-set) so a retry after a commit whose reply was
lost changes nothing; the one exception, a run's history line, may then appear twice.
"""

from __future__ import annotations

import time
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
    WorkerRecord,
)
from stead.store.durability import POSTGRES_SYNCHRONOUS_COMMIT
from stead.store.leases import claim_runs_at_once
from stead.store.postgres_conn import PostgresConnections, survives_restarts
from stead.store.postgres_conn import connect as connect  # for store/migrate.py
from stead.store.postgres_conn import server_address as server_address
from stead.store.secrets import SecretVerbs
from stead.store.sql import (
    POSTGRES,
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
from stead.store.waits_sql import WaitVerbs

Q = statements(POSTGRES)
# The fenced step writes naming their run by id (its seq looked up in the statement), for a
# run whose seq this process has not read: a claimed run's first steps need no round trip.
_BY_ID = "(SELECT seq FROM runs WHERE id = %s)"
FENCED_TASK_DONE_BY_ID = Q.fenced_task_done.replace("%s", _BY_ID, 1)
FENCED_STEP_UPSERT_BY_ID = Q.fenced_step_upsert.replace("%s", _BY_ID, 1)
# How long claims from a set of queues with a concurrency limit take the counting path before
# trying the one-statement claim again (store/leases.py claim_runs_at_once).
LIMITED_RECHECK_S = 5.0


def _step_values(seq: int, s: StepRecord) -> tuple:
    return step_values(seq, s.key, s)


class PostgresStore(PostgresConnections, QueueVerbs, RetentionVerbs, AuditVerbs, SecretVerbs,
                    VariableVerbs, WaitVerbs):
    """Store implementation on PostgreSQL. Create with `PostgresStore("postgresql://...")`.

    `schema` says who may create or upgrade the schema (store/migrate.py); `connect_wait_s`,
    how long to wait for an unreachable server as the store opens (None: OPEN_WAIT_S, a
    service's patience; a command passes a few seconds). Verbs retry for
    STEAD_STORE_RETRY_SECONDS either way (a flow resumed from the CLI outlives a restart).
    """

    # -- runs ----------------------------------------------------------------------------
    @survives_restarts
    def create_run(self, run: RunRecord, message: str | None = None,
                   fence: Fence | None = None) -> tuple[RunRecord, bool]:
        self._levels.setdefault(run.id, POSTGRES_SYNCHRONOUS_COMMIT.get(run.durability,
                                                                       self._sync))
        with self._transaction(run.id) as conn:
            if fence is not None:
                check_fence(conn, POSTGRES, fence)
            created = conn.execute(Q.run_insert, run_values(run)).rowcount == 1
            if not created:
                self._levels.pop(run.id, None)  # the stored run's level, read when needed
            if created:
                conn.execute(Q.history_insert, (run.id, run.state, run.created_at, message))
        return (run, True) if created else (self.get_run(run.id), False)

    @survives_restarts
    def get_run(self, run_id: str) -> RunRecord:
        with self._conn() as conn:
            row = conn.execute(f"{Q.run_select} WHERE id = %s", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(f"no run with id {run_id!r} in {self._where}")
        return RunRecord(*row)

    @survives_restarts
    def resolve_run_id(self, prefix: str) -> str:
        root, sep, child = prefix.partition(":")
        with self._conn() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE id = %s", (prefix,)).fetchone():
                return prefix
            if sep:
                rows = conn.execute(
                    "SELECT id FROM runs WHERE left(id, %s) = %s AND id LIKE %s LIMIT 1000",
                    (len(root), root, f"%:{child}")).fetchall()
            else:
                rows = conn.execute(
                    "SELECT id FROM runs WHERE left(id, %s) = %s "
                    "AND position(':' in substr(id, %s + 1)) = 0 LIMIT 4",
                    (len(prefix), prefix, len(prefix))).fetchall()
        return one_match(prefix, resolve_matches(prefix, [r[0] for r in rows]), self._where)

    @survives_restarts
    def list_runs(self, flt: RunFilter) -> list[RunRecord]:
        where, args = run_filter_sql(flt, "%s")
        sql = f"{Q.run_select}{where} ORDER BY created_at DESC, id DESC LIMIT %s"
        with self._conn() as conn:
            return [RunRecord(*row) for row in conn.execute(sql, (*args, flt.limit))]

    @survives_restarts
    def transition_run(self, run: RunRecord, state: str, at: float,
                       message: str | None = None,
                       expected: tuple[str, ...] | None = None,
                       fence: Fence | None = None, take_over: bool = False) -> None:
        if fence is not None and expected is None and not take_over:
            # A worker's transitions: one round trip, no transaction around a fence check.
            with self._conn(run.id) as conn:
                old, run.state = run.state, state
                try:
                    moved = conn.execute(Q.fenced_transition, (
                        *run_update_values(run), fence.run_id, fence.epoch, state, at,
                        message)).rowcount
                except BaseException:
                    run.state = old
                    raise
                if moved != 1:
                    run.state = old
                    raise lease_lost(conn, POSTGRES, fence)
            return
        with self._transaction(run.id) as conn:
            if fence is not None:
                check_fence(conn, POSTGRES, fence)
            if take_over:
                take_over_run(conn, POSTGRES, run)
            if expected is not None:
                row = conn.execute("SELECT state FROM runs WHERE id = %s FOR UPDATE",
                                   (run.id,)).fetchone()
                check_expected(run.id, row[0] if row else None, expected)
            run.state = state
            conn.execute(Q.run_update, run_update_values(run))
            conn.execute(Q.history_insert, (run.id, state, at, message))
        if take_over:
            run.lease_epoch += 1

    @survives_restarts
    def run_history(self, run_id: str) -> list[StateChange]:
        with self._conn() as conn:
            return [StateChange(*row) for row in conn.execute(Q.history_select, (run_id,))]

    # -- steps ---------------------------------------------------------------------------
    @survives_restarts
    def load_steps(self, run_id: str) -> dict[str, StepRecord]:
        with self._conn() as conn:
            rows = conn.execute(Q.step_select, (self._seq(run_id),)).fetchall()
        return {key: step_record(run_id, key, rest) for key, *rest in rows}

    @survives_restarts
    def get_step(self, run_id: str, key: str) -> StepRecord:
        with self._conn() as conn:
            row = conn.execute(f"{Q.step_select} AND key = %s",
                               (self._seq(run_id), key)).fetchone()
        if row is None:
            raise RunNotFound(f"run {run_id!r} has no recorded step {key!r}")
        return step_record(run_id, key, row[1:])

    @survives_restarts
    def count_steps(self, run_ids: list[str]) -> dict[str, int]:
        counts = dict.fromkeys(run_ids, 0)
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT runs.id, count(*) FROM steps JOIN runs ON runs.seq = steps.run_seq "
                "WHERE runs.id = ANY(%s) GROUP BY runs.id", (run_ids,)).fetchall()
        counts.update(dict(rows))
        return counts

    @survives_restarts
    def record_step(self, step: StepRecord, logs: list[LogRecord] | None = None,
                    fence: Fence | None = None) -> None:
        seq = self._seqs.get(step.run_id)
        if fence is not None and not logs:  # one statement: the write checks its fence
            # With the seq unknown (a claimed run's own steps), the statement looks it up.
            done_sql, upsert_sql = ((Q.fenced_task_done, Q.fenced_step_upsert) if seq
                                    else (FENCED_TASK_DONE_BY_ID, FENCED_STEP_UPSERT_BY_ID))
            key = seq or step.run_id
            with self._conn(step.run_id) as conn:
                if is_plain_task_done(step):
                    written = conn.execute(done_sql, (
                        key, step.key, step.name, step.started_at, step.ended_at, step.params,
                        step.result, fence.run_id, fence.epoch)).rowcount
                else:
                    written = conn.execute(upsert_sql, (
                        *step_values(key, step.key, step), fence.run_id, fence.epoch)).rowcount
                if written != 1:
                    raise lease_lost(conn, POSTGRES, fence)
            return
        seq = seq or self._seq(step.run_id)
        if fence is not None:
            self.record_steps([(step, logs)], fence)
            return
        if not logs:
            with self._conn(step.run_id) as conn:
                if is_plain_task_done(step):
                    conn.execute(Q.task_done, (seq, step.key, step.name, step.started_at,
                                               step.ended_at, step.params, step.result))
                else:
                    conn.execute(Q.step_upsert, _step_values(seq, step))
            return
        with self._transaction(step.run_id) as conn:
            conn.execute(Q.step_upsert, _step_values(seq, step))
            with conn.cursor() as cur:
                cur.executemany(Q.log_insert, log_values(logs))

    @survives_restarts
    def record_steps(self, batch: list[tuple[StepRecord, list[LogRecord] | None]],
                     fence: Fence | None = None) -> None:
        steps, done, seen = [], [], set()
        for s, _ in batch:  # plain outcomes go in multi-row INSERTs (one round trip a chunk)
            seq = self._seqs.get(s.run_id) or self._seq(s.run_id)
            # A multi-row upsert may not touch a row twice: a repeated key goes the slow way.
            if is_plain_task_done(s) and (seq, s.key) not in seen:
                seen.add((seq, s.key))
                done.extend((seq, s.key, s.name, s.started_at, s.ended_at, s.params, s.result))
            else:
                steps.append(_step_values(seq, s))
        logs = [line for _, lines in batch if lines for line in log_values(lines)]
        with self._transaction({s.run_id for s, _ in batch}) as conn, conn.cursor() as cur:
            if fence is not None:
                check_fence(cur, POSTGRES, fence)
            if steps:  # first: a plain outcome may follow a Retrying row of its step
                cur.executemany(Q.step_upsert, steps)
            for start in range(0, len(done), TASK_DONE_ROWS * 7):
                chunk = done[start:start + TASK_DONE_ROWS * 7]
                cur.execute(task_done_rows(POSTGRES, len(chunk) // 7), chunk)
            if logs:
                cur.executemany(Q.log_insert, logs)

    @survives_restarts
    def mark_steps_running(self, steps: list[StepRecord], fence: Fence | None = None) -> None:
        values = [_step_values(self._seq(s.run_id), s) for s in steps]
        with self._transaction({s.run_id for s in steps}) as conn, conn.cursor() as cur:
            if fence is not None:
                check_fence(cur, POSTGRES, fence)
            cur.executemany(Q.step_if_absent, values)

    # -- cache ---------------------------------------------------------------------------
    @survives_restarts
    def read_cache(self, key: str) -> CacheEntry | None:
        with self._conn() as conn:
            row = conn.execute(Q.cache_select, (key,)).fetchone()
        return CacheEntry(*row) if row else None

    @survives_restarts
    def write_cache(self, entry: CacheEntry) -> None:
        with self._conn(entry.run_id) as conn:
            conn.execute(Q.cache_upsert, (entry.key, entry.result, entry.result_ref,
                                          entry.run_id, entry.step_key, entry.created_at,
                                          entry.expires_at))

    # -- logs ----------------------------------------------------------------------------
    @survives_restarts
    def append_logs(self, logs: list[LogRecord], fence: Fence | None = None) -> None:
        if not logs:
            return
        with self._transaction({g.run_id for g in logs}) as conn, conn.cursor() as cur:
            if fence is not None:
                check_fence(cur, POSTGRES, fence)
            cur.executemany(Q.log_insert, log_values(logs))

    @survives_restarts
    def read_logs(self, run_id: str, after_id: int = 0, limit: int = 10_000) -> list[LogRecord]:
        with self._conn() as conn:
            rows = conn.execute(Q.log_select, (run_id, after_id, limit)).fetchall()
        return [LogRecord(*row) for row in rows]

    def executing(self, run: RunRecord) -> None:
        """This process executes `run`, which a worker claimed: remember the level of its
        commits (its durability), so its first step write needs no round trip to read it.

        Example:
            >>> store.executing(claimed)   # core/execution.py, before the run's first step
        """
        self._levels.setdefault(run.id, POSTGRES_SYNCHRONOUS_COMMIT.get(run.durability,
                                                                       self._sync))

    # -- queues, workers, leases (SQL in store/leases.py and store/slots.py) -------------
    def claim_runs(self, queues: list[str], worker: WorkerRecord, owner: str, n: int,
                   now: float, lease_s: float, namespaces: list[str] | None = None
                   ) -> list[RunRecord]:
        key = tuple(queues)
        if time.monotonic() >= self._limited_until.get(key, 0.0):
            asked = time.monotonic()
            runs = self._claim_at_once(queues, worker, owner, n, now, lease_s, namespaces)
            if runs is not None:
                return runs
            # A limited queue: its claims count its running runs first, for a while (a limit
            # lifted is seen within LIMITED_RECHECK_S). The claim is stamped when it counts.
            self._limited_until[key] = time.monotonic() + LIMITED_RECHECK_S
            now += time.monotonic() - asked
        return super().claim_runs(queues, worker, owner, n, now, lease_s, namespaces)

    @survives_restarts
    def _claim_at_once(self, *args: Any) -> list[RunRecord] | None:
        with self._conn(None) as conn:
            return claim_runs_at_once(conn, *args)

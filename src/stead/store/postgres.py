"""The PostgreSQL store (psycopg 3 with a connection pool): many processes on many hosts.

Same verbs and the same SQL as the SQLite store (store/sql.py). Multi-row writes run in one
transaction; compare-and-set transitions lock the run's row (SELECT ... FOR UPDATE).
Every verb retries for up to STEAD_STORE_RETRY_SECONDS (60 s) when the server cannot be
reached, on a fresh connection (the pool drops broken ones), so a flow outlives a server
restart. The pool gives up a reconnection attempt after RECONNECT_S and makes a new one when
a verb asks again: psycopg_pool's own backoff (1, 2, 4 ... 32 s between attempts) once kept
workers waiting ~25 s after a 60 s outage ended.
Connections are not checked when taken from the pool: that costs a round trip per verb
(1.76x -> 1.15x one INSERT+COMMIT per task, bench/bench.py), and the retries cover it.
The verbs are idempotent (upserts, compare-and-set) so a retry after a commit whose reply was
lost changes nothing; the one exception, a run's history line, may then appear twice.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from stead.errors import RunNotFound, StoreError
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
    WorkerRecord,
)
from stead.store.durability import POSTGRES_SYNCHRONOUS_COMMIT, strongest
from stead.store.leases import claim_runs_at_once
from stead.store.migrate import check_policy, decide, live_workers, upgrade
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

Q = statements(POSTGRES)
MIGRATION_LOCK = 7_305_001  # pg_advisory_lock key: one process migrates at a time
RETRY_CAP_S = 0.5  # the longest pause between two attempts of a verb during an outage
# How long the pool waits for a connection, and keeps trying to open one, per attempt of a
# verb: the verb's retry loop asks again (a fresh attempt) instead of psycopg_pool's backoff.
RECONNECT_S = 1.0
# The server's answers that waiting will not change (not "the database system is starting up").
REFUSALS = ("does not exist", "authentication", "password", "pg_hba.conf", "permission denied")
# How long claims from a set of queues with a concurrency limit take the counting path before
# trying the one-statement claim again (store/leases.py claim_runs_at_once).
LIMITED_RECHECK_S = 5.0
OPEN_WAIT_S = 30.0  # how long a service waits for an unreachable server as it opens the store
F = TypeVar("F", bound=Callable[..., Any])


def _survives_restarts(method: F) -> F:
    """Retry `method` with backoff while the server cannot be reached (restart, failover)."""

    @functools.wraps(method)
    def retrying(self: PostgresStore, *args: Any, **kwargs: Any) -> Any:
        deadline = time.monotonic() + self._retry_for
        delay = 0.05
        while True:
            try:
                return method(self, *args, **kwargs)
            except self._transient as exc:
                self.unreachable_at = time.monotonic()
                if time.monotonic() + delay > deadline:
                    raise StoreError(f"PostgreSQL at {self._where} has been unreachable for "
                                     f"{self._retry_for:g} s (STEAD_STORE_RETRY_SECONDS): "
                                     f"{exc}") from exc
                time.sleep(delay)
                delay = min(delay * 2, RETRY_CAP_S)
                try:
                    self._pool.check()  # drop every idle connection the outage broke
                except Exception:
                    pass  # still down: the next attempt says so

    return retrying  # type: ignore[return-value]


def _step_values(seq: int, s: StepRecord) -> tuple:
    return step_values(seq, s.key, s)


class PostgresStore(QueueVerbs, RetentionVerbs, AuditVerbs, SecretVerbs, VariableVerbs):
    """Store implementation on PostgreSQL. Create with `PostgresStore("postgresql://...")`.

    `schema` says who may create or upgrade the schema (store/migrate.py); `connect_wait_s`,
    how long to wait for an unreachable server as the store opens (None: OPEN_WAIT_S, a
    service's patience; a command passes a few seconds). Verbs retry for
    STEAD_STORE_RETRY_SECONDS either way (a flow resumed from the CLI outlives a restart).
    """

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 16,
                 synchronous_commit: str = "off", schema: str = "auto",
                 connect_wait_s: float | None = None) -> None:
        try:
            import psycopg
            from psycopg_pool import ConnectionPool, PoolTimeout
        except ImportError:
            raise StoreError("PostgreSQL needs psycopg: pip install 'stead[postgres]'") from None
        self.url = url
        self.schema = check_policy(schema)
        self._transient = (psycopg.OperationalError, PoolTimeout)
        self._where = _redacted(url)
        self._seqs: dict[str, int] = {}
        # A run's commits follow its durability level through the session's synchronous_commit,
        # SET on a pooled connection only when it differs from the connection's current one.
        self._sync = synchronous_commit  # for writes that belong to no run
        self._levels: dict[str, str] = {}  # run id -> synchronous_commit of its commits
        self._seq_lock = threading.Lock()
        self._limited_until: dict[tuple[str, ...], float] = {}  # queues -> monotonic time
        self._retry_for = get_settings().store_retry_seconds
        wait_s = OPEN_WAIT_S if connect_wait_s is None else connect_wait_s
        # One plain connection first: an unreachable server is then one clear error, not the
        # pool's background attempts logging a warning each.
        connect(url, wait_s).close()
        try:
            self._pool = ConnectionPool(url, min_size=min_size, max_size=max_size,
                                        kwargs={"autocommit": True}, open=True,
                                        timeout=RECONNECT_S, reconnect_timeout=RECONNECT_S)
            self._pool.wait(timeout=max(wait_s, 1.0))
        except Exception as exc:
            raise StoreError(f"cannot connect to PostgreSQL at {self._where}: {exc}. Check "
                             "STEAD_DATABASE_URL and that the server is running.") from exc
        try:
            self._ensure_schema()
        except BaseException:
            self._pool.close()  # a refused schema leaves no pool (nor its threads) behind
            raise

    # -- connections ---------------------------------------------------------------------
    @contextmanager
    def _conn(self, run: str | set[str] | bool | None = False) -> Iterator[Any]:
        """A pooled connection; for a write (`run`: the run id(s), None for no run's) its
        commits at that run's durability level. False: a read."""
        with self._pool.connection() as conn:
            if run is not False:
                self._commit_at(conn, run)  # type: ignore[arg-type]
            yield conn

    @contextmanager
    def _transaction(self, run: str | set[str] | None = None) -> Iterator[Any]:
        with self._conn(run) as conn, conn.transaction():
            yield conn

    def _commit_at(self, conn: Any, run: str | set[str] | None) -> None:
        if run is None:
            want = self._sync
        elif isinstance(run, str):
            want = self._levels.get(run) or self._level_of(conn, run)
        else:
            want = strongest([self._levels.get(r) or self._level_of(conn, r) for r in run] or
                             [self._sync])
        if getattr(conn, "_stead_sync", None) != want:
            # Outside any transaction (autocommit): the setting lasts for the session.
            conn.execute(f"SET synchronous_commit = {want}")
            conn._stead_sync = want

    def _level_of(self, conn: Any, run_id: str) -> str:
        """The synchronous_commit of run `run_id`'s commits, read on `conn` (no second pooled
        connection while one is held) and remembered; the store's own for an unknown run."""
        row = conn.execute("SELECT durability FROM runs WHERE id = %s", (run_id,)).fetchone()
        if row is None:
            return self._sync
        level = self._levels[run_id] = POSTGRES_SYNCHRONOUS_COMMIT.get(row[0], self._sync)
        return level

    @_survives_restarts
    def _ensure_schema(self) -> None:
        if not decide(self._revision(), self.schema, self._where, self._live):
            return
        with self._conn() as conn:
            conn.execute("SELECT pg_advisory_lock(%s)", (MIGRATION_LOCK,))
            try:
                if decide(self._revision(), self.schema, self._where, self._live):
                    upgrade(_sqlalchemy_url(self.url))
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))

    def _live(self) -> list[str]:
        with self._conn() as conn:
            return live_workers(conn, "%s", self._revision(), get_settings().lease_seconds)

    def _revision(self) -> str | None:
        with self._conn() as conn:
            exists = conn.execute("SELECT to_regclass('alembic_version')").fetchone()[0]
            if exists is None:
                tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = "
                                      "current_schema() AND tablename = 'runs'").fetchone()[0]
                if tables:
                    raise StoreError(f"{self._where} has a 'runs' table but no Stead schema; "
                                     "point STEAD_DATABASE_URL at a database of its own")
                return None
            row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        return row[0] if row else None

    def close(self) -> None:
        self._pool.close()

    # -- runs ----------------------------------------------------------------------------
    @_survives_restarts
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

    @_survives_restarts
    def get_run(self, run_id: str) -> RunRecord:
        with self._conn() as conn:
            row = conn.execute(f"{Q.run_select} WHERE id = %s", (run_id,)).fetchone()
        if row is None:
            raise RunNotFound(f"no run with id {run_id!r} in {self._where}")
        return RunRecord(*row)

    @_survives_restarts
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

    @_survives_restarts
    def list_runs(self, flt: RunFilter) -> list[RunRecord]:
        where, args = run_filter_sql(flt, "%s")
        sql = f"{Q.run_select}{where} ORDER BY created_at DESC, id DESC LIMIT %s"
        with self._conn() as conn:
            return [RunRecord(*row) for row in conn.execute(sql, (*args, flt.limit))]

    @_survives_restarts
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

    @_survives_restarts
    def run_history(self, run_id: str) -> list[StateChange]:
        with self._conn() as conn:
            return [StateChange(*row) for row in conn.execute(Q.history_select, (run_id,))]

    # -- steps ---------------------------------------------------------------------------
    def _seq(self, run_id: str) -> int:
        seq = self._seqs.get(run_id)
        if seq is None:
            with self._conn() as conn:
                row = conn.execute("SELECT seq, durability FROM runs WHERE id = %s",
                                   (run_id,)).fetchone()
            if row is None:
                raise RunNotFound(f"no run with id {run_id!r} in {self._where}")
            seq = self._seqs[run_id] = row[0]
            self._levels[run_id] = POSTGRES_SYNCHRONOUS_COMMIT.get(row[1], self._sync)
        return seq

    @_survives_restarts
    def load_steps(self, run_id: str) -> dict[str, StepRecord]:
        with self._conn() as conn:
            rows = conn.execute(Q.step_select, (self._seq(run_id),)).fetchall()
        return {key: step_record(run_id, key, rest) for key, *rest in rows}

    @_survives_restarts
    def get_step(self, run_id: str, key: str) -> StepRecord:
        with self._conn() as conn:
            row = conn.execute(f"{Q.step_select} AND key = %s",
                               (self._seq(run_id), key)).fetchone()
        if row is None:
            raise RunNotFound(f"run {run_id!r} has no recorded step {key!r}")
        return step_record(run_id, key, row[1:])

    @_survives_restarts
    def count_steps(self, run_ids: list[str]) -> dict[str, int]:
        counts = dict.fromkeys(run_ids, 0)
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT runs.id, count(*) FROM steps JOIN runs ON runs.seq = steps.run_seq "
                "WHERE runs.id = ANY(%s) GROUP BY runs.id", (run_ids,)).fetchall()
        counts.update(dict(rows))
        return counts

    @_survives_restarts
    def record_step(self, step: StepRecord, logs: list[LogRecord] | None = None,
                    fence: Fence | None = None) -> None:
        seq = self._seqs.get(step.run_id) or self._seq(step.run_id)
        if fence is not None and not logs:  # one statement: the write checks its fence
            with self._conn(step.run_id) as conn:
                if is_plain_task_done(step):
                    written = conn.execute(Q.fenced_task_done, (
                        seq, step.key, step.name, step.started_at, step.ended_at, step.params,
                        step.result, fence.run_id, fence.epoch)).rowcount
                else:
                    written = conn.execute(Q.fenced_step_upsert, (
                        *_step_values(seq, step), fence.run_id, fence.epoch)).rowcount
                if written != 1:
                    raise lease_lost(conn, POSTGRES, fence)
            return
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

    @_survives_restarts
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

    @_survives_restarts
    def mark_steps_running(self, steps: list[StepRecord], fence: Fence | None = None) -> None:
        values = [_step_values(self._seq(s.run_id), s) for s in steps]
        with self._transaction({s.run_id for s in steps}) as conn, conn.cursor() as cur:
            if fence is not None:
                check_fence(cur, POSTGRES, fence)
            cur.executemany(Q.step_if_absent, values)

    # -- cache ---------------------------------------------------------------------------
    @_survives_restarts
    def read_cache(self, key: str) -> CacheEntry | None:
        with self._conn() as conn:
            row = conn.execute(Q.cache_select, (key,)).fetchone()
        return CacheEntry(*row) if row else None

    @_survives_restarts
    def write_cache(self, entry: CacheEntry) -> None:
        with self._conn(entry.run_id) as conn:
            conn.execute(Q.cache_upsert, (entry.key, entry.result, entry.result_ref,
                                          entry.run_id, entry.step_key, entry.created_at,
                                          entry.expires_at))

    # -- logs ----------------------------------------------------------------------------
    @_survives_restarts
    def append_logs(self, logs: list[LogRecord], fence: Fence | None = None) -> None:
        if not logs:
            return
        with self._transaction({g.run_id for g in logs}) as conn, conn.cursor() as cur:
            if fence is not None:
                check_fence(cur, POSTGRES, fence)
            cur.executemany(Q.log_insert, log_values(logs))

    @_survives_restarts
    def read_logs(self, run_id: str, after_id: int = 0, limit: int = 10_000) -> list[LogRecord]:
        with self._conn() as conn:
            rows = conn.execute(Q.log_select, (run_id, after_id, limit)).fetchall()
        return [LogRecord(*row) for row in rows]

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

    @_survives_restarts
    def _claim_at_once(self, *args: Any) -> list[RunRecord] | None:
        with self._conn(None) as conn:
            return claim_runs_at_once(conn, *args)

    @_survives_restarts
    def _write(self, fn: Any, *args: Any) -> Any:
        with self._transaction() as conn:
            return fn(conn, POSTGRES, *args)

    @_survives_restarts
    def _read(self, fn: Any, *args: Any) -> Any:
        with self._conn() as conn:
            return fn(conn, POSTGRES, *args)


def _sqlalchemy_url(url: str) -> str:
    """The URL for Alembic's SQLAlchemy engine, using the psycopg 3 driver."""
    scheme, rest = url.split("://", 1)
    return f"postgresql+psycopg://{rest}" if scheme in ("postgresql", "postgres") else url


def server_address(url: str) -> str:
    """The ``host:port`` a PostgreSQL URL names (libpq's defaults filled in), for messages.

    >>> server_address("postgresql://app@db.internal/stead")
    'db.internal:5432'
    """
    from psycopg.conninfo import conninfo_to_dict

    try:
        info = conninfo_to_dict(url)
    except Exception:
        return _redacted(url)
    hosts = str(info.get("host") or "localhost").split(",")
    ports = str(info.get("port") or "5432").split(",")
    return ",".join(f"{h}:{ports[i] if i < len(ports) else ports[-1]}"
                    for i, h in enumerate(hosts))


def connect(url: str, wait_s: float) -> Any:
    """One plain connection to `url`, trying again for up to `wait_s` seconds while the server
    cannot be reached; then a StoreError of one line naming the server's host:port."""
    import psycopg

    deadline = time.monotonic() + wait_s
    while True:
        left = max(deadline - time.monotonic(), 0.0)
        try:
            # libpq's connect_timeout is whole seconds, at least 2 (smaller values mean 2)
            return psycopg.connect(url, autocommit=True, connect_timeout=max(2, round(left)))
        except psycopg.OperationalError as exc:
            reason = _reason(exc)
            if reason.startswith("FATAL:") and any(w in reason for w in REFUSALS):
                raise StoreError(
                    f"PostgreSQL at {server_address(url)} refused the connection: "
                    f"{reason[6:].strip()}. Check the user, password and database name in "
                    f"--db / STEAD_DATABASE_URL (database URL: {_redacted(url)}).") from None
            if time.monotonic() + 0.25 > deadline:
                raise StoreError(
                    f"cannot connect to PostgreSQL at {server_address(url)} ({reason}; tried "
                    f"for {wait_s:g} s): start the server, or point --db / STEAD_DATABASE_URL "
                    f"at one that runs (database URL: {_redacted(url)}).") from None
            time.sleep(0.25)


def _reason(exc: Exception) -> str:
    """libpq's message on one line, without its "connection to server at ... failed:"."""
    text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
    reason = text.split("failed: ")[-1] if "failed: " in text else text
    reason = reason.split("\tIs the server running")[0].split(" Is the server running")[0]
    return reason.strip().rstrip(".") or type(exc).__name__


def _redacted(url: str) -> str:
    """The URL without its password, for messages."""
    from stead.store.urls import redacted

    return redacted(url)

"""Reaching PostgreSQL as the store does: a psycopg 3 connection pool, each run's commits at
its durability level (synchronous_commit), the schema checked or migrated on open (under an
advisory lock), and every verb surviving a server restart. `PostgresStore`
(store/postgres.py) builds its verbs on `PostgresConnections`.

Every verb retries for up to STEAD_STORE_RETRY_SECONDS (60 s) when the server cannot be
reached, on a fresh connection (the pool drops broken ones), so a flow outlives a server
restart. The pool gives up a reconnection attempt after RECONNECT_S and makes a new one when
a verb asks again: psycopg_pool's own backoff (1, 2, 4 ... 32 s between attempts) once kept
workers waiting ~25 s after a 60 s outage ended.
Connections are not checked when taken from the pool: that costs a round trip per verb
(1.76x -> 1.15x one INSERT+COMMIT per task, bench/bench.py), and the retries cover it.

    >>> server_address("postgresql://app@db.internal:6432/stead")
    'db.internal:6432'
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
from stead.store.durability import POSTGRES_SYNCHRONOUS_COMMIT, strongest
from stead.store.migrate import check_policy, decide, live_workers, upgrade
from stead.store.sql import POSTGRES

MIGRATION_LOCK = 7_305_001  # pg_advisory_lock key: one process migrates at a time
RETRY_CAP_S = 0.5  # the longest pause between two attempts of a verb during an outage
# How long the pool waits for a connection, and keeps trying to open one, per attempt of a
# verb: the verb's retry loop asks again (a fresh attempt) instead of psycopg_pool's backoff.
RECONNECT_S = 1.0
# The server's answers that waiting will not change (not "the database system is starting up").
REFUSALS = ("does not exist", "authentication", "password", "pg_hba.conf", "permission denied")
OPEN_WAIT_S = 30.0  # how long a service waits for an unreachable server as it opens the store
F = TypeVar("F", bound=Callable[..., Any])


def survives_restarts(method: F) -> F:
    """Retry `method` with backoff while the server cannot be reached (restart, failover)."""

    @functools.wraps(method)
    def retrying(self: PostgresConnections, *args: Any, **kwargs: Any) -> Any:
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


class PostgresConnections:
    """A PostgreSQL database: its pool, per-run commit levels, schema, `_write`/`_read` for the
    verbs whose SQL is shared (store/verbs.py); every method that talks to the server
    survives a restart (`survives_restarts`)."""

    unreachable_at = float("-inf")  # see Store.unreachable_at; set when a verb retries

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

    @survives_restarts
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

    def _seq(self, run_id: str) -> int:
        """The run's row number (steps refer to it), and its durability level, cached."""
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

    # -- the queue, lease, limit, deployment and retention verbs' SQL (store/verbs.py) -----
    @survives_restarts
    def _write(self, fn: Any, *args: Any) -> Any:
        with self._transaction() as conn:
            return fn(conn, POSTGRES, *args)

    @survives_restarts
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

"""The audit log: who changed what, when, from where, and how it ended. SQL both backends
share (conventions in store/leases.py), the `AuditVerbs` mixin and the `AuditLog` protocol.

Rows are written by the server's `AuditRecorder` (server/audit.py) in batches, and by local
commands that change security state (`stead keys create/revoke`). They hold no request bodies
and no secrets. The verbs are not on `base.Store`, so remote processes cannot call them
(store/wire.py): the log is read and pruned where the database is.
"""

from __future__ import annotations

import dataclasses
import getpass
import os
import time
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from stead.errors import ConfigError
from stead.store.sql import Dialect

AUDIT_COLUMNS = ("at", "key_id", "key_name", "role", "address", "method", "action", "target",
                 "outcome", "detail")
OUTCOMES = ("ok", "failed", "denied")  # the outcome classes `AuditFilter.outcome` accepts
PRUNE_BATCH = 5_000  # rows deleted per transaction: a prune never holds the write lock long
MAX_LIMIT = 10_000


@dataclass(slots=True)
class AuditRecord:
    """One state-changing (or refused) request.

    Example:
        >>> AuditRecord(at=1.0, key_id="3f2a9c1e4b5d", key_name="ci", role="admin",
        ...             address="127.0.0.1", method="POST", action="store.cancel_run",
        ...             target="nightly-1", outcome=200).succeeded
        True
    """

    at: float  # when the request arrived (Unix seconds)
    key_id: str | None  # the API key's id; None for the local user or an unknown key
    key_name: str | None  # the key's name, "local" (keyless loopback) or "local:USER" (CLI)
    role: str | None  # the key's role; None when no key was accepted
    address: str | None  # the client's IP address, or "local" for a command on this host
    method: str  # the HTTP method, or "CLI"
    action: str  # "POST /api/v1/runs/x/cancel", "store.set_queue", "keys create"
    target: str | None = None  # the run id, deployment, queue, key ... when known
    outcome: int = 200  # the HTTP status of the answer
    detail: str | None = None  # a short note, e.g. the error's type; never a body or secret
    id: int | None = None  # given by the database, increasing

    @property
    def succeeded(self) -> bool:
        return self.outcome < 400


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """Which audit rows to list, newest first; all given conditions must hold.

    Example:
        >>> AuditFilter(key="ci", outcome="denied", since=time.time() - 3600).limit
        100
    """

    since: float | None = None  # at >= since
    until: float | None = None  # at < until
    key: str | None = None  # the key's id or its name
    action: str | None = None  # a part of the action, case-insensitive ("cancel", "POST /api")
    outcome: str | None = None  # "ok" (< 400), "failed" (>= 400) or "denied" (401, 403)
    target: str | None = None  # exactly this target
    limit: int = 100
    before_id: int | None = None  # only rows older than this id: the cursor of the next page


@runtime_checkable
class AuditLog(Protocol):
    """The audit part of a store (SQLiteStore and PostgresStore have it; HttpStore not)."""

    def record_audit(self, records: list[AuditRecord]) -> None:
        """Append `records` (their `id` is ignored) in one transaction."""

    def list_audit(self, flt: AuditFilter) -> list[AuditRecord]:
        """The rows matching `flt`, newest (highest id) first, at most `flt.limit`."""

    def prune_audit(self, before: float, *, count_only: bool = False) -> int:
        """Delete the rows recorded before `before` (Unix seconds); how many went (or, with
        `count_only`, would go)."""


# -- SQL ----------------------------------------------------------------------------------
def insert_audit(conn: Any, d: Dialect, records: list[AuditRecord]) -> None:
    conn.cursor().executemany(  # a psycopg connection has no executemany of its own
        f"INSERT INTO audit_log ({', '.join(AUDIT_COLUMNS)}) VALUES "
        f"({d.marks(len(AUDIT_COLUMNS))})",
        [tuple(getattr(r, c) for c in AUDIT_COLUMNS) for r in records])


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def select_audit(conn: Any, d: Dialect, flt: AuditFilter) -> list[AuditRecord]:
    where, args = [], []  # type: ignore[var-annotated]
    for clause, value in ((f"at >= {d.p}", flt.since), (f"at < {d.p}", flt.until),
                          (f"id < {d.p}", flt.before_id), (f"target = {d.p}", flt.target)):
        if value is not None:
            where.append(clause)
            args.append(value)
    if flt.key is not None:
        where.append(f"(key_id = {d.p} OR key_name = {d.p})")
        args += [flt.key, flt.key]
    if flt.action is not None:
        where.append(f"lower(action) LIKE {d.p} ESCAPE '\\'")
        args.append(_like(flt.action))
    if flt.outcome is not None:
        where.append(_outcome_clause(flt.outcome))
    sql = (f"SELECT id, {', '.join(AUDIT_COLUMNS)} FROM audit_log"
           + (" WHERE " + " AND ".join(where) if where else "")
           + f" ORDER BY id DESC LIMIT {d.p}")
    rows = conn.execute(sql, (*args, max(1, min(flt.limit, MAX_LIMIT)))).fetchall()
    return [AuditRecord(*row[1:], id=row[0]) for row in rows]


def _outcome_clause(outcome: str) -> str:
    clauses = {"ok": "outcome < 400", "failed": "outcome >= 400",
               "denied": "outcome IN (401, 403)"}
    if outcome not in clauses:
        raise ConfigError(f"unknown audit outcome {outcome!r}; use one of {', '.join(OUTCOMES)}")
    return clauses[outcome]


def delete_audit(conn: Any, d: Dialect, before: float, limit: int) -> int:
    ids = [row[0] for row in conn.execute(
        f"SELECT id FROM audit_log WHERE at < {d.p} ORDER BY id LIMIT {d.p}",
        (before, limit)).fetchall()]
    if not ids:
        return 0
    conn.execute(f"DELETE FROM audit_log WHERE id IN ({d.marks(len(ids))})", ids)
    return len(ids)


def count_audit_before(conn: Any, d: Dialect, before: float) -> int:
    return int(conn.execute(f"SELECT count(*) FROM audit_log WHERE at < {d.p}",
                            (before,)).fetchone()[0])


class AuditVerbs:
    """The audit verbs over a backend's `_write`/`_read` (see store/verbs.py)."""

    def _write(self, fn: Any, *args: Any) -> Any:
        raise NotImplementedError

    def _read(self, fn: Any, *args: Any) -> Any:
        raise NotImplementedError

    def record_audit(self, records: list[AuditRecord]) -> None:
        if records:
            self._write(insert_audit, records)

    def list_audit(self, flt: AuditFilter) -> list[AuditRecord]:
        return self._read(select_audit, flt)  # type: ignore[no-any-return]

    def prune_audit(self, before: float, *, count_only: bool = False) -> int:
        if count_only:
            return self._read(count_audit_before, before)  # type: ignore[no-any-return]
        total = 0
        while True:
            deleted: int = self._write(delete_audit, before, PRUNE_BATCH)
            total += deleted
            if deleted < PRUNE_BATCH:
                return total


def audit_log(store: Any) -> AuditLog:
    """`store` as an `AuditLog`; a ConfigError when it keeps none (a remote store).

    Example:
        >>> audit_log(store_for()).list_audit(AuditFilter(limit=10))  # doctest: +SKIP
    """
    if not isinstance(store, AuditLog):
        raise ConfigError(f"{getattr(store, 'url', store)} keeps no audit log here: the log "
                          "is in the server's database; read it where that database is, or "
                          "with GET /api/v1/audit and an admin key")
    return store


def local_user() -> str:
    """"local:NAME" for the user running this process (who a local CLI action was by)."""
    try:
        return f"local:{getpass.getuser()}"
    except (OSError, KeyError):
        return f"local:uid{os.getuid()}"


def record_local_action(store: Any, action: str, target: str | None, outcome: int = 200,
                        detail: str | None = None, now: float | None = None) -> None:
    """Record an administrative action done on this host without the server (e.g.
    `stead keys create`): key_id None, key_name "local:USER", address "local".

    Example:
        >>> record_local_action(store, "keys revoke", "3f2a9c1e4b5d")  # doctest: +SKIP
    """
    record = AuditRecord(at=time.time() if now is None else now, key_id=None,
                         key_name=local_user(), role="admin", address="local", method="CLI",
                         action=action, target=target, outcome=outcome, detail=detail)
    audit_log(store).record_audit([record])


def as_dict(record: AuditRecord) -> dict[str, Any]:
    """The record as plain JSON-ready data (`stead audit ls --json`)."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


DAY = 86_400.0


def prune_old_audit(store: Any, now: float, days: float, *, count_only: bool = False
                    ) -> int | None:
    """Delete (or, with `count_only`, count) the audit rows older than `days` days (the
    setting STEAD_AUDIT_RETENTION_DAYS); None when `days` is 0 (kept forever) or `store` keeps
    no audit log (a remote store).

    Example:
        >>> prune_old_audit(store, time.time(), 90)  # doctest: +SKIP
        12
    """
    if days <= 0 or not isinstance(store, AuditLog):
        return None
    return store.prune_audit(now - days * DAY, count_only=count_only)

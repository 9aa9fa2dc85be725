"""Queues, claims, leases, recovery and workers: SQL both backends share.

Each function runs inside the caller's write transaction on `conn` (an sqlite3 or psycopg
connection: both have `execute(...).fetchall()` and `rowcount`). The dialect supplies the
locking: SQLite holds the database's write lock for the whole transaction (BEGIN
IMMEDIATE), PostgreSQL locks rows (FOR UPDATE, SKIP LOCKED for claims).

Lease times are the database's clock (`Dialect.clock`), read in the statement that writes or
compares them: a worker whose clock is ahead or behind, or whose heartbeat was retried
through an outage, neither steals nor loses leases. The `now` arguments only stamp what a
person reads (history, started_at, a worker's last heartbeat), in the caller's clock.
"""

from __future__ import annotations

import json
from typing import Any

from stead.store.base import Fence, QueueInfo, RunRecord, WorkerRecord
from stead.store.sql import LIVE_STATES, RUN_COLUMNS, Dialect

_RUN_SELECT = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"
_LIVE = "state IN ('Running', 'Retrying')"
WORKER_COLUMNS = ("id, name, host, pid, queues, concurrency, state, started_at, heartbeat_at, "
                  "running, key_id, lease_s")


def _history(conn: Any, d: Dialect, rows: list[tuple[str, str, float, str | None]]) -> None:
    for row in rows:
        conn.execute(f"INSERT INTO run_history (run_id, state, at, message) VALUES "
                     f"({d.marks(4)})", row)


# -- queues -------------------------------------------------------------------------------
def set_queue(conn: Any, d: Dialect, name: str, concurrency_limit: int | None) -> None:
    conn.execute(f"INSERT INTO queues (name, concurrency_limit) VALUES ({d.marks(2)}) "
                 "ON CONFLICT (name) DO UPDATE SET concurrency_limit = "
                 "excluded.concurrency_limit", (name, concurrency_limit))


def list_queues(conn: Any, d: Dialect) -> list[QueueInfo]:
    queues = {name: QueueInfo(name, limit)
              for name, limit in conn.execute("SELECT name, concurrency_limit FROM queues")}
    rows = conn.execute(
        "SELECT queue, state, count(*), min(created_at) FROM runs WHERE queue IS NOT NULL "
        "AND state IN ('Pending', 'Late', 'Running', 'Retrying') GROUP BY queue, state").fetchall()
    for name, state, count, oldest in rows:
        info = queues.setdefault(name, QueueInfo(name, None))
        if state in ("Pending", "Late"):
            info.pending += count
            if info.oldest_pending_at is None or oldest < info.oldest_pending_at:
                info.oldest_pending_at = oldest
        else:
            info.running += count
    for (name,) in conn.execute("SELECT DISTINCT queue FROM runs WHERE queue IS NOT NULL"):
        queues.setdefault(name, QueueInfo(name, None))
    return [queues[name] for name in sorted(queues)]


# -- claims -------------------------------------------------------------------------------
def claim_runs(conn: Any, d: Dialect, queues: list[str], worker: WorkerRecord, owner: str,
               n: int, now: float, lease_s: float,
               namespaces: list[str] | None = None) -> list[RunRecord]:
    """See Store.claim_runs. Runs inside one write transaction."""
    if n <= 0 or not queues:
        return []
    p, qs = d.p, d.marks(len(queues))
    # Limited queues: lock their rows so concurrent claimers count running runs one at a time.
    limits = dict(conn.execute(
        f"SELECT name, concurrency_limit FROM queues WHERE name IN ({qs}) AND "
        f"concurrency_limit IS NOT NULL ORDER BY name{d.for_update}", queues).fetchall())
    room: dict[str, int] = {}
    if limits:
        running = dict(conn.execute(
            f"SELECT queue, count(*) FROM runs WHERE queue IN ({d.marks(len(limits))}) "
            f"AND {_LIVE} GROUP BY queue", list(limits)).fetchall())
        room = {q: max(0, limit - running.get(q, 0)) for q, limit in limits.items()}
    # The best candidates of each queue (one index range scan each, see runs_pending), then
    # the best n of those: a full limited queue never hides the runs of another queue.
    candidates: list[tuple[int, int, float]] = []
    scope = "" if namespaces is None else f" AND namespace IN ({d.marks(len(namespaces))})"
    for queue in dict.fromkeys(queues):
        take = min(n, room.get(queue, n))
        if take > 0 and namespaces != []:
            candidates += conn.execute(
                "SELECT priority, created_at, seq FROM runs WHERE state IN ('Pending', 'Late') "
                f"AND queue = {p}{scope} ORDER BY priority DESC, created_at, seq LIMIT {p}"
                f"{d.skip_locked}", (queue, *(namespaces or ()), take)).fetchall()
    candidates.sort(key=lambda c: (-c[0], c[1], c[2]))
    chosen = [seq for _, _, seq in candidates[:n]]
    if not chosen:
        return []
    # The error stays: a failed run handed back by hand names in it the failure that ended
    # it, the step its executor runs again (core/takeover.py rerun_after); the executor's next
    # transition clears it.
    rows = conn.execute(
        f"UPDATE runs SET state = 'Running', lease_epoch = lease_epoch + 1, worker_id = {p}, "
        f"lease_expires_at = {d.clock} + {p}, owner = {p}, started_at = {p}, ended_at = NULL, "
        "resumes = CASE WHEN attempts > 0 THEN resumes + 1 ELSE resumes END, "
        f"attempts = attempts + 1 WHERE seq IN ({d.marks(len(chosen))}) "
        f"RETURNING {', '.join(RUN_COLUMNS)}",
        (worker.id, lease_s, owner, now, *chosen)).fetchall()
    claimed = [RunRecord(*row) for row in rows]
    _history(conn, d, [(r.id, "Running", now, f"claimed by worker {worker.name} on "
                        f"{worker.host}") for r in claimed])
    claimed.sort(key=lambda r: (-r.priority, r.created_at))
    return claimed


def claim_runs_at_once(conn: Any, queues: list[str], worker: WorkerRecord, owner: str,
                       n: int, now: float, lease_s: float,
                       namespaces: list[str] | None) -> list[RunRecord] | None:
    """PostgreSQL only: `claim_runs` in one statement (autocommit), or None when one of the
    queues has a concurrency limit (then `claim_runs` counts its running runs under the
    queue's lock, which needs statements of their own: a statement sees the rows committed
    before it started, not those committed while it waited for the lock).

    The candidates, the claim and its history row are one round trip instead of six: this is
    most of a worker's cost per run on a busy queue (bench/workers.py)."""
    if n <= 0 or not queues or namespaces == []:
        return []
    p, scope = "%s", ""
    if namespaces is not None:
        scope = f" AND namespace IN ({', '.join([p] * len(namespaces))})"
    queues = list(dict.fromkeys(queues))
    # The best n of each queue (one index range scan each), then the best n of those.
    candidates = (
        f"SELECT c.* FROM unnest({p}::text[]) AS q(name) CROSS JOIN LATERAL ("
        "SELECT priority, created_at, seq FROM runs WHERE state IN ('Pending', 'Late') "
        f"AND queue = q.name{scope} ORDER BY priority DESC, created_at, seq LIMIT {p} "
        "FOR UPDATE SKIP LOCKED) AS c")
    args = [queues, *(namespaces or ()), n]
    columns = ", ".join(RUN_COLUMNS)
    message = f"claimed by worker {worker.name} on {worker.host}"
    rows = conn.execute(
        f"WITH limited AS (SELECT 1 FROM queues WHERE name = ANY({p}) AND "
        "concurrency_limit IS NOT NULL LIMIT 1), "
        f"picked AS (SELECT seq FROM ({candidates}) AS candidates "
        f"WHERE NOT EXISTS (SELECT 1 FROM limited) ORDER BY priority DESC, created_at, seq "
        f"LIMIT {p}), "
        f"claimed AS (UPDATE runs SET state = 'Running', lease_epoch = lease_epoch + 1, "
        f"worker_id = {p}, lease_expires_at = extract(epoch from statement_timestamp())::float8"
        f" + {p}, owner = {p}, started_at = {p}, ended_at = NULL, "
        "resumes = CASE WHEN attempts > 0 THEN resumes + 1 ELSE resumes END, "
        "attempts = attempts + 1 WHERE seq IN (SELECT seq FROM picked) "
        f"RETURNING {columns}), "
        "history AS (INSERT INTO run_history (run_id, state, at, message) "
        f"SELECT id, 'Running', {p}, {p} FROM claimed) "
        f"SELECT false, {columns} FROM claimed UNION ALL "
        f"SELECT true, {', '.join(['NULL'] * len(RUN_COLUMNS))} FROM limited",
        [queues, *args, n, worker.id, lease_s, owner, now, now, message]).fetchall()
    if any(row[0] for row in rows):
        return None
    claimed = [RunRecord(*row[1:]) for row in rows]
    claimed.sort(key=lambda r: (-r.priority, r.created_at))
    return claimed


# -- leases -------------------------------------------------------------------------------
def heartbeat(conn: Any, d: Dialect, worker: WorkerRecord, held: list[Fence], now: float,
              lease_s: float) -> list[Fence]:
    p = d.p
    worker.heartbeat_at = now
    updated = conn.execute(
        f"UPDATE workers SET heartbeat_at = {p}, running = {p}, state = {p} WHERE id = {p}",
        (now, worker.running, worker.state, worker.id)).rowcount
    if not updated:  # removed (or never registered): report again
        register_worker(conn, d, worker)
    if not held:
        return []
    conn.execute(f"UPDATE runs SET lease_expires_at = {d.clock} + {p} WHERE worker_id = {p} "
                 f"AND {_LIVE}", (lease_s, worker.id))
    # Held = the epoch is still ours, whatever the state: a run that just finished (its
    # child's "done" not read yet) is not lost.
    rows = conn.execute(f"SELECT id, lease_epoch FROM runs WHERE id IN "
                        f"({d.marks(len(held))})", [f.run_id for f in held]).fetchall()
    still = set(rows)
    return [f for f in held if (f.run_id, f.epoch) in still]


def expired_runs(conn: Any, d: Dialect, limit: int) -> list[RunRecord]:
    rows = conn.execute(
        f"{_RUN_SELECT} WHERE lease_expires_at IS NOT NULL AND {_LIVE} AND "
        f"lease_expires_at < {d.clock} ORDER BY lease_expires_at LIMIT {d.p}", (limit,))
    return [RunRecord(*row) for row in rows.fetchall()]


def recover_run(conn: Any, d: Dialect, run_id: str, epoch: int, now: float, reason: str,
                count: bool) -> str | None:
    """See Store.recover_run. Runs inside one write transaction."""
    p = d.p
    row = conn.execute(f"SELECT state, lease_epoch, recoveries, max_recoveries FROM runs "
                       f"WHERE id = {p}{d.for_update}", (run_id,)).fetchone()
    if row is None or row[1] != epoch or row[0] not in LIVE_STATES:
        return None
    _, _, recoveries, max_recoveries = row
    conn.execute(f"UPDATE runs SET state = 'Crashed', lease_epoch = lease_epoch + 1, "
                 f"lease_expires_at = NULL, worker_id = NULL, ended_at = {p} WHERE id = {p}",
                 (now, run_id))
    history = [(run_id, "Crashed", now, reason)]
    if not count or recoveries < max_recoveries:
        note = ("handed back to its queue" if not count else
                f"requeued (recovery {recoveries + 1} of {max_recoveries})")
        history.append((run_id, "Pending", now, note))
        conn.execute(f"UPDATE runs SET state = 'Pending', ended_at = NULL, "
                     f"recoveries = recoveries + {p} WHERE id = {p}", (int(count), run_id))
    else:
        error = {"type": "stead.errors.ExecutorLost",
                 "message": f"{reason}; not requeued: recovered {recoveries} times already "
                            f"(max_recoveries={max_recoveries}). Resume it with "
                            f"`stead runs resume {run_id}`.",
                 "traceback": ""}
        conn.execute(f"UPDATE runs SET error = {p} WHERE id = {p}", (json.dumps(error), run_id))
    _history(conn, d, history)
    return history[-1][1]


# -- workers ------------------------------------------------------------------------------
def register_worker(conn: Any, d: Dialect, w: WorkerRecord) -> None:
    # A worker's row stays with the API key that registered it: another key re-registering
    # the same id changes nothing (its leases would otherwise pass for that key's).
    conn.execute(
        f"INSERT INTO workers ({WORKER_COLUMNS}) VALUES ({d.marks(12)}) ON CONFLICT (id) DO "
        "UPDATE SET key_id = excluded.key_id, name = excluded.name, host = excluded.host, "
        "pid = excluded.pid, "
        "queues = excluded.queues, concurrency = excluded.concurrency, state = excluded.state, "
        "started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, "
        "running = excluded.running, lease_s = excluded.lease_s "
        "WHERE workers.key_id IS NULL OR excluded.key_id IS NULL "
        "OR workers.key_id = excluded.key_id",
        (w.id, w.name, w.host, w.pid, w.queues, w.concurrency, w.state, w.started_at,
         w.heartbeat_at, w.running, w.key_id, w.lease_s))


def list_workers(conn: Any, d: Dialect) -> list[WorkerRecord]:
    rows = conn.execute(f"SELECT {WORKER_COLUMNS} FROM workers ORDER BY heartbeat_at DESC")
    return [WorkerRecord(*row) for row in rows.fetchall()]

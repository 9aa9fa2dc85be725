"""Cancellation: SQL both backends share (see store/leases.py for the conventions).

Cancelling a run that waits (Scheduled, Pending, Late), or a parked one (Paused with no
lease and its wait parked: no process holds it, store/waits.py), cancels it at once: it
leaves its queue, and its wait is deleted. A run being executed (Running, Retrying, Paused
in its process) becomes Cancelling; its worker sees that, stops the process, and calls
`finish_cancel`, which records Cancelled, bumps the lease epoch (so the stopped executor
can write nothing more) and frees the run's tag slots. Child runs ("ROOT:KEY...") follow
their root.
"""

from __future__ import annotations

from typing import Any

from stead.errors import RunConflict, RunNotFound
from stead.store.sql import Dialect

WAITING = ("Scheduled", "Pending", "Late")
EXECUTING = ("Running", "Retrying", "Paused")


def _family(conn: Any, d: Dialect, run_id: str) -> list[tuple[str, str]]:
    """The run and its child runs, (id, state), the root first; a parked run's state is
    "parked" (Paused with no lease, and its wait parked)."""
    rows = conn.execute(f"SELECT id, state, lease_expires_at FROM runs WHERE id = {d.p} OR "
                        f"(id LIKE {d.p} AND substr(id, 1, {d.p}) = {d.p}) ORDER BY id"
                        f"{d.for_update}",
                        (run_id, f"{run_id}:%", len(run_id) + 1, f"{run_id}:")).fetchall()
    idle = [rid for rid, st, lease in rows if st == "Paused" and lease is None]
    parked = set()
    for start in range(0, len(idle), 500):  # (a direct call waiting in its process is not)
        chunk = idle[start:start + 500]
        parked.update(r[0] for r in conn.execute(
            f"SELECT run_id FROM waits WHERE parked = TRUE AND run_id IN "
            f"({d.marks(len(chunk))})", chunk).fetchall())
    family = [(rid, "parked" if rid in parked else st) for rid, st, _ in rows]
    return sorted(family, key=lambda r: (r[0] != run_id, r[0]))


def _drop_waits(conn: Any, d: Dialect, run_ids: list[str]) -> None:
    for start in range(0, len(run_ids), 500):
        chunk = run_ids[start:start + 500]
        conn.execute(f"DELETE FROM waits WHERE run_id IN ({d.marks(len(chunk))})", chunk)


def _move(conn: Any, d: Dialect, run_id: str, state: str, now: float, message: str) -> None:
    ended = ", ended_at = " + d.p if state == "Cancelled" else ""
    args: tuple[Any, ...] = (state, now, run_id) if ended else (state, run_id)
    conn.execute(f"UPDATE runs SET state = {d.p}{ended} WHERE id = {d.p}", args)
    conn.execute(f"INSERT INTO run_history (run_id, state, at, message) VALUES ({d.marks(4)})",
                 (run_id, state, now, message))


def cancel_run(conn: Any, d: Dialect, run_id: str, now: float, reason: str) -> str:
    family = _family(conn, d, run_id)
    if not family or family[0][0] != run_id:
        raise RunNotFound(f"no run with id {run_id!r}")
    state = family[0][1]
    if state in ("Cancelling", "Cancelled"):
        return state
    if state not in (*WAITING, *EXECUTING, "parked"):
        raise RunConflict(f"run {run_id} is {state}: only waiting or running runs can be "
                          "cancelled")
    for rid, st in family:
        if st in WAITING or st == "parked":
            _move(conn, d, rid, "Cancelled", now, reason)
        elif st in EXECUTING:
            _move(conn, d, rid, "Cancelling", now, reason)
    _drop_waits(conn, d, [rid for rid, st in family if st in WAITING or st == "parked"])
    return "Cancelled" if state in WAITING or state == "parked" else "Cancelling"


def runs_to_cancel(conn: Any, d: Dialect, worker_id: str) -> list[tuple[str, int]]:
    rows = conn.execute(f"SELECT id, lease_epoch FROM runs WHERE worker_id = {d.p} AND "
                        "state = 'Cancelling'", (worker_id,)).fetchall()
    return [(r[0], r[1]) for r in rows]


def finish_cancel(conn: Any, d: Dialect, run_id: str, now: float, message: str) -> bool:
    family = _family(conn, d, run_id)
    if not family or family[0][1] != "Cancelling":
        return False
    conn.execute(f"UPDATE runs SET lease_epoch = lease_epoch + 1, lease_expires_at = NULL "
                 f"WHERE id = {d.p}", (run_id,))
    for rid, st in family:
        if st in ("Cancelling", "parked", *EXECUTING, *WAITING):
            _move(conn, d, rid, "Cancelled", now, message)
    _drop_waits(conn, d, [rid for rid, _ in family])
    conn.execute(f"DELETE FROM slots WHERE holder LIKE {d.p} OR holder LIKE {d.p}",
                 (f"{run_id}/%", f"{run_id}:%"))
    return True

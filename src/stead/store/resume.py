"""Resuming an enqueued run by hand: SQL both backends share (see store/leases.py for the
conventions).

An enqueued run is executed by workers, under a lease. `stead runs resume` of such a run
never executes it in the calling process beside a worker that may still (or again) hold
it: it hands the run back to its queue. The hand-back is a compare-and-set on the lease
epoch the caller read, and bumps it, so the executor that held the run (a dead worker's, or
one paused past its lease) can write nothing more, and a reaper that read the same epoch
recovers nothing.
"""

from __future__ import annotations

from typing import Any

from stead.errors import RunConflict, RunNotFound
from stead.store.sql import LIVE_STATES, Dialect

RESUMABLE = ("Crashed", "Failed")


def requeue_run(conn: Any, d: Dialect, run_id: str, epoch: int, now: float,
                reason: str, executor_gone: bool) -> str:
    """See Store.requeue_run. Runs inside one write transaction."""
    p = d.p
    row = conn.execute(f"SELECT state, lease_epoch, lease_expires_at - {d.clock}, queue, "
                       f"worker_id FROM runs WHERE id = {p}{d.for_update}", (run_id,)).fetchone()
    if row is None:
        raise RunNotFound(f"no run with id {run_id!r}")
    state, current, left, queue, worker = row  # left: the lease's seconds, on the DB's clock
    if queue is None:
        raise RunConflict(f"run {run_id} was not enqueued: resume it where it runs "
                          "(`stead runs resume` executes it in the calling process)")
    if current != epoch:
        raise RunConflict(f"run {run_id} changed meanwhile (another process resumed, claimed "
                          "or recovered it): look at it again with `stead runs show`")
    if state in LIVE_STATES and left is not None and left >= 0 and not executor_gone:
        raise RunConflict(
            f"run {run_id} is {state} on worker {worker}, whose lease holds for another "
            f"{left:.0f} s: it is being executed. Wait for it, or cancel it with "
            f"`stead runs cancel {run_id}`; a run whose worker died is recovered by the "
            "others once its lease lapses.")
    if state not in (*RESUMABLE, *LIVE_STATES):
        hint = ("it waits in its queue already" if state in ("Pending", "Late", "Scheduled")
                else "only crashed, failed or lost runs can be resumed")
        raise RunConflict(f"run {run_id} is {state}: {hint}")
    history = []
    if state in LIVE_STATES:  # its worker is lost (the lease lapsed): record that first
        lost = "its executor is gone" if executor_gone else "its lease had lapsed"
        history.append((run_id, "Crashed", now, f"{reason}: {lost}"))
    history.append((run_id, "Pending", now, f"{reason}: handed back to queue {queue!r}"))
    # The error stays until a worker resumes the run: it says which failure ended it, the
    # one step that runs again (core/steps.py, recorded failures).
    conn.execute(f"UPDATE runs SET state = 'Pending', lease_epoch = lease_epoch + 1, "
                 f"lease_expires_at = NULL, worker_id = NULL, ended_at = NULL WHERE id = {p}",
                 (run_id,))
    for entry in history:
        conn.execute(f"INSERT INTO run_history (run_id, state, at, message) VALUES "
                     f"({d.marks(4)})", entry)
    return "Pending"

"""The queues-and-leases part of the store interface: queues, claims, heartbeats, lease
expiry and recovery, workers, and cancellation, and the records they carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from stead.store.parts.runs import Fence, RunRecord


@dataclass(slots=True)
class WorkerRecord:
    """A worker process as it reports itself (see `stead workers ls`)."""

    id: str
    name: str
    host: str
    pid: int
    queues: str  # JSON list of queue names
    concurrency: int
    state: str  # "running", "draining" or "stopped"
    started_at: float
    heartbeat_at: float
    running: int = 0  # runs it executes now
    key_id: str | None = None  # the API key it registered with (set by the server)
    lease_s: float | None = None  # its own lease (`--lease`): silent longer = lost

    def is_lost(self, now: float, default_lease_s: float) -> bool:
        """Whether a worker that has not stopped went silent for longer than its lease.

        >>> WorkerRecord("w", "w", "h", 1, "[]", 1, "running", 0.0, 10.0, lease_s=2.0
        ...              ).is_lost(now=13.0, default_lease_s=30.0)
        True
        """
        lease = self.lease_s if self.lease_s is not None else default_lease_s
        return self.state != "stopped" and now - self.heartbeat_at > lease


@dataclass(slots=True)
class QueueInfo:
    """A queue, its limit, and how many runs wait in it and run from it."""

    name: str
    concurrency_limit: int | None
    pending: int = 0
    running: int = 0
    oldest_pending_at: float | None = None


class QueueStore(Protocol):
    """Queues and leases: what workers, the reaper and cancellation need."""

    def set_queue(self, name: str, concurrency_limit: int | None) -> None:
        """Create the queue or change its limit (None: unlimited)."""
        ...

    def list_queues(self) -> list[QueueInfo]:
        """Every queue (declared, or named by a run) with its counts, by name."""
        ...

    def claim_runs(self, queues: list[str], worker: WorkerRecord, owner: str, n: int,
                   now: float, lease_s: float, namespaces: list[str] | None = None
                   ) -> list[RunRecord]:
        """Take up to `n` Pending runs from `queues` (highest priority, then oldest first),
        within each queue's concurrency limit, for `worker`: each moves to Running with its
        lease epoch bumped, `worker_id` set and a lease of `lease_s` seconds on the database's
        clock; `now` (the caller's clock) stamps started_at and the history. Concurrent
        claimers never take the same run (SKIP LOCKED on PostgreSQL, the write lock on SQLite).
        With `namespaces`, only runs of those namespaces are taken.
        """
        ...

    def heartbeat(self, worker: WorkerRecord, held: list[Fence], now: float,
                  lease_s: float) -> list[Fence]:
        """Record `worker` alive (heartbeat_at = `now`, the caller's clock) and extend the
        leases of its runs to `lease_s` seconds from this write on the database's clock;
        return the fences in `held` that still hold (a missing one was recovered elsewhere)."""
        ...

    def expired_runs(self, limit: int = 100) -> list[RunRecord]:
        """Leased live runs whose lease ran out (by the database's clock): their executor
        stopped heartbeating. Oldest expiry first."""
        ...

    def recover_run(self, run_id: str, epoch: int, now: float, reason: str, *,
                    count: bool = True) -> str | None:
        """Take a run away from the executor holding `epoch`: bump the epoch (fencing that
        executor off), record Crashed with `reason`, and requeue it as Pending unless it was
        already recovered max_recoveries times (`count=False`: a hand-back, not counted).
        Returns the run's new state, or None if the epoch no longer matched (nothing done)."""
        ...

    def register_worker(self, worker: WorkerRecord) -> None:
        """Insert or replace the worker's row."""
        ...

    def list_workers(self) -> list[WorkerRecord]:
        """Every worker that has registered, most recent heartbeat first."""
        ...

    # -- cancellation --------------------------------------------------------------------
    def cancel_run(self, run_id: str, now: float, reason: str) -> str:
        """Cancel a run and its child runs. A waiting run (Scheduled, Pending, Late) is
        Cancelled at once; an executing one becomes Cancelling until its worker stops it
        (`finish_cancel`). Returns the run's new state; RunConflict if it already ended."""
        ...

    def runs_to_cancel(self, worker_id: str) -> list[tuple[str, int]]:
        """(run id, lease epoch) of the Cancelling runs leased to this worker."""
        ...

    def finish_cancel(self, run_id: str, now: float, message: str) -> bool:
        """Record a Cancelling run (and its children) Cancelled once its process was stopped:
        bumps the lease epoch (fencing the stopped executor) and frees its tag slots.
        False if the run was not Cancelling."""
        ...

    def requeue_run(self, run_id: str, epoch: int, now: float, reason: str, *,
                    executor_gone: bool = False) -> str:
        """Hand an enqueued run that crashed, failed or lost its worker (lease lapsed, or
        `executor_gone`: the caller saw its process is dead) back to its queue, for a worker
        to resume: a compare-and-set on `epoch` that bumps it, so its last executor is fenced
        off. Returns "Pending"; RunConflict if the epoch changed, the run is still leased,
        waiting, finished, or was never enqueued."""
        ...

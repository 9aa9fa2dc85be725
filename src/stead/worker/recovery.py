"""Recovering runs whose executor is gone: the lease reaper, and start-up recovery.

A leased run whose lease ran out (its worker stopped heartbeating: killed, host lost, paused)
is marked Crashed with its lease epoch bumped, which fences the old executor off, and is
requeued as Pending for any worker to resume from its checkpoints, up to the run's
max_recoveries. Every worker reaps; `recover_run` is a compare-and-set on the epoch, so two
reapers never recover the same run twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from stead.core import console
from stead.core.process import describe_owner, owner_is_alive
from stead.errors import StoreError
from stead.store.base import RunFilter, RunRecord, Store
from stead.worker.crash_hooks import start_crash_hooks


class Reaper:
    """`reap`, but never right after an outage of the store seen from here.

    While the database was unreachable no worker could heartbeat, so every lease may have
    lapsed. A reaper that was cut off too (a call raised StoreError, retried, or was slow)
    waits until it has had `lease_s` seconds of healthy connectivity before it reaps again:
    live workers, which heartbeat as soon as the store answers, renew their leases first.
    `clock` is a monotonic clock (injected by tests)."""

    def __init__(self, store: Store, lease_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.lease_s = lease_s
        self.clock = clock
        self._outage_at = float("-inf")
        self._store_outage = store.unreachable_at  # changes when one of its calls retries

    def note_outage(self) -> None:
        """The store could not be reached just now (a call raised StoreError)."""
        self._outage_at = self.clock()

    def waiting(self) -> float:
        """How many more seconds of healthy connectivity before this reaper reaps (0: none)."""
        if self.store.unreachable_at != self._store_outage:
            self._store_outage = self.store.unreachable_at
            self.note_outage()
        return max(0.0, self._outage_at + self.lease_s - self.clock())

    def reap(self, now: float, limit: int = 100) -> int:
        """Recover the runs whose lease lapsed, unless within the grace after an outage."""
        if self.waiting() > 0:
            return 0
        started = self.clock()
        try:
            runs = self.store.expired_runs(limit)
        except StoreError:
            self.note_outage()
            raise
        if self.clock() - started > self.lease_s / 3 or self.waiting() > 0:
            # The call retried through an outage (here or on the server's side) or waited
            # that long: other workers may not have heartbeated either.
            self.note_outage()
            return 0
        return _recover(self.store, runs, now)


def reap(store: Store, now: float, limit: int = 100) -> int:
    """Recover every run whose lease lapsed (on the database's clock); return how many were
    recovered. `now` stamps their history."""
    return _recover(store, store.expired_runs(limit), now)


def _recover(store: Store, runs: list[RunRecord], now: float) -> int:
    recovered = []
    for run in runs:
        reason = f"lease expired: {describe_owner(run.owner)} stopped heartbeating"
        state = store.recover_run(run.id, run.lease_epoch, now, reason)
        if state is not None:
            recovered.append(run.id)
            console.say(console.run_label(run.flow_name, run.id),
                        f"Flow '{run.flow_name}' Crashed ({reason}); now {state}")
    start_crash_hooks(store, recovered)  # we recorded these crashes: their hooks are ours
    return len(recovered)


def recover_local_orphans(store: Store, now: float) -> int:
    """At start-up: recover leased runs whose worker ran on this host and is gone, without
    waiting for their leases to lapse."""
    recovered = []
    live = store.list_runs(RunFilter(state=("Running", "Retrying"), limit=10_000))
    for run in live:
        if run.worker_id is None or owner_is_alive(run.owner) is not False:
            continue  # not leased, alive, or on another host (its lease decides)
        state = store.recover_run(run.id, run.lease_epoch, now,
                                  f"{describe_owner(run.owner)} is gone (found at a worker's "
                                  "start-up)")
        if state is not None:
            recovered.append(run.id)
    start_crash_hooks(store, recovered)
    return len(recovered)


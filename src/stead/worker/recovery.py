"""Recovering runs whose executor is gone: the lease reaper, and start-up recovery.

A leased run whose lease ran out (its worker stopped heartbeating: killed, host lost, paused)
is marked Crashed with its lease epoch bumped, which fences the old executor off, and is
requeued as Pending for any worker to resume from its checkpoints, up to the run's
max_recoveries. Every worker reaps; `recover_run` is a compare-and-set on the epoch, so two
reapers never recover the same run twice.
"""

from __future__ import annotations

from stead.core import console
from stead.core.process import describe_owner, owner_is_alive
from stead.store.base import RunFilter, Store


def reap(store: Store, now: float, limit: int = 100) -> int:
    """Recover every run whose lease lapsed before `now`; return how many were recovered."""
    recovered = 0
    for run in store.expired_runs(limit):
        reason = f"lease expired: {describe_owner(run.owner)} stopped heartbeating"
        state = store.recover_run(run.id, run.lease_epoch, now, reason)
        if state is not None:
            recovered += 1
            console.say(console.run_label(run.flow_name, run.id),
                        f"Flow '{run.flow_name}' Crashed ({reason}); now {state}")
    return recovered


def recover_local_orphans(store: Store, now: float) -> int:
    """At start-up: recover leased runs whose worker ran on this host and is gone, without
    waiting for their leases to lapse."""
    recovered = 0
    live = store.list_runs(RunFilter(state=("Running", "Retrying"), limit=10_000))
    for run in live:
        if run.worker_id is None or owner_is_alive(run.owner) is not False:
            continue  # not leased, alive, or on another host (its lease decides)
        state = store.recover_run(run.id, run.lease_epoch, now,
                                  f"{describe_owner(run.owner)} is gone (found at a worker's "
                                  "start-up)")
        if state is not None:
            recovered += 1
    return recovered


"""The retention part of the store interface: deleting old finished runs, and the record of
what a prune deleted."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(slots=True)
class PruneResult:
    """What `Store.prune_runs` deleted (or `Store.count_prunable` would delete)."""

    runs: int = 0  # top-level runs and all their child runs
    steps: int = 0
    logs: int = 0  # log lines
    cache: int = 0  # cache entries the runs produced
    result_refs: list[str] = field(default_factory=list)  # result files (see the verbs)


# The states of runs retention may delete: finished ones. A live run (Pending, Running,
# Retrying, Paused, Scheduled, Late, Cancelling) is never pruned.
PRUNABLE_STATES = ("Completed", "Cached", "Failed", "Cancelled", "Crashed")


class RetentionStore(Protocol):
    """Retention: prune finished runs, count what a prune would delete, keep shared files."""

    def prune_runs(self, before: float, states: tuple[str, ...], limit: int) -> PruneResult:
        """Delete up to `limit` top-level runs that ended before `before` in one of `states`
        (final states only, see PRUNABLE_STATES; ConfigError otherwise), oldest first, each
        with all its child runs, their steps, state history and log lines, and the cache
        entries those runs produced: one transaction. Returns the counts and the result
        files the deleted rows referred to; other rows may still share some of those files
        (a Cached step refers to its producer's), see `results_in_use`."""
        ...

    def count_prunable(self, before: float, states: tuple[str, ...]) -> PruneResult:
        """What calling `prune_runs(before, states, ...)` until nothing is left would delete,
        counted without deleting; `result_refs` lists only the files no row left would use."""
        ...

    def results_in_use(self, refs: list[str]) -> list[str]:
        """Those of the result files `refs` that a run, step or cache entry refers to."""
        ...

"""Retention: pruning runs that ended long ago, with their steps, logs and result files.

The store deletes rows in batches (`Store.prune_runs`, one transaction each, so a prune
never holds SQLite's write lock for long). After each batch, the result files the deleted
rows referred to are deleted here, unless a row left still refers to one: a Cached step of
a newer run shares the file of the step that produced its value. `stead runs prune` calls
`prune`; a long-running process applies STEAD_RETENTION_DAYS with `apply_retention`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stead.core.results import ResultFiles
from stead.core.runtime import result_files
from stead.errors import ConfigError
from stead.settings import Settings, get_settings
from stead.store.base import PRUNABLE_STATES, Store

DAY = 86_400.0


@dataclass(slots=True)
class PruneReport:
    """What a prune deleted (or, for a dry run, would delete)."""

    before: float  # runs that ended before this time (Unix seconds) were chosen
    dry_run: bool = False
    runs: int = 0  # top-level runs and their child runs
    steps: int = 0
    logs: int = 0  # log lines
    cache: int = 0  # cache entries the pruned runs had produced
    files: int = 0  # result files deleted
    bytes: int = 0  # their size


def prune(store: Store, older_than_s: float, now: float,
          states: Sequence[str] = PRUNABLE_STATES, batch: int = 500, dry_run: bool = False,
          files: ResultFiles | None = None,
          on_batch: Callable[[PruneReport], None] | None = None) -> PruneReport:
    """Delete the top-level runs in `states` that ended more than `older_than_s` seconds
    before `now`, with their child runs, steps, history, logs, the cache entries they made,
    and the result files nothing else refers to; `batch` top-level runs per transaction,
    until none is left. `on_batch` is called with the running totals after each batch.

    A dry run deletes nothing and reports what would go. Only finished states may be given
    (see PRUNABLE_STATES); anything else is a ConfigError.
    """
    if older_than_s < 0:
        raise ConfigError(f"cannot prune runs older than {older_than_s:g} s: give a duration "
                          "of 0 or more")
    if batch < 1:
        raise ConfigError(f"a prune batch of {batch} runs cannot make progress; give 1 or more")
    states = tuple(states)
    files = files if files is not None else result_files(store.url)
    report = PruneReport(before=now - older_than_s, dry_run=dry_run)
    if dry_run:
        would = store.count_prunable(report.before, states)
        sizes = [files.size(ref) for ref in would.result_refs]
        report.runs, report.steps, report.logs, report.cache = (
            would.runs, would.steps, would.logs, would.cache)
        report.files, report.bytes = sum(1 for s in sizes if s), sum(sizes)
        return report
    while True:
        done = store.prune_runs(report.before, states, batch)
        if not done.runs:
            return report
        report.runs += done.runs
        report.steps += done.steps
        report.logs += done.logs
        report.cache += done.cache
        if done.result_refs:  # the rows are gone: a file no row refers to is garbage now
            used = set(store.results_in_use(done.result_refs))
            for ref in done.result_refs:
                if ref not in used:
                    freed = files.delete(ref)
                    if freed is not None:
                        report.files += 1
                        report.bytes += freed
        if on_batch is not None:
            on_batch(report)


def apply_retention(store: Store, now: float,
                    settings: Settings | None = None) -> PruneReport | None:
    """Prune the runs older than STEAD_RETENTION_DAYS; None when it is 0 (keep forever)."""
    days = (settings or get_settings()).retention_days
    if days <= 0:
        return None
    return prune(store, days * DAY, now)

"""The background services of `stead server start`: the deployment scheduler, the lease
reaper and retention (pruning finished runs older than STEAD_RETENTION_DAYS, when set, and
audit rows older than STEAD_AUDIT_RETENTION_DAYS), each a thread that repeats its round
forever. A failing round is logged and tried again at the next; it never stops the server or
the other services.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from stead.settings import get_settings
from stead.store.base import Store
from stead.worker.recovery import Reaper, reap

log = logging.getLogger("stead.server")
SCHEDULER_EVERY_S = 5.0
REAPER_EVERY_S = 10.0
RETENTION_EVERY_S = 3600.0


def scheduler_round(store: Store) -> None:
    """Create the schedules' next runs, skip missed ones as their policy says, make them
    Pending when due, mark overdue ones Late."""
    from stead.deployments.scheduler import tick

    report = tick(store, time.time())
    for run_id in report.created:
        log.info("scheduler: created run %s", run_id)
    if report.skipped:
        log.warning("scheduler: skipped %d missed runs (their missed-run policy)",
                    report.skipped)
    if report.late:
        log.warning("scheduler: %d runs are Late (not started in time)", report.late)
    for error in report.errors:
        log.error("scheduler: %s", error)


def reaper_round(store: Store, reaper: Reaper | None = None) -> None:
    """Recover the runs whose worker stopped renewing their lease (with `reaper`: not within
    a lease of an outage of the database; see worker/recovery.py)."""
    recovered = reap(store, time.time()) if reaper is None else reaper.reap(time.time())
    if recovered:
        log.warning("reaper: recovered %d runs of lost workers", recovered)


def retention_round(store: Store) -> None:
    """Prune the finished runs older than STEAD_RETENTION_DAYS (nothing when it is 0) and
    the audit rows older than STEAD_AUDIT_RETENTION_DAYS (90 by default; 0: keep them)."""
    from stead.core.retention import apply_retention
    from stead.store.audit import prune_old_audit

    now = time.time()
    report = apply_retention(store, now)
    if report is not None and report.runs:
        log.info("retention: pruned %d runs (%d steps, %d log lines, %d result files) that "
                 "ended before %s", report.runs, report.steps, report.logs, report.files,
                 time.strftime("%Y-%m-%d %H:%M", time.localtime(report.before)))
    audit = prune_old_audit(store, now, get_settings().audit_retention_days)
    if audit:
        log.info("retention: deleted %d audit rows older than %g days", audit,
                 get_settings().audit_retention_days)


Round = tuple[str, Callable[[Store], None], float]  # name, what one round does, how often
ROUNDS: list[Round] = [("scheduler", scheduler_round, SCHEDULER_EVERY_S),
                       ("reaper", reaper_round, REAPER_EVERY_S),
                       ("retention", retention_round, RETENTION_EVERY_S)]


class Services:
    """Threads repeating each round on `store` (first at once, then every few seconds)
    until `stop()`."""

    def __init__(self, store: Store, rounds: list[Round] | None = None) -> None:
        self._store = store
        if rounds is None:  # the reaper keeps its grace after an outage from round to round
            reaper = Reaper(store, get_settings().lease_seconds)
            rounds = [(name, (lambda s: reaper_round(s, reaper)) if fn is reaper_round else fn,
                       every) for name, fn, every in ROUNDS]
        self._rounds = rounds
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for name, fn, every_s in self._rounds:
            thread = threading.Thread(target=self._repeat, args=(name, fn, every_s),
                                      name=f"stead-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _repeat(self, name: str, fn: Callable[[Store], None], every_s: float) -> None:
        while not self._stopping.is_set():
            try:
                fn(self._store)
            except Exception:
                log.exception("%s: this round failed; trying again in %g s", name, every_s)
            self._stopping.wait(every_s)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)

"""The background services of `stead server start`: the deployment scheduler and the lease
reaper, each a thread that repeats its round forever. A failing round is logged and tried
again at the next; it never stops the server or the other service.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from stead.store.base import Store

log = logging.getLogger("stead.server")
SCHEDULER_EVERY_S = 5.0
REAPER_EVERY_S = 10.0


def scheduler_round(store: Store) -> None:
    """Create due schedule runs, make them Pending when due, mark overdue ones Late."""
    from stead.deployments.scheduler import tick

    report = tick(store, time.time())
    for run_id in report.created:
        log.info("scheduler: created run %s", run_id)
    if report.late:
        log.warning("scheduler: %d runs are Late (not started in time)", report.late)
    for error in report.errors:
        log.error("scheduler: %s", error)


def reaper_round(store: Store) -> None:
    """Recover the runs whose worker stopped renewing their lease."""
    from stead.worker.recovery import reap

    recovered = reap(store, time.time())
    if recovered:
        log.warning("reaper: recovered %d runs of lost workers", recovered)


class Services:
    """Threads repeating `round(store)` every few seconds until `stop()`."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for name, fn, every_s in (("scheduler", scheduler_round, SCHEDULER_EVERY_S),
                                  ("reaper", reaper_round, REAPER_EVERY_S)):
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

"""The "batched" durability level: sequential step records are committed in groups.

A batched run's `RunContext.store` is a `BatchedStore`: `record_step` appends the record to
the run's `StepBatch` and returns at once; the group is committed (`Store.record_steps`, one
transaction) when it holds STEAD_BATCH_STEPS records, or by the process's flusher thread
once its oldest record is STEAD_BATCH_MS old, so a flow stuck in a long step still has its
earlier steps committed. Every other verb (transitions, child runs, logs, cache, reads of
the steps, the run's end) commits the pending group first, so the database never holds a
later write without the steps before it. The group is committed under the batch's lock and
the flow waits for that lock to add a record: at most one group of steps is ever
uncommitted, which is what a crash can make run again.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from stead.store.base import Fence, LogRecord, StepRecord, Store

_monotonic = time.monotonic


class StepBatch:
    """The uncommitted step records of one batched run (and its batched child runs)."""

    __slots__ = ("_lock", "commits", "error", "max_age", "max_steps", "pending", "since",
                 "store", "watched")

    def __init__(self, store: Store, max_steps: int, max_age_s: float) -> None:
        self.store = store
        self.max_steps = max_steps
        self.max_age = max_age_s
        self.pending: list[tuple[StepRecord, list[LogRecord] | None, Fence | None]] = []
        self.since = 0.0  # monotonic time the oldest pending record was added
        self.error: BaseException | None = None  # a failed flush by the flusher thread
        self.commits = 0  # groups committed
        self.watched = False  # the flusher thread is watching this batch's age
        self._lock = threading.Lock()

    def add(self, step: StepRecord, logs: list[LogRecord] | None = None,
            fence: Fence | None = None) -> None:
        """Queue `step`; commit the group now if it is full. (Store.record_step's shape.)"""
        with self._lock:
            pending = self.pending
            if self.error is not None:
                self._raise_error()
            if not pending:
                self.since = _monotonic()
                if not self.watched:
                    self.watched = True
                    _flusher.watch(self)
            pending.append((step, logs, fence))
            if len(pending) >= self.max_steps:
                self._commit()

    def flush(self) -> None:
        """Commit the pending group (if any) before the caller's write."""
        if self.pending or self.error is not None:
            with self._lock:
                if self.error is not None:
                    self._raise_error()
                if self.pending:
                    self._commit()

    def flush_if_old(self, now: float) -> None:
        """The flusher thread's check: commit a group whose oldest record is old enough (a
        failure is kept and raised in the flow at its next step or write). Once the batch
        is empty the flusher stops watching it, until its next group starts."""
        if self.pending and now - self.since < self.max_age:
            return
        with self._lock:
            if self.pending and self.error is None:
                try:
                    self._commit()
                except BaseException as exc:
                    self.error = exc
            if not self.pending:
                self.watched = False
                _flusher.forget(self)  # under our lock: `add` cannot re-watch meanwhile

    def _raise_error(self) -> None:
        error, self.error = self.error, None
        assert error is not None
        raise error

    def _commit(self) -> None:
        pending = self.pending
        fence = pending[0][2]
        if all(f == fence for _, _, f in pending):
            self.store.record_steps([(s, g) for s, g, _ in pending], fence)
        else:  # child runs share their root's fence; this is only for safety
            for f in dict.fromkeys(f for _, _, f in pending):
                self.store.record_steps([(s, g) for s, g, ff in pending if ff == f], f)
        self.pending = []  # kept on failure: the next flush tries them again
        self.commits += 1


class BatchedStore:
    """The store as a batched run sees it: step records are grouped, everything else first
    commits the pending group, then goes to the real store (`inner`)."""

    def __init__(self, inner: Store, batch: StepBatch) -> None:
        self.inner = inner
        self.batch = batch
        self.url = inner.url
        self.record_step = batch.add  # the hot path: no wrapper call in between

    def __getattr__(self, verb: str) -> Any:
        method = getattr(self.inner, verb)
        if not callable(method):
            return method
        flush = self.batch.flush

        def after_the_pending_group(*args: Any, **kwargs: Any) -> Any:
            flush()
            return method(*args, **kwargs)

        after_the_pending_group.__name__ = verb
        return after_the_pending_group


def batched(store: Store, max_steps: int, max_age_s: float) -> Store:
    """`store` for a batched run: a new BatchedStore, or `store` itself when it already is
    one (a child run shares its parent's group, so their order holds)."""
    if isinstance(store, BatchedStore):
        return store
    return BatchedStore(store, StepBatch(store, max_steps, max_age_s))  # type: ignore[return-value]


def unbatched(store: Store) -> Store:
    """The real store behind a BatchedStore (a non-batched child run of a batched run)."""
    return store.inner if isinstance(store, BatchedStore) else store


class _Flusher:
    """One daemon thread per process that commits groups which have waited long enough.

    It polls every half group age while some batch has uncommitted records and sleeps
    otherwise; a batch asks to be watched when a group starts, not at every step.
    """

    def __init__(self) -> None:
        self._batches: set[StepBatch] = set()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def watch(self, batch: StepBatch) -> None:
        with self._lock:
            self._batches.add(batch)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="stead-batch-flush",
                                                daemon=True)
                self._thread.start()
        self._wake.set()

    def _loop(self) -> None:
        while True:
            batches = list(self._batches)
            if not batches:
                self._wake.wait()
                self._wake.clear()
                continue
            time.sleep(min(b.max_age for b in batches) / 2)
            now = _monotonic()
            for batch in batches:
                batch.flush_if_old(now)

    def forget(self, batch: StepBatch) -> None:
        with self._lock:
            self._batches.discard(batch)


_flusher = _Flusher()


def run_level(option: str | None, parent: Any, settings: Any) -> str:
    """The durability level of a new run: its flow's option, else its parent run's, else
    STEAD_DURABILITY."""
    if option is not None:
        return option
    if parent is not None:
        return str(parent.run.durability)
    return str(settings.durability)


def store_for_run(store: Store, level: str, settings: Any) -> Store:
    """The store a run's context writes through: grouped step records for a batched run."""
    if level == "batched":
        return batched(store, settings.batch_steps, settings.batch_ms / 1000)
    return unbatched(store)

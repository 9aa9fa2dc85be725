"""Group commit: the step records of concurrently finishing tasks share one transaction.

Worker threads hand a finished step's record to the store's writer thread and go on to their
next task; the writer commits everything queued so far in one transaction and only then runs
each record's callback, which resolves the task's future. So fan-out is not bounded by one
commit per task, workers never wait on the disk, and a future the flow can act on always
stands on a durable checkpoint.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from stead.store.base import Fence, LogRecord, StepRecord, Store

MAX_BATCH = 512
Callback = Callable[[BaseException | None], None]


class GroupCommitWriter:
    """Commits queued step records in batches from one thread per store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.commits = 0  # transactions committed
        self.records = 0  # step records written
        self._queue: queue.SimpleQueue[tuple[StepRecord, list[LogRecord] | None,
                                             Callback | None, Fence | None]] = (
            queue.SimpleQueue())
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def enqueue(self, record: StepRecord, logs: list[LogRecord] | None,
                then: Callback | None = None, fence: Fence | None = None) -> None:
        """Queue `record`; `then(error)` runs on the writer thread once it is committed."""
        if self._thread is None:
            self._start()
        self._queue.put((record, logs, then, fence))

    def write(self, record: StepRecord, logs: list[LogRecord] | None = None,
              fence: Fence | None = None) -> None:
        """Queue `record` and wait until it is committed."""
        done = threading.Lock()
        done.acquire()
        failure: list[BaseException] = []

        def then(error: BaseException | None) -> None:
            if error is not None:
                failure.append(error)
            done.release()

        self.enqueue(record, logs, then, fence)
        done.acquire()
        if failure:
            raise failure[0]

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="stead-group-commit",
                                                daemon=True)
                self._thread.start()

    def _loop(self) -> None:
        get, get_nowait = self._queue.get, self._queue.get_nowait
        while True:
            batch = [get()]
            while len(batch) < MAX_BATCH:
                try:
                    batch.append(get_nowait())
                except queue.Empty:
                    break
            # One transaction per fence (almost always one: the process's one leased run).
            by_fence: dict[Fence | None, list[tuple[StepRecord, list[LogRecord] | None,
                                                     Callback | None]]] = {}
            for record, logs, then, fence in batch:
                by_fence.setdefault(fence, []).append((record, logs, then))
            for fence, items in by_fence.items():
                self._commit(items, fence)

    def _commit(self, items: list[tuple[StepRecord, list[LogRecord] | None, Callback | None]],
                fence: Fence | None) -> None:
        error: BaseException | None = None
        try:
            self.store.record_steps([(record, logs) for record, logs, _ in items], fence)
            self.commits += 1
            self.records += len(items)
        except BaseException as exc:  # every waiter learns the write failed
            error = exc
        for _, _, then in items:
            if then is not None:
                try:
                    then(error)
                except Exception as exc:  # a callback must not stop the writer
                    from stead.core.console import say

                    say("stead", f"group commit callback failed: {exc!r}")


_writers: dict[int, GroupCommitWriter] = {}
_writers_lock = threading.Lock()


def writer_for(store: Store) -> GroupCommitWriter:
    """The process's group-commit writer for `store`."""
    writer = _writers.get(id(store))
    if writer is None or writer.store is not store:
        with _writers_lock:
            writer = _writers.get(id(store))
            if writer is None or writer.store is not store:
                writer = _writers[id(store)] = GroupCommitWriter(store)
    return writer

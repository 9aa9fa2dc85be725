"""Group commit: one thread per store commits the step records of concurrent tasks together.

A task finishing in a worker thread hands its record to the writer and waits until the batch
holding it is committed; only then is its future resolved. So fan-out is not bounded by one
commit per task, and a checkpoint the flow has acted on is always durable.
"""

from __future__ import annotations

import queue
import threading

from stead.store.base import LogRecord, StepRecord, Store

MAX_BATCH = 512


class _Pending:
    __slots__ = ("done", "error", "logs", "record")

    def __init__(self, record: StepRecord, logs: list[LogRecord] | None) -> None:
        self.record, self.logs, self.error = record, logs, None
        self.done = threading.Lock()
        self.done.acquire()  # released by the writer once the batch is committed


class GroupCommitWriter:
    """Commits queued step records in batches; `write()` returns once its record is durable."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.commits = 0  # transactions committed
        self.records = 0  # step records written
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    def write(self, record: StepRecord, logs: list[LogRecord] | None = None) -> None:
        if self._thread is None:
            self._start()
        item = _Pending(record, logs)
        self._queue.put(item)
        item.done.acquire()
        if item.error is not None:
            raise item.error

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
            error: BaseException | None = None
            try:
                self.store.record_steps([(p.record, p.logs) for p in batch])
                self.commits += 1
                self.records += len(batch)
            except BaseException as exc:  # every waiter learns the write failed
                error = exc
            for pending in batch:
                pending.error = error
                pending.done.release()


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

"""Group commit: the step records of concurrently finishing tasks share one transaction.

Worker threads hand a finished step's record to the store's writer thread and go on to their
next task; the writer commits everything queued so far in one transaction and only then runs
each record's callback, which resolves the task's future. So fan-out is not bounded by one
commit per task, workers never wait on the disk, and a future the flow can act on always
stands on a durable checkpoint.

An async task's step goes the same way without blocking its event loop: `LoopWriter` queues
the record and hands the coroutine an asyncio future that the writer thread resolves (one
wake-up of the loop per committed group, not per step); the coroutine awaits it before it
returns, so the flow never goes on past a step whose outcome is not committed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from stead.store.base import Fence, LogRecord, StepRecord, Store

if TYPE_CHECKING:
    import asyncio

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
            if len(items) == 1:  # alone (a sequential async step): the one-statement write
                self.store.record_step(items[0][0], items[0][1], fence)
            else:
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


class LoopWriter:
    """The writer of one async step: queues its records on the group-commit writer without
    waiting (`Step` calls `write`), and `durable()` awaits their commit on the event loop.

    Example (inside the attempt loop of an async task):
        >>> step.writer = LoopWriter(writer_for(ctx.store), asyncio.get_running_loop())
        >>> step.succeeded(value)       # queued, returns at once
        >>> await step.writer.durable() # committed (or the store's error is raised here)
    """

    __slots__ = ("_loop", "_pending", "_writer")

    def __init__(self, writer: GroupCommitWriter, loop: asyncio.AbstractEventLoop) -> None:
        self._writer = writer
        self._loop = loop
        self._pending: list[asyncio.Future[None]] = []

    def write(self, record: StepRecord, logs: list[LogRecord] | None = None,
              fence: Fence | None = None) -> None:
        """Queue `record`; `durable()` waits for it."""
        future = self._loop.create_future()
        self._pending.append(future)
        self._writer.enqueue(record, logs, _Wakeups.for_loop(self._loop).settler(future), fence)

    def enqueue(self, record: StepRecord, logs: list[LogRecord] | None,
                then: Callback | None = None, fence: Fence | None = None) -> None:
        """Queue `record` with a callback, as GroupCommitWriter.enqueue (nothing to await)."""
        self._writer.enqueue(record, logs, then, fence)

    async def durable(self) -> None:
        """Wait until every record written so far is committed; raise the first failure."""
        import asyncio  # already imported: this runs on an event loop

        pending, self._pending = self._pending, []
        error: BaseException | None = None
        for future in pending:
            try:
                await future
            except asyncio.CancelledError:
                raise
            except BaseException as exc:
                error = error or exc
        if error is not None:
            raise error


class _Wakeups:
    """Futures of one event loop settled from the writer thread, in one loop wake-up per
    group: call_soon_threadsafe writes to the loop's self-pipe, which costs a system call."""

    _by_loop: dict[int, _Wakeups] = {}
    _lock = threading.Lock()

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ready: list[tuple[asyncio.Future[None], BaseException | None]] = []
        self.scheduled = False
        self.lock = threading.Lock()

    @classmethod
    def for_loop(cls, loop: asyncio.AbstractEventLoop) -> _Wakeups:
        wakeups = cls._by_loop.get(id(loop))
        if wakeups is None or wakeups.loop is not loop:
            with cls._lock:
                wakeups = cls._by_loop.get(id(loop))
                if wakeups is None or wakeups.loop is not loop:
                    for key, old in list(cls._by_loop.items()):  # closed loops' entries go
                        if old.loop.is_closed():
                            del cls._by_loop[key]
                    wakeups = cls._by_loop[id(loop)] = cls(loop)
        return wakeups

    def settler(self, future: asyncio.Future[None]) -> Callback:
        def settle(error: BaseException | None) -> None:  # on the writer thread
            with self.lock:
                self.ready.append((future, error))
                if self.scheduled:
                    return
                self.scheduled = True
            try:
                self.loop.call_soon_threadsafe(self._resolve)
            except RuntimeError:  # the loop is closed: nobody awaits these futures any more
                with self.lock:
                    self.ready.clear()
                    self.scheduled = False

        return settle

    def _resolve(self) -> None:  # on the event loop
        with self.lock:
            ready, self.ready = self.ready, []
            self.scheduled = False
        for future, error in ready:
            if future.done():  # its awaiter was cancelled
                continue
            if error is None:
                future.set_result(None)
            else:
                future.set_exception(error)

"""Task runners: where the body of a submitted task executes.

The engine keeps the bookkeeping of submitted tasks (positions, dependencies, retries,
recording) in a pool of coordinating threads, at most `max_workers` at once per flow run.
A runner only executes one attempt's body and returns its result or raises. That is the
whole interface, so a Dask or Ray runner is a class with these three methods: `execute`
sends the call to the cluster and blocks on its result.

Example:
    >>> from stead import flow, ProcessPoolTaskRunner
    >>> @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    ... def crunch(paths: list[str]) -> list[int]:
    ...     return [f.result() for f in count_lines.map(paths)]
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from stead.errors import ConfigError, SerializationError

if TYPE_CHECKING:
    from stead.core.task import Task


@runtime_checkable
class TaskRunner(Protocol):
    max_workers: int

    def start(self) -> None:
        """Acquire resources (pools, cluster clients) before the first task."""
        ...

    def execute(self, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                timeout: float | None) -> Any:
        """Run one attempt of `task`'s body with these arguments; return or raise its outcome."""
        ...

    def shutdown(self) -> None:
        """Release what start() acquired."""
        ...


def _check_workers(max_workers: int | None, default: int) -> int:
    if max_workers is None:
        return default
    if not isinstance(max_workers, int) or max_workers < 1:
        raise ConfigError(f"max_workers must be a whole number >= 1, got {max_workers!r}")
    return max_workers


class ThreadPoolTaskRunner:
    """Run task bodies in threads (the default): good for I/O-bound work.

    Example:
        >>> @flow(task_runner=ThreadPoolTaskRunner(max_workers=40))
        ... def crawl(urls): ...
    """

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = _check_workers(max_workers, min(32, (os.cpu_count() or 1) + 4))

    def start(self) -> None:
        pass

    def execute(self, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                timeout: float | None) -> Any:
        from stead.core.timeouts import deadline

        if timeout is None:
            return task.fn(*args, **kwargs)
        with deadline(timeout, f"task '{task.name}'"):
            return task.fn(*args, **kwargs)

    def shutdown(self) -> None:
        pass

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers})"


def _call_in_child(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return task.fn(*args, **kwargs)


class ProcessPoolTaskRunner:
    """Run task bodies in a pool of worker processes: for CPU-bound work.

    Task functions must be defined at module level and their arguments and results must be
    picklable. Workers are started with the "spawn" method (safe beside the engine's
    threads) and reused for the whole flow run. A timed-out attempt fails at once; its
    worker process finishes the call in the background.
    """

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = _check_workers(max_workers, os.cpu_count() or 1)
        self._pool: Any = None

    def start(self) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if self._pool is None:
            self._pool = ProcessPoolExecutor(self.max_workers,
                                             mp_context=multiprocessing.get_context("spawn"))

    def check(self, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Fail early, in the flow, when a call cannot be sent to another process."""

        from stead.core.task import _load_task

        # Tasks travel by reference (module and name): the worker must find the same task.
        try:
            found = _load_task(task.fn.__module__, task.fn.__qualname__)
            problem = None if found.fn is task.fn else "that name holds another object"
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        if problem is not None:
            raise SerializationError(
                f"task '{task.name}' cannot run in a process pool: its function cannot be "
                f"pickled, since a worker process cannot import it as "
                f"{task.fn.__module__}.{task.fn.__qualname__} ({problem}). Define it at module "
                "level (not inside a function, not a lambda), or use the default "
                "ThreadPoolTaskRunner.")
        self.check_arguments(task, args, kwargs)

    def check_arguments(self, task: Task[Any, Any], args: tuple[Any, ...],
                        kwargs: dict[str, Any]) -> None:
        import pickle

        try:
            pickle.dumps((args, kwargs))
        except Exception as exc:
            raise SerializationError(
                f"task '{task.name}' cannot run in a process pool: an argument cannot be "
                f"pickled ({exc}). Pass plain data (paths, ids, numbers) instead.") from None

    def execute(self, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                timeout: float | None) -> Any:
        from concurrent.futures import TimeoutError as FutureTimeout

        from stead.errors import TaskTimeout

        if self._pool is None:
            self.start()
        self.check_arguments(task, args, kwargs)
        future = self._pool.submit(_call_in_child, task, args, kwargs)
        try:
            return future.result(timeout)
        except FutureTimeout:
            raise TaskTimeout(f"task '{task.name}' (limit {timeout:g} s) timed out") from None

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self.max_workers})"

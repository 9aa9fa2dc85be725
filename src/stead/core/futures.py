"""Futures of submitted tasks, and helpers to wait on many of them.

A `StepFuture` is resolved only after its step is committed, so anything done with its
result is built on a durable checkpoint. Once `result()` has handed the value out, the future
lets go of it (a later call reads it back from the database), so a flow of 10,000 futures
does not keep 10,000 results alive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from stead.core.states import State

if TYPE_CHECKING:
    from stead.core.state_values import State as StateValue

T = TypeVar("T")
_MISSING: Any = object()


class StepFuture(Generic[T]):
    """The outcome of a task started with ``.submit()`` or ``.map()``.

    Example:
        >>> future = fetch.submit("https://example.com")
        >>> future.done(), future.state
        (False, Running(message=None, type=RUNNING))
        >>> body = future.result()          # waits; raises the task's exception if it failed
    """

    __slots__ = (
        "__weakref__",
        "_callbacks",
        "_error",
        "_finished",
        "_latch",
        "_lock",
        "_reload",
        "_state",
        "_used",
        "_value",
        "key",
        "name",
    )

    def __init__(self, key: str, name: str) -> None:
        self.key = key
        self.name = name
        self._state = State.PENDING
        self._value: Any = _MISSING
        self._error: BaseException | None = None
        # A held lock as a latch: cheaper to make than an Event (no Condition). Waiters
        # acquire and release it once _finish has released it.
        self._latch = threading.Lock()
        self._latch.acquire()
        self._finished = False
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[StepFuture[Any]], None]] = []
        self._used = False
        self._reload: Callable[[], Any] | None = None

    def __repr__(self) -> str:
        return f"<StepFuture {self.name} [{self.key}] {self._state.value}>"

    @property
    def state(self) -> StateValue[T]:
        """The task's state now, as a value (`stead.states.State`): Pending (waiting for its
        inputs or a worker), Running, Completed or Cached (`state.result()` is the result),
        Failed (`state.result()` raises the exception). Looking at the state of a failed
        future counts as using it: its failure no longer fails the flow by itself.

        Example:
            >>> future.wait(); future.state.is_failed(), future.state.message
            (True, 'ValueError: bad row')
        """
        from stead.core.state_values import State as Value

        kind = self._state
        if not self._finished:
            return Value(kind)
        self._used = True
        if self._error is not None:
            return Value(kind, message=f"{type(self._error).__name__}: {self._error}",
                         data=self._error)
        if self._value is _MISSING:
            return Value(kind, load=self._reload)
        return Value(kind, data=self._value)

    def done(self) -> bool:
        return self._finished

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the task has finished; False if `timeout` seconds passed first."""
        if self._finished:
            return True
        if self._latch.acquire(timeout=-1 if timeout is None else timeout):
            self._latch.release()
        return self._finished

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> T:
        """The task's result, waiting for it; raises the task's exception if it failed (with
        ``raise_on_failure=False``, returns it instead: the failure is then handled, and
        does not fail the flow)."""
        if not self.wait(timeout):
            raise TimeoutError(f"task '{self.name}' [{self.key}] not done after {timeout} s")
        self._used = True
        if self._error is not None:
            if not raise_on_failure:
                return self._error  # type: ignore[return-value]
            raise self._error
        value = self._value
        if value is _MISSING:
            assert self._reload is not None
            return self._reload()
        if self._reload is not None:
            self._value = _MISSING  # handed out: the database keeps it from here on
        return value

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The task's exception (None if it succeeded), waiting for it to finish."""
        if not self.wait(timeout):
            raise TimeoutError(f"task '{self.name}' [{self.key}] not done after {timeout} s")
        self._used = True
        return self._error

    def add_done_callback(self, fn: Callable[[StepFuture[Any]], None]) -> None:
        """Call fn(future) when it finishes (at once if it already has)."""
        with self._lock:
            if not self._finished:
                self._callbacks.append(fn)
                return
        fn(self)

    # -- engine side ---------------------------------------------------------------------
    def _set_running(self) -> None:
        self._state = State.RUNNING

    def _finish(self, state: State, value: Any = _MISSING, error: BaseException | None = None,
                reload: Callable[[], Any] | None = None) -> None:
        self._value, self._error, self._reload = value, error, reload
        with self._lock:
            self._state = state
            self._finished = True
            callbacks, self._callbacks = self._callbacks, []
        self._latch.release()
        for fn in callbacks:
            fn(self)


class unmapped(Generic[T]):
    """Pass a value unchanged to every call of ``.map()`` (lists are otherwise mapped over).

    Example:
        >>> scores = score.map(rows, unmapped(model))
    """

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


class allow_failure(Generic[T]):  # Prefect's name, used like a function
    """Let a task run even if this input (a future, or a list of them) failed.

    Wrap a future passed as an argument, or listed in ``wait_for=``: the task waits for it
    as usual, but runs when it failed, and the argument is then the failure's exception
    (the value, when it succeeded). Wrapping a failed future handles its failure: it does
    not fail the flow by itself.

    Example:
        >>> data = extract.submit()
        >>> cleanup.submit(wait_for=[allow_failure(data)])   # runs whatever extract did
    """

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value


class StepFutureList(list[StepFuture[T]]):
    """The futures of a ``.map()``, in call order: a list, with `result()` and `wait()`.

    Example:
        >>> futures = double.map([1, 2, 3])
        >>> futures.result()
        [2, 4, 6]
        >>> futures.wait(timeout=5)         # the same, without the results
    """

    def wait(self, timeout: float | None = None) -> None:
        """Wait until every future has finished, or `timeout` seconds have passed."""
        wait(self, timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[T]:
        """Every result in order, waiting for them; the first failure (in order) is raised,
        or with ``raise_on_failure=False`` stands in the list as its exception. TimeoutError
        if they have not all finished within `timeout` seconds."""
        _, not_done = wait(self, timeout)
        if not_done:
            raise TimeoutError(f"{len(not_done)} of {len(self)} mapped tasks not done after "
                               f"{timeout} s")
        return [f.result(raise_on_failure=raise_on_failure) for f in self]


class DoneAndNotDone(NamedTuple):
    """What `wait` returns: the finished futures and the others (unpacks as a pair)."""

    done: set[StepFuture[Any]]
    not_done: set[StepFuture[Any]]


def wait(futures: Iterable[StepFuture[Any]], timeout: float | None = None) -> DoneAndNotDone:
    """Wait for all `futures` to finish (or `timeout`); return `(done, not_done)`, a named
    tuple: ``stead.wait(fs).not_done`` or ``done, not_done = stead.wait(fs)``.

    Example:
        >>> done, not_done = stead.wait(process.map(files), timeout=60)
    """
    import time

    futures = list(futures)
    deadline = None if timeout is None else time.monotonic() + timeout
    for future in futures:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not future.wait(left):
            break
    done = {f for f in futures if f.done()}
    return DoneAndNotDone(done, set(futures) - done)


def as_completed(futures: Iterable[StepFuture[Any]], timeout: float | None = None
                 ) -> Iterator[StepFuture[Any]]:
    """Yield `futures` as they finish, first finished first.

    Example:
        >>> for future in stead.as_completed(download.map(urls)):
        ...     print(future.result())
    """
    import queue
    import time

    futures = list(futures)
    finished: queue.SimpleQueue[StepFuture[Any]] = queue.SimpleQueue()
    for future in futures:
        future.add_done_callback(finished.put)
    deadline = None if timeout is None else time.monotonic() + timeout
    for _ in futures:
        left = None if deadline is None else max(0.0, deadline - time.monotonic())
        try:
            yield finished.get(timeout=left)
        except queue.Empty:
            raise TimeoutError(f"not all futures finished within {timeout} s") from None

"""States as values (Prefect's): a state with its type, name, message, time and data.

`stead.State` (core/states.py) names a state; a `State` value here is one state of one run,
step or future, holding the result (or the exception) that came with it. Calls made with
``return_state=True`` hand one back instead of a value or a raise, a future's `state` is
one, and a flow that returns one (``return Failed(message="no rows")``) ends in it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from stead.core.states import FINAL_STATES, Flag
from stead.core.states import State as StateType
from stead.errors import FailedState, UnfinishedState

R = TypeVar("R")
_FAILURES = (StateType.FAILED, StateType.CRASHED, StateType.CANCELLED)


class State(Generic[R]):
    """One state of a run, step or future: `type`, `name`, `message`, `timestamp`, `data`.

    `type` is one of Prefect's state types (a `StateType`); `name` may be finer (a Cached
    state has type COMPLETED and name "Cached"). `result()` gives the data of a completed
    state and raises the failure of a failed one. A state compares equal to a `StateType`
    or a state name of the same name, so ``future.state == StateType.COMPLETED`` works.

    Example:
        >>> from stead.states import Completed, Failed
        >>> Completed(data=42).result()
        42
        >>> state = Failed(message="no rows")
        >>> state.is_failed(), state.message
        (True, 'no rows')
        >>> state.result(raise_on_failure=False)
        FailedState('no rows')
    """

    __slots__ = ("_data", "_load", "message", "name", "run_id", "timestamp", "type")

    def __init__(self, type: StateType | str, name: str | None = None,
                 message: str | None = None, data: Any = None,
                 timestamp: datetime | None = None, *, run_id: str | None = None,
                 load: Callable[[], Any] | None = None) -> None:
        kind = StateType(type)
        self.type = kind.type  # Cached -> COMPLETED, Late -> SCHEDULED, Retrying -> RUNNING
        self.name = name or kind.value
        self.message = message
        self.timestamp = timestamp or datetime.now(UTC)
        self.run_id = run_id  # the run the state belongs to, None for one made by hand
        self._data = data
        self._load = load  # reads the data back from the store on first use

    @property
    def data(self) -> Any:
        """The result of a completed state, the exception of a failed one (or None)."""
        if self._load is not None:
            self._data, self._load = self._load(), None
        return self._data

    def result(self, raise_on_failure: bool = True) -> R:
        """The state's data; for a Failed, Crashed or Cancelled state its exception is raised
        (returned instead with ``raise_on_failure=False``). A state that has not finished
        (Pending, Running, Paused, Scheduled) raises UnfinishedState.

        Example:
            >>> Failed(data=ValueError("bad row")).result(raise_on_failure=False)
            ValueError('bad row')
        """
        if self.type in _FAILURES:
            error = self._exception()
            if raise_on_failure:
                raise error
            return error  # type: ignore[return-value]
        if self.type is not StateType.COMPLETED:
            raise UnfinishedState(f"the state is {self.name}: its run has no result yet. Wait "
                                  "for the run (future.wait(), handle.result(timeout=...)) "
                                  "and ask its final state")
        return self.data  # type: ignore[no-any-return]

    def _exception(self) -> BaseException:
        data = self.data
        if isinstance(data, BaseException):
            return data
        if isinstance(data, State):
            return data._exception()
        if isinstance(data, list | tuple):
            for inner in data:
                if isinstance(inner, State) and inner.type in _FAILURES:
                    return inner._exception()
        message = self.message or (str(data) if data is not None else f"run {self.name}")
        return FailedState(message, state=self)

    # Prefect's predicates, each about the state's type.
    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelling(self) -> bool:
        return self.type is StateType.CANCELLING

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    @property
    def is_final(self) -> Flag:
        """Whether the state can no longer change: Completed, Failed, Cancelled (not Crashed:
        a crashed run is resumed). Callable too: ``state.is_final()``."""
        return Flag(self.type in FINAL_STATES)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):  # a StateType is a str: compare by name
            return self.name == other
        if isinstance(other, State):
            return (self.type, self.name, self.message, self.timestamp, self.run_id) == (
                other.type, other.name, other.message, other.timestamp, other.run_id) \
                and self.data is other.data
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal to its name, so not hashable

    def __repr__(self) -> str:
        parts = [f"message={self.message!r}", f"type={self.type.name}"]
        if self._load is None and self._data is not None:
            parts.append(f"data={_short(self._data)}")
        return f"{self.name}({', '.join(parts)})"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def make(kind: StateType, data: Any, message: str | None, name: str | None,
         timestamp: float | None = None, **extra: Any) -> State[Any]:
    """A state of `kind`; `timestamp` in seconds since the epoch (a run's clock)."""
    at = None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)
    return State(kind, name=name, message=message, data=data, timestamp=at, **extra)


def completed_state(value: Any, *, name: str | None = None, at: float | None = None,
                    run_id: str | None = None) -> State[Any]:
    """The Completed state of a call that returned `value`."""
    return make(StateType.COMPLETED, value, None, name, at if at is not None else time.time(),
                run_id=run_id)


def failed_state(exc: BaseException, *, at: float | None = None,
                 run_id: str | None = None) -> State[Any]:
    """The Failed state of a call that raised `exc`; its message names the exception."""
    return make(StateType.FAILED, exc, f"{type(exc).__name__}: {exc}", None,
                at if at is not None else time.time(), run_id=run_id)


def is_state(value: Any) -> bool:
    return isinstance(value, State)


def is_state_collection(value: Any) -> bool:
    """A non-empty list or tuple of states only (Prefect's aggregate rule applies to it)."""
    return (isinstance(value, list | tuple) and bool(value)
            and all(isinstance(v, State) for v in value))


def call_for_state(call: Callable[[], Any],
                   owned: Callable[[BaseException], bool] = lambda exc: True) -> Any:
    """Run `call` and return its outcome as a State: Completed with its value, or Failed
    with the exception it raised, when `owned(exc)` says the exception is the call's outcome
    (others are raised). An awaitable the call returns is awaited first."""
    import inspect

    try:
        value = call()
    except Exception as exc:
        if not owned(exc):
            raise
        return failed_state(exc)
    if inspect.isawaitable(value):
        return _await_for_state(value, owned)
    return completed_state(value)


async def _await_for_state(awaitable: Any, owned: Callable[[BaseException], bool]
                           ) -> State[Any]:
    try:
        value = await awaitable
    except Exception as exc:
        if not owned(exc):
            raise
        return failed_state(exc)
    return completed_state(value)

"""States as values, the Prefect way: `State`, `StateType` and one constructor per state.

A flow that returns one ends in it; ``return_state=True`` on a flow or task call, and a
future's `state`, hand one back. ``from prefect.states import Completed, Failed`` becomes
``from stead.states import Completed, Failed``.

Example:
    >>> from stead import flow
    >>> from stead.states import Completed, Failed
    >>> @flow
    ... def load(rows: list[int]):
    ...     if not rows:
    ...         return Failed(message="no rows")        # the run ends Failed, with that message
    ...     return Completed(message=f"{len(rows)} rows", data=len(rows))
    >>> load([1, 2])
    2
    >>> load([], return_state=True).message
    'no rows'
"""

from __future__ import annotations

from typing import Any

from stead.core.state_values import State
from stead.core.states import State as StateType

__all__ = [
    "Cancelled",
    "Cancelling",
    "Completed",
    "Crashed",
    "Failed",
    "Late",
    "Paused",
    "Pending",
    "Running",
    "Scheduled",
    "State",
    "StateType",
]


def _state(kind: StateType, data: Any, message: str | None, name: str | None) -> State[Any]:
    return State(kind, name=name, message=message, data=data)


def Completed(data: Any = None, message: str | None = None, *,  # Prefect's names
              name: str | None = None) -> State[Any]:
    """A Completed state with `data` as its result. Returned by a flow: the run completes
    with result `data`, `message` recorded in its history.

    Example:
        >>> Completed(data=3, message="3 rows").result()
        3
    """
    return _state(StateType.COMPLETED, data, message, name)


def Failed(data: Any = None, message: str | None = None, *,
           name: str | None = None) -> State[Any]:
    """A Failed state; `data` may be the exception. Returned by a flow: the run fails with
    `message` as its error (what `stead runs show` shows) and is not retried.

    Example:
        >>> Failed(message="no rows").is_failed()
        True
    """
    return _state(StateType.FAILED, data, message, name)


def Crashed(data: Any = None, message: str | None = None, *,
            name: str | None = None) -> State[Any]:
    """A Crashed state (its process was lost; the run can be resumed).

    Example:
        >>> Crashed(message="worker lost").is_final()
        False
    """
    return _state(StateType.CRASHED, data, message, name)


def Cancelled(data: Any = None, message: str | None = None, *,
              name: str | None = None) -> State[Any]:
    """A Cancelled state. Returned by a flow: the run ends Cancelled with `message`.

    Example:
        >>> Cancelled(message="not needed today").is_cancelled()
        True
    """
    return _state(StateType.CANCELLED, data, message, name)


def Cancelling(message: str | None = None, *, name: str | None = None) -> State[Any]:
    """A Cancelling state: cancellation was asked for, the run's code is being stopped.

    Example:
        >>> Cancelling().is_cancelling()
        True
    """
    return _state(StateType.CANCELLING, None, message, name)


def Pending(message: str | None = None, *, name: str | None = None) -> State[Any]:
    """A Pending state: waiting for a worker (or a submitted task for its inputs).

    Example:
        >>> Pending().is_pending()
        True
    """
    return _state(StateType.PENDING, None, message, name)


def Running(message: str | None = None, *, name: str | None = None) -> State[Any]:
    """A Running state.

    Example:
        >>> Running().is_running()
        True
    """
    return _state(StateType.RUNNING, None, message, name)


def Scheduled(message: str | None = None, *, name: str | None = None) -> State[Any]:
    """A Scheduled state: a run of a schedule, not yet due.

    Example:
        >>> Scheduled().is_scheduled()
        True
    """
    return _state(StateType.SCHEDULED, None, message, name)


def Late(message: str | None = None) -> State[Any]:
    """A Late state: a Scheduled run past its time (type SCHEDULED, name "Late").

    Example:
        >>> Late().is_scheduled(), Late().name
        (True, 'Late')
    """
    return _state(StateType.LATE, None, message, None)


def Paused(message: str | None = None, *, name: str | None = None) -> State[Any]:
    """A Paused state: waiting for time, an event or input.

    Example:
        >>> Paused().is_paused()
        True
    """
    return _state(StateType.PAUSED, None, message, name)

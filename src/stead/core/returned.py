"""What a flow's return value means, and a call's outcome as a state (``return_state=True``).

A flow body's return value is settled before it is recorded: futures in it (a future, or
futures in lists, tuples, sets and dicts) become their results, so a failed one fails the run as
if its result had been read. A returned state (Prefect's rule) sets the run's final state:
`Completed` completes it with the state's data, `Failed` fails it with the state's message,
`Cancelled` cancels it; a list or tuple of states fails the run if any of them failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from stead.core.futures import StepFuture
from stead.core.state_values import State, completed_state, is_state_collection, make
from stead.core.states import State as StateType
from stead.errors import ConfigError, FailedState

_FAILED = (StateType.FAILED, StateType.CRASHED)


def resolve_returned(value: Any) -> Any:
    """`value` with the futures in it (in lists, tuples, sets and dicts, at any depth)
    replaced by their results; a value holding no future is returned as it is.

    Example:
        >>> resolve_returned({"a": double.submit(1), "b": [double.submit(2), 5]})  # in a flow
        {'a': 2, 'b': [4, 5]}
    """
    if isinstance(value, StepFuture):
        return value.result()
    if not isinstance(value, _CONTAINERS) or not _holds_future(value):
        return value
    if isinstance(value, dict):
        return {k: resolve_returned(v) for k, v in value.items()}
    kind = type(value) if type(value) in (list, tuple, set, frozenset) else list
    return kind(resolve_returned(v) for v in value)


_CONTAINERS = (list, tuple, set, frozenset, dict)


def _holds_future(value: Any, depth: int = 0) -> bool:
    items: Any = value.values() if isinstance(value, dict) else value
    if len(items) > 16:  # a large returned value: look at its items' types first (cheap)
        kinds = set(map(type, items))
        if any(issubclass(kind, StepFuture) for kind in kinds):
            return True
        nested = tuple(kind for kind in kinds if issubclass(kind, _CONTAINERS))
        if not nested:
            return False
        items = [item for item in items if isinstance(item, nested)]
    for item in items:
        if isinstance(item, StepFuture):
            return True
        # Deeper than 20 levels is data, not futures to wait for.
        if isinstance(item, _CONTAINERS) and depth < 20 and _holds_future(item, depth + 1):
            return True
    return False


@dataclass(slots=True)
class Outcome:
    """The final state a flow's returned state (or states) asks for."""

    state: StateType  # COMPLETED, FAILED or CANCELLED
    value: Any = None  # the run's result, when Completed
    error: BaseException | None = None  # the run's error, when Failed
    message: str | None = None  # recorded with the final state


def returned_outcome(result: Any, flow_name: str) -> Outcome | None:
    """The outcome a flow's return value `result` sets, None when it is a plain value."""
    if isinstance(result, State):
        return _one(result, flow_name)
    if not is_state_collection(result):
        return None
    states: list[State[Any]] = list(result)
    failed = [s for s in states if s.type in _FAILED]
    if failed:  # a failure is never reported as anything else (Prefect puts Cancelled first)
        return Outcome(StateType.FAILED, error=failed[0]._exception(),
                       message=f"{len(failed)}/{len(states)} states failed")
    cancelled = [s for s in states if s.type is StateType.CANCELLED]
    if cancelled:
        return Outcome(StateType.CANCELLED,
                       message=f"{len(cancelled)}/{len(states)} states cancelled")
    unfinished = [s for s in states if s.type is not StateType.COMPLETED]
    if unfinished:
        message = f"{len(unfinished)}/{len(states)} states are not final"
        return Outcome(StateType.FAILED, error=FailedState(message), message=message)
    values = [s.data for s in states]
    return Outcome(StateType.COMPLETED, value=tuple(values) if isinstance(result, tuple)
                   else values)


def _one(state: State[Any], flow_name: str) -> Outcome:
    if state.type is StateType.COMPLETED:
        return Outcome(StateType.COMPLETED, value=state.data, message=state.message)
    if state.type in _FAILED:
        error = state._exception()
        return Outcome(StateType.FAILED, error=error,
                       message=state.message or f"{type(error).__name__}: {error}")
    if state.type is StateType.CANCELLED:
        return Outcome(StateType.CANCELLED, message=state.message or "cancelled by the flow")
    error = ConfigError(
        f"flow '{flow_name}' returned a {state.name} state, which is not a final state. "
        "Return Completed(...), Failed(...) or Cancelled(...) from stead.states, or a value")
    return Outcome(StateType.FAILED, error=error, message=str(error))


def run_for_state(execution: Any, is_async: bool) -> Any:
    """Execute a flow run (`execution`, core/execution.py) and return its final state
    instead of its result or its raised failure (``flow(..., return_state=True)``).

    Errors that are not the run's outcome (a RunConflict, a store outage, an interrupt)
    are raised as without ``return_state``."""
    if is_async:
        return _run_for_state_async(execution)
    try:
        value = execution.run_sync()
    except Exception as exc:
        return _failed(execution, exc)
    return _completed(execution, value)


async def _run_for_state_async(execution: Any) -> State[Any]:
    try:
        value = await execution.run_async()
    except Exception as exc:
        return _failed(execution, exc)
    return _completed(execution, value)


def _completed(execution: Any, value: Any) -> State[Any]:
    ctx = execution.ctx
    if ctx is None:  # an answer recorded earlier: a finished run id, a replayed child flow
        return completed_state(value, run_id=execution.requested_id)
    run = ctx.run
    return make(StateType.COMPLETED, value, execution.message, None, run.ended_at,
                run_id=run.id)


def _failed(execution: Any, exc: Exception) -> State[Any]:
    ctx = execution.ctx
    if ctx is None:
        if getattr(exc, "__stead_step__", None) is None:
            raise exc  # the run never started: not its outcome
        # A child flow whose recorded failure was replayed.
        return make(StateType.FAILED, exc, f"{type(exc).__name__}: {exc}", None)
    run = ctx.run
    if run.state not in (StateType.FAILED.value, StateType.CANCELLED.value):
        raise exc  # not recorded as the run's outcome (a store outage: still resumable)
    message = execution.message or f"{type(exc).__name__}: {exc}"
    return make(StateType(run.state), exc, message, None, run.ended_at, run_id=run.id)

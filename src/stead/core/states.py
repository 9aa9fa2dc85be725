"""The states of runs and steps and the one table of transitions allowed between them."""

from __future__ import annotations

from enum import StrEnum

from stead.errors import SteadError


class State(StrEnum):
    """The state of a run or a step; `is_final` says whether it can still change.

    Example:
        >>> State("Failed") is State.FAILED, State.COMPLETED.is_final
        (True, True)
    """

    SCHEDULED = "Scheduled"
    LATE = "Late"
    PENDING = "Pending"
    RUNNING = "Running"
    RETRYING = "Retrying"
    PAUSED = "Paused"
    COMPLETED = "Completed"
    CACHED = "Cached"
    FAILED = "Failed"
    CRASHED = "Crashed"
    CANCELLING = "Cancelling"
    CANCELLED = "Cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset({State.COMPLETED, State.CACHED, State.FAILED, State.CANCELLED})

S = State
# Every allowed transition. A Failed or Crashed run may go back to Running: that is a resume.
TRANSITIONS: dict[State, frozenset[State]] = {
    S.SCHEDULED: frozenset({S.PENDING, S.RUNNING, S.LATE, S.CANCELLED}),
    S.LATE: frozenset({S.PENDING, S.RUNNING, S.CANCELLED}),
    S.PENDING: frozenset({S.RUNNING, S.LATE, S.CANCELLED, S.CRASHED}),
    S.RUNNING: frozenset(
        {S.COMPLETED, S.CACHED, S.FAILED, S.RETRYING, S.PAUSED, S.CRASHED, S.CANCELLING}
    ),
    S.RETRYING: frozenset({S.RUNNING, S.FAILED, S.CRASHED, S.CANCELLED}),
    S.PAUSED: frozenset({S.RUNNING, S.CANCELLED, S.CRASHED}),
    S.COMPLETED: frozenset(),
    S.CACHED: frozenset(),
    S.FAILED: frozenset({S.RUNNING}),
    # Crashed -> Pending: recovered after its executor was lost, requeued for another worker.
    S.CRASHED: frozenset({S.RUNNING, S.PENDING, S.FAILED, S.CANCELLED}),
    S.CANCELLING: frozenset({S.CANCELLED, S.CRASHED}),
    S.CANCELLED: frozenset(),
}


class InvalidTransition(SteadError):
    """A state change that the transition table does not allow."""


def check_transition(old: State | str | None, new: State | str) -> State:
    """Return `new` as a State if moving from `old` is allowed, else raise InvalidTransition."""
    new_state = State(new)
    if old is None:
        return new_state
    old_state = State(old)
    if new_state not in TRANSITIONS[old_state]:
        allowed = ", ".join(sorted(TRANSITIONS[old_state])) or "nothing (final state)"
        raise InvalidTransition(
            f"cannot move from {old_state} to {new_state}; {old_state} may move to {allowed}"
        )
    return new_state

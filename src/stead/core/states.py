"""The states of runs and steps and the one table of transitions allowed between them."""

from __future__ import annotations

from enum import StrEnum

from stead.errors import SteadError


class Flag:
    """A yes/no answer that is both a property and a method: ``state.is_final`` (Stead's
    spelling) and ``state.is_final()`` (Prefect's) give the same answer.

    Example:
        >>> bool(State.COMPLETED.is_final), State.COMPLETED.is_final()
        (True, True)
    """

    __slots__ = ("value",)

    def __init__(self, value: bool) -> None:
        self.value = value

    def __bool__(self) -> bool:
        return self.value

    def __call__(self) -> bool:
        return self.value

    def __eq__(self, other: object) -> bool:
        return self.value == other

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return repr(self.value)


YES, NO = Flag(True), Flag(False)


class State(StrEnum):
    """The state of a run or a step; `is_final` says whether it can still change.

    The `is_*()` predicates are Prefect's: each asks about the state's type, so
    ``State.CACHED.is_completed()`` and ``State.LATE.is_scheduled()`` are true
    (`stead.states.State` is the state as a value, with its data and message).

    Example:
        >>> State("Failed") is State.FAILED, State.COMPLETED.is_final
        (True, True)
        >>> State.CACHED.is_completed(), State.RETRYING.is_running()
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
    def is_final(self) -> Flag:
        """Whether the state can no longer change (Crashed can: a resume); also callable."""
        return YES if self in FINAL_STATES else NO

    @property
    def type(self) -> State:
        """The Prefect state type this state is a kind of: Cached is a kind of Completed,
        Late of Scheduled, Retrying of Running; every other state is its own type."""
        return STATE_TYPES.get(self, self)

    def is_scheduled(self) -> bool:
        return self.type is State.SCHEDULED

    def is_pending(self) -> bool:
        return self is State.PENDING

    def is_running(self) -> bool:
        return self.type is State.RUNNING

    def is_paused(self) -> bool:
        return self is State.PAUSED

    def is_completed(self) -> bool:
        return self.type is State.COMPLETED

    def is_failed(self) -> bool:
        return self is State.FAILED

    def is_crashed(self) -> bool:
        return self is State.CRASHED

    def is_cancelling(self) -> bool:
        return self is State.CANCELLING

    def is_cancelled(self) -> bool:
        return self is State.CANCELLED


FINAL_STATES = frozenset({State.COMPLETED, State.CACHED, State.FAILED, State.CANCELLED})
# Stead's finer states, by the Prefect type they are a kind of (Prefect's names and types).
STATE_TYPES = {State.CACHED: State.COMPLETED, State.LATE: State.SCHEDULED,
               State.RETRYING: State.RUNNING}

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

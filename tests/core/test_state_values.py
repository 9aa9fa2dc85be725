"""States as values: `stead.states` constructors, predicates and `result()`, and the same
predicates on the `stead.State` enum, so code written either way gives the same answers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stead import State as StateEnum
from stead.errors import FailedState, UnfinishedState
from stead.states import (
    Cancelled,
    Cancelling,
    Completed,
    Crashed,
    Failed,
    Late,
    Paused,
    Pending,
    Running,
    Scheduled,
    State,
    StateType,
)

PREDICATES = ("is_scheduled", "is_pending", "is_running", "is_paused", "is_completed",
              "is_failed", "is_crashed", "is_cancelling", "is_cancelled")


@pytest.fixture(autouse=True)
def _every_backend() -> str:  # values only: no store involved, one run is enough
    return "none"


def test_state_type_is_the_enum_users_already_compare_with() -> None:
    assert StateType is StateEnum
    assert Completed().type is StateEnum.COMPLETED and Completed().name == "Completed"


def test_completed_gives_its_data_and_failed_raises_its_exception() -> None:
    assert Completed(data={"rows": 3}).result() == {"rows": 3}
    error = ValueError("bad row")
    with pytest.raises(ValueError, match="bad row") as raised:
        Failed(data=error).result()
    assert raised.value is error
    assert Failed(data=error).result(raise_on_failure=False) is error


def test_a_failed_state_with_only_a_message_raises_that_message() -> None:
    with pytest.raises(FailedState, match=r"^no rows$") as raised:
        Failed(message="no rows").result()
    assert raised.value.state.message == "no rows"
    returned = Crashed(message="worker lost").result(raise_on_failure=False)
    assert isinstance(returned, FailedState) and str(returned) == "worker lost"
    assert isinstance(Cancelled().result(raise_on_failure=False), FailedState)


@pytest.mark.parametrize("make", [Pending, Running, Scheduled, Paused, Cancelling, Late])
def test_a_state_that_has_not_finished_has_no_result_yet(make) -> None:
    with pytest.raises(UnfinishedState, match=f"the state is {make().name}"):
        make().result()
    with pytest.raises(UnfinishedState):
        make().result(raise_on_failure=False)


def test_finer_states_keep_their_name_and_take_prefects_type() -> None:
    cached = State(StateType.CACHED, data=5)
    assert (cached.type, cached.name, cached.is_completed(), cached.result()) == (
        StateType.COMPLETED, "Cached", True, 5)
    assert (Late().type, Late().name) == (StateType.SCHEDULED, "Late")
    retrying = State("Retrying")
    assert retrying.type is StateType.RUNNING and retrying.is_running()


@given(st.sampled_from(list(StateEnum)))
def test_the_enum_and_a_state_value_answer_every_predicate_alike(kind: StateEnum) -> None:
    value = State(kind)
    for name in PREDICATES:
        assert getattr(kind, name)() == getattr(value, name)(), (kind, name)
    assert bool(kind.is_final) == kind.is_final() == bool(value.is_final) == value.is_final()
    assert sum(getattr(value, name)() for name in PREDICATES) == 1  # exactly one type


def test_is_final_works_as_steads_property_and_as_prefects_method() -> None:
    assert StateEnum.COMPLETED.is_final and StateEnum.COMPLETED.is_final()
    assert not StateEnum.CRASHED.is_final and StateEnum.CRASHED.is_final() is False
    assert Failed().is_final() and not Running().is_final
    # Crashed is not final in Stead: a crashed run is resumed (Prefect calls it terminal).
    assert not Crashed().is_final()


def test_a_state_equals_the_enum_member_and_the_name_it_has() -> None:
    assert Completed() == StateEnum.COMPLETED and Completed() == "Completed"
    assert Completed() != StateEnum.FAILED
    assert State(StateType.CACHED) == StateEnum.CACHED != StateEnum.COMPLETED


def test_message_timestamp_and_repr() -> None:
    state = Failed(message="no rows")
    assert state.message == "no rows" and state.timestamp.tzinfo is not None
    assert repr(state) == "Failed(message='no rows', type=FAILED)"
    assert repr(Completed(data=[1, 2])) == "Completed(message=None, type=COMPLETED, data=[1, 2])"


def test_constructors_take_data_then_message_like_the_brief_says() -> None:
    state = Completed(7, "seven")
    assert (state.data, state.message) == (7, "seven")
    assert Completed(name="Skipped").name == "Skipped"
    assert Completed(name="Skipped").type is StateType.COMPLETED

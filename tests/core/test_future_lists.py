"""Futures the Prefect way: `result(raise_on_failure=False)`, `state` as a value, `.map()`'s
StepFutureList, `stead.wait`'s named tuple, and futures a flow returns resolved. Stead's
safer rule stays: a failed future nobody read fails the flow."""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stead
from stead import State, StepFuture, flow, task
from stead.core.futures import StepFutureList
from stead.core.returned import resolve_returned
from stead.core.serialization import decode
from stead.store.base import RunFilter

gate = threading.Event()


@task
def double(x: int) -> int:
    return 2 * x


@task
def check(x: int) -> int:
    if x < 0:
        raise ValueError(f"negative {x}")
    return x


@task
def held() -> str:
    gate.wait(30)
    return "released"


def only_run(store):
    [run] = store.list_runs(RunFilter())
    return run


def test_map_returns_a_list_with_result_and_wait(store) -> None:
    @flow
    def etl() -> list[int]:
        futures = double.map([1, 2, 3])
        assert isinstance(futures, StepFutureList) and isinstance(futures, list)
        assert all(isinstance(f, StepFuture) for f in futures) and len(futures) == 3
        futures.wait(timeout=30)
        assert all(f.done() for f in futures)
        return futures.result()

    assert etl() == [2, 4, 6]


def test_a_mapped_list_passed_to_a_task_arrives_as_a_plain_list_of_results(store) -> None:
    seen = []

    @task
    def kinds(xs: list[int]) -> int:
        seen.append(type(xs))
        return sum(xs)

    @flow
    def etl() -> int:
        return kinds.submit(double.map([1, 2, 3])).result()

    assert etl() == 12
    assert seen == [list]


def test_results_without_raising_keep_each_failure_in_place_and_the_flow_completes(
        store) -> None:
    @flow
    def etl() -> list[str]:
        values = check.map([1, -2, 3]).result(raise_on_failure=False)
        return [type(v).__name__ if isinstance(v, Exception) else str(v) for v in values]

    assert etl() == ["1", "ValueError", "3"]
    run = only_run(store)
    assert run.state == "Completed"  # the failure was read (not raised): it is handled
    assert store.load_steps(run.id)["2"].state == "Failed"


def test_the_first_failure_in_order_is_raised_by_the_list_result(store) -> None:
    @flow
    def etl() -> list[int]:
        return check.map([1, -2, -3]).result()

    with pytest.raises(ValueError, match="negative -2"):
        etl()
    assert only_run(store).state == "Failed"


def test_future_result_without_raising_returns_the_exception(store) -> None:
    @flow
    def etl() -> str:
        error = check.submit(-1).result(raise_on_failure=False)
        return f"handled {type(error).__name__}: {error}"

    assert etl() == "handled ValueError: negative -1"
    assert only_run(store).state == "Completed"


def test_future_state_is_a_state_value(store) -> None:
    @flow
    def etl() -> list[object]:
        good, bad = double.submit(4), check.submit(-5)
        good.wait()
        bad.wait()
        g, b = good.state, bad.state
        return [g.is_completed(), g.result(), g == State.COMPLETED, b.is_failed(), b.message,
                type(b.result(raise_on_failure=False)).__name__]

    assert etl() == [True, 8, True, True, "ValueError: negative -5", "ValueError"]
    assert only_run(store).state == "Completed"  # looking at the Failed state handled it


def test_a_running_futures_state_is_running_and_has_no_result(store) -> None:
    from stead.errors import UnfinishedState

    gate.clear()

    @flow
    def etl() -> str:
        future = held.submit()
        while not future.state.is_running():
            future.wait(0.01)
        with pytest.raises(UnfinishedState):
            future.state.result()
        gate.set()
        return future.result()

    assert etl() == "released"


def test_the_state_of_a_released_result_is_read_back_from_the_store(store) -> None:
    @flow
    def etl() -> int:
        future = double.submit(50)
        first = future.result()  # hands the value out: the future lets go of it
        return first + future.state.result()

    assert etl() == 200


def test_wait_returns_done_and_not_done_by_name_and_as_a_pair(store) -> None:
    gate.clear()

    @flow
    def etl() -> list[int]:
        quick, slow = double.submit(1), held.submit()
        quick.wait()
        waited = stead.wait([quick, slow], timeout=0.05)
        assert waited.done == {quick} and waited.not_done == {slow}
        done, not_done = waited
        assert (done, not_done) == (waited.done, waited.not_done)
        gate.set()
        assert stead.wait([quick, slow], timeout=30).not_done == set()
        return [len(done), len(not_done)]

    assert etl() == [1, 1]


def test_submit_and_map_with_return_state_wait_and_give_final_states(store) -> None:
    @flow
    def etl() -> list[str]:
        one = check.submit(-1, return_state=True)
        many = check.map([2, -3], return_state=True)
        return [one.name, *(s.name for s in many), str(many[0].result())]

    assert etl() == ["Failed", "Completed", "Failed", "2"]
    assert only_run(store).state == "Completed"


# -- futures a flow returns ------------------------------------------------------------------
def test_a_returned_future_is_recorded_as_its_result(store) -> None:
    @flow
    def etl() -> object:
        return double.submit(21)

    assert etl() == 42
    assert decode(only_run(store).result) == 42


def test_returned_lists_tuples_and_dicts_of_futures_are_resolved(store) -> None:
    @flow
    def as_list() -> object:
        return double.map([1, 2, 3])

    @flow
    def as_dict() -> object:
        return {"mapped": double.map([1, 2]), "pair": (double.submit(3), "x"), "n": 7}

    assert as_list() == [2, 4, 6]
    assert as_dict() == {"mapped": [2, 4], "pair": (6, "x"), "n": 7}
    recorded = {r.flow_name: decode(r.result) for r in store.list_runs(RunFilter())}
    assert recorded["as_list"] == [2, 4, 6]
    assert recorded["as_dict"]["mapped"] == [2, 4] and list(recorded["as_dict"]["pair"]) == [6, "x"]


leaves = st.one_of(st.integers(-100, 100), st.tuples(st.just("future"), st.integers(-9, 9)))
shapes = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=40), st.lists(inner, max_size=5).map(tuple),
    st.dictionaries(st.text(max_size=3), inner, max_size=5)), max_leaves=120)


def build(shape: object, make: object) -> object:
    if isinstance(shape, tuple) and len(shape) == 2 and shape[0] == "future":
        return make(shape[1])  # type: ignore[operator]
    if isinstance(shape, dict):
        return {k: build(v, make) for k, v in shape.items()}
    if isinstance(shape, list | tuple):
        return type(shape)(build(v, make) for v in shape)
    return shape


@settings(max_examples=60, deadline=None)
@given(shapes)
def test_every_future_in_a_returned_value_is_replaced_by_its_result(shape: object) -> None:
    value = build(shape, double.submit)  # outside a flow: futures already resolved
    assert resolve_returned(value) == build(shape, lambda n: 2 * n)


def test_a_returned_failed_future_fails_the_run(store) -> None:
    @flow
    def etl() -> object:
        return [double.submit(1), check.submit(-9)]

    with pytest.raises(ValueError, match="negative -9"):
        etl()
    run = only_run(store)
    assert run.state == "Failed" and json.loads(run.error)["step"] == "2"


# -- Stead's safer rule ----------------------------------------------------------------------
def test_a_failed_future_nobody_read_fails_the_flow(store) -> None:
    """Prefect would report this run Completed; Stead fails it with the task's error, so a
    failure is never silently lost. Reading it (result, state, exception) handles it."""

    @flow
    def etl() -> str:
        check.submit(-1)  # never looked at
        return "done"

    with pytest.raises(ValueError, match="negative -1"):
        etl()
    run = only_run(store)
    assert run.state == "Failed" and json.loads(run.error)["type"] == "builtins.ValueError"

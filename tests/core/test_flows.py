"""Flows and tasks on plain Python: what gets recorded, nesting, async, calls outside flows."""

from __future__ import annotations

import asyncio
import json

import pytest

import stead
from stead import flow, task
from stead.core.states import State
from stead.errors import ParameterError, SerializationError
from stead.store.base import RunFilter


@task
def double(x: int) -> int:
    return 2 * x


@task(name="add-them")
def add(a: int, b: int = 1) -> int:
    return a + b


def test_flow_records_run_steps_params_results_and_history(store) -> None:
    @flow
    def pipeline(n: int, label: str = "x") -> int:
        total = 0
        for i in range(n):
            if i % 2:  # plain control flow decides which tasks run
                total += double(i)
            else:
                total += add(i, b=10)
        return total

    assert pipeline(4) == 2 + 6 + 10 + 12
    [run] = store.list_runs(RunFilter())
    assert run.state == "Completed" and run.flow_name == "pipeline"
    assert json.loads(run.params) == {"n": 4, "label": "x"}
    assert json.loads(run.result) == 30
    assert run.started_at <= run.ended_at
    steps = store.load_steps(run.id)
    assert [steps[k].name for k in ("1", "2", "3", "4")] == [
        "add-them", "double", "add-them", "double"]
    assert json.loads(steps["1"].params) == {"a": 0, "b": 10}
    assert json.loads(steps["2"].result) == 2
    assert all(s.state == "Completed" and s.attempts == 1 for s in steps.values())
    assert [c.state for c in store.run_history(run.id)] == ["Running", "Completed"]


def test_decorators_work_with_and_without_arguments() -> None:
    @task()
    def a() -> int:
        return 1

    @flow()
    def f1() -> int:
        return a()

    @flow(name="custom")
    def f2() -> int:
        return a() + 1

    assert f1() == 1 and f2() == 2
    assert f2.name == "custom" and isinstance(f1, stead.Flow) and isinstance(a, stead.Task)
    assert f1.__name__ == "f1" and f1.__doc__ is None


def test_task_outside_a_flow_is_a_task_run_of_its_own(store) -> None:
    assert double(21) == 42  # tests/core/test_standalone_tasks.py has the details
    [run] = store.list_runs(RunFilter())
    assert (run.flow_name, run.state, run.tags) == ("double", "Completed", '["task-run"]')


def test_child_flows_are_linked_to_their_parent(store) -> None:
    @flow
    def child(x: int) -> int:
        return double(x)

    @flow
    def parent() -> list[int]:
        return [child(1), double(5), child(2)]

    assert parent() == [2, 10, 4]
    runs = store.list_runs(RunFilter())
    top = next(r for r in runs if r.parent_id is None)
    kids = store.list_runs(RunFilter(parent_id=top.id))
    assert sorted(k.parent_step for k in kids) == ["1", "3"]
    assert all(k.state == "Completed" and k.flow_name == "child" for k in kids)
    steps = store.load_steps(top.id)
    assert steps["1"].kind == "flow" and steps["1"].child_run_id == f"{top.id}:1"
    assert store.load_steps(f"{top.id}:1")["1"].name == "double"


def test_tasks_calling_tasks_get_nested_keys(store) -> None:
    @task
    def outer(x: int) -> int:
        return double(x) + double(x + 1)

    @flow
    def f() -> int:
        return outer(1) + double(0)

    assert f() == 2 + 4
    [run] = store.list_runs(RunFilter())
    assert sorted(store.load_steps(run.id)) == ["1", "1.1", "1.2", "2"]


def test_recursion_inside_a_flow(store) -> None:
    @task
    def fib_step(a: int, b: int) -> int:
        return a + b

    def fib(n: int) -> int:
        return n if n < 2 else fib_step(fib(n - 1), fib(n - 2))

    @flow
    def f(n: int) -> int:
        return fib(n)

    assert f(10) == 55


def test_async_flow_with_async_tasks_and_gather(store) -> None:
    @task
    async def slow_square(x: int) -> int:
        await asyncio.sleep(0.01)
        return x * x

    @flow
    async def main(n: int) -> list[int]:
        first = await slow_square(2)
        rest = await asyncio.gather(*(slow_square(i) for i in range(n)))
        return [first, *rest]

    assert asyncio.run(main(4)) == [4, 0, 1, 4, 9]
    [run] = store.list_runs(RunFilter())
    assert run.state == "Completed"
    assert len(store.load_steps(run.id)) == 5


def test_async_task_inside_sync_flow_runs_to_completion(store) -> None:
    @task
    async def fetch(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    @flow
    def main() -> list[int]:
        return [fetch(1), fetch(2)]

    assert main() == [2, 3]
    [run] = store.list_runs(RunFilter())
    assert sorted(store.load_steps(run.id)) == ["1", "2"]


def test_sync_task_inside_async_flow(store) -> None:
    @flow
    async def main() -> int:
        return double(4)

    assert asyncio.run(main()) == 8


def test_wrong_arguments_give_one_clear_error_and_record_nothing(store) -> None:
    @flow
    def etl(day: str, region: str = "eu") -> None:
        return None

    with pytest.raises(ParameterError, match=r"flow 'etl' was called with wrong arguments.*"
                                             r"missing a required argument: 'day'"):
        etl()
    with pytest.raises(ParameterError, match="unexpected keyword argument 'zone'"):
        etl("2026-11-22", zone="x")
    assert store.list_runs(RunFilter()) == []


def test_unstorable_flow_parameter_names_the_parameter(store) -> None:
    @flow
    def uses(conn: object) -> None:
        return None

    with pytest.raises(ParameterError, match=r"parameter 'conn' cannot be recorded"):
        uses(object())
    assert store.list_runs(RunFilter()) == []


def test_unstorable_task_arguments_are_recorded_as_repr(store) -> None:
    class Conn:
        def __repr__(self) -> str:
            return "<Conn db=1>"

    @task
    def query(conn: Conn, sql: str) -> int:
        return len(sql)

    @flow
    def f() -> int:
        return query(Conn(), "select 1")

    assert f() == 8
    [run] = store.list_runs(RunFilter())
    assert "<Conn db=1>" in store.load_steps(run.id)["1"].params


def test_unstorable_result_fails_at_the_task_that_returned_it(store) -> None:
    @task
    def leak() -> object:
        return object()

    @flow
    def f() -> None:
        leak()

    with pytest.raises(SerializationError, match=r"task 'leak' \(step 1 of run .*\) returned"):
        f()
    [run] = store.list_runs(RunFilter())
    assert run.state == State.FAILED
    step = store.load_steps(run.id)["1"]
    assert step.state == "Failed" and step.attempts == 1
    assert "serializer='pickle'" in json.loads(step.error)["message"]


class Opaque:  # not a supported type: needs the pickle serializer
    def __init__(self, v: int) -> None:
        self.v = v


def test_pickle_serializer_is_opt_in_and_replays_the_object(store) -> None:
    made = []
    crash = {"on": True}

    @task(serializer="pickle")
    def make() -> Opaque:
        made.append(1)
        return Opaque(7)

    @flow
    def f() -> int:
        value = make().v
        if crash["on"]:
            raise KeyboardInterrupt
        return value

    with pytest.raises(KeyboardInterrupt):
        f.with_options(run_id="pickled")()
    crash["on"] = False
    assert f.resume("pickled") == 7  # the replayed result is the object, unpickled
    assert made == [1]


def test_large_results_go_to_the_results_folder(store, stead_home, monkeypatch) -> None:
    monkeypatch.setenv("STEAD_RESULT_INLINE_MAX", "1000")
    from stead.settings import reset_settings

    reset_settings()

    @task
    def big() -> str:
        return "x" * 5000

    @flow
    def f() -> int:
        return len(big())

    assert f() == 5000
    [run] = store.list_runs(RunFilter())
    step = store.load_steps(run.id)["1"]
    assert step.result is None and step.result_ref
    assert (stead_home / "results" / step.result_ref).read_text() == json.dumps("x" * 5000)


def test_recorded_now_and_uuid_outside_a_flow_are_plain_values() -> None:
    assert stead.now().tzinfo is not None
    assert stead.uuid() != stead.uuid()
    assert stead.step_idempotency_key() is None
    assert not stead.in_flow()


def test_step_idempotency_key_is_stable_per_step(store) -> None:
    keys = []

    @task
    def charge() -> str:
        key = stead.step_idempotency_key()
        keys.append(key)
        return key

    @flow
    def f() -> list[str]:
        return [charge(), charge()]

    out = f.with_options(run_id="pay-1")()
    assert out == ["pay-1/1", "pay-1/2"] == keys


def test_the_transition_table_refuses_what_it_does_not_list() -> None:
    from stead.core.states import InvalidTransition, check_transition

    assert check_transition("Crashed", "Running") is stead.State.RUNNING  # a resume
    assert check_transition(None, "Running") is stead.State.RUNNING
    with pytest.raises(InvalidTransition, match="cannot move from Completed to Running; "
                                                "Completed may move to nothing"):
        check_transition("Completed", "Running")
    with pytest.raises(InvalidTransition, match="Pending may move to Cancelled, Crashed, "
                                                "Late, Running"):
        check_transition("Pending", "Failed")

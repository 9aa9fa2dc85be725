"""States as values and state change hooks, as Prefect 3's docs use them."""

from __future__ import annotations

import pytest

from stead.core.runtime import store_for
from stead.store.base import RunFilter
from tests.prefect_style.registry import Difference, differs, unchanged

DIFFERENCES = [
    Difference("unread_failed_future",
               "a flow that submits a task, never looks at its failed future and returns a "
               "value is Failed with the task's error",
               "Prefect reports such a run Completed; Stead will not let a failure nobody "
               "handled pass silently (reading the future in any way handles it)"),
    Difference("cached_state_name",
               "a cache hit returned with return_state=True is named Completed; Prefect names "
               "it Cached (type COMPLETED). The step is recorded Cached, which `stead runs "
               "show` lists",
               "not yet: the state value of a call does not carry the cache hit (a gap)"),
    Difference("crashed_state_is_final",
               "a Crashed state is not final (state.is_final() is False)",
               "Stead resumes a crashed run from its last finished step, so Crashed is a "
               "state a run leaves; in Prefect it is terminal"),
]


def runs(flow_name: str) -> list:
    return store_for().list_runs(RunFilter(flow_name=flow_name, limit=100))


@unchanged
def test_task_return_state() -> None:
    """return_state=True returns the task run's state; a failure is returned, not raised."""
    from stead import flow, task

    @task
    def divide(a: int, b: int) -> float:
        return a / b

    @flow
    def safe() -> dict:
        good = divide(1, 2, return_state=True)
        bad = divide(1, 0, return_state=True)
        return {"good": (good.is_completed(), good.result()),
                "bad": (bad.is_failed(), type(bad.result(raise_on_failure=False)).__name__)}

    assert safe() == {"good": (True, 0.5), "bad": (True, "ZeroDivisionError")}
    assert runs("safe")[0].state == "Completed"   # the failure was handled by the flow


@unchanged
def test_flow_return_state() -> None:
    """flow(return_state=True) returns the final state of the run instead of raising."""
    from stead import flow

    @flow
    def failing() -> None:
        raise ValueError("bad input")

    @flow
    def passing() -> int:
        return 7

    state = failing(return_state=True)
    assert state.is_failed() and not state.is_completed()
    assert "bad input" in state.message
    with pytest.raises(ValueError, match="bad input"):
        state.result()
    assert isinstance(state.result(raise_on_failure=False), ValueError)
    ok = passing(return_state=True)
    assert ok.is_completed() and ok.result() == 7 and ok.name == "Completed"


@unchanged
def test_flow_returns_a_failed_state() -> None:
    """A flow that returns Failed(message=...) ends Failed with that message."""
    from stead import flow
    from stead.states import Completed, Failed

    @flow
    def validate(rows: list[int]):
        if not rows:
            return Failed(message="no rows to load")
        return Completed(message=f"{len(rows)} rows loaded")

    state = validate([], return_state=True)
    assert state.is_failed() and state.message == "no rows to load"
    done = validate([1, 2], return_state=True)
    assert done.is_completed() and done.message == "2 rows loaded"
    assert sorted(r.state for r in runs("validate")) == ["Completed", "Failed"]


@unchanged
def test_returning_task_states_decides_the_flow_state() -> None:
    """A flow returning its tasks' states is Failed if any of them failed."""
    from stead import flow, task

    @task
    def check(n: int) -> int:
        if n < 0:
            raise ValueError(f"negative: {n}")
        return n

    @flow
    def all_of(numbers: list[int]):
        return [check(n, return_state=True) for n in numbers]

    assert all_of([1, -1], return_state=True).is_failed()
    assert all_of([1, 2], return_state=True).is_completed()


@unchanged
def test_ignored_failed_task_state_lets_the_flow_complete() -> None:
    """A task failure the flow only holds as a state does not fail the flow."""
    from stead import flow, task

    @task
    def optional_enrichment() -> dict:
        raise ConnectionError("enrichment service down")

    @task
    def core_work() -> str:
        return "core done"

    @flow
    def tolerant() -> str:
        optional_enrichment(return_state=True)
        return core_work()

    assert tolerant() == "core done"
    assert runs("tolerant")[0].state == "Completed"


@unchanged
def test_future_state() -> None:
    """A future's .state is the task run's state: its predicates and its result."""
    from stead import flow, task

    @task
    def square(x: int) -> int:
        return x * x

    @flow
    def squares() -> list:
        futures = [square.submit(i) for i in range(3)]
        for f in futures:
            f.wait()
        return [(f.state.is_completed(), f.state.result()) for f in futures]

    assert squares() == [(True, 0), (True, 1), (True, 4)]


@unchanged
def test_on_failure_runs_once_after_the_last_retry() -> None:
    """on_failure of a flow with retries runs once, when the run is finally Failed."""
    from stead import flow

    calls = []

    def notify(flow, flow_run, state):
        calls.append((flow.name, flow_run.name, state.name, state.message))

    @flow(retries=1, retry_delay_seconds=0, on_failure=[notify])
    def failing_flow() -> None:
        raise ValueError("oops!")

    with pytest.raises(ValueError):
        failing_flow()
    [(flow_name, run_name, state_name, message)] = calls
    assert (flow_name, state_name, message) == ("failing_flow", "Failed", "ValueError: oops!")
    assert isinstance(run_name, str) and run_name   # Prefect's message names the run


@unchanged
def test_hook_decorators() -> None:
    """@my_flow.on_completion and @my_task.on_failure register hooks."""
    from stead import flow, task

    seen = []

    @task
    def risky(n: int) -> int:
        if n == 2:
            raise ValueError("two")
        return n

    @risky.on_failure
    def task_failed(task, task_run, state):
        seen.append(("task failed", task.name, task_run.parameters, state.is_failed()))

    @flow
    def pipeline() -> int:
        total = 0
        for n in (1, 2, 3):
            try:
                total += risky(n)
            except ValueError:
                pass
        return total

    @pipeline.on_completion
    def flow_done(flow, flow_run, state):
        seen.append(("flow completed", state.result()))

    assert pipeline() == 4
    assert seen == [("task failed", "risky", {"n": 2}, True), ("flow completed", 4)]


@unchanged
def test_on_running_fires_on_every_attempt() -> None:
    """on_running fires before each attempt: a task with retries=2 that keeps failing, 3 times."""
    from stead import flow, task

    started = []

    @task(retries=2, retry_delay_seconds=0,
          on_running=[lambda task, task_run, state: started.append(state.name)])
    def stubborn() -> None:
        raise RuntimeError("still broken")

    @flow
    def attempt() -> str:
        try:
            stubborn()
        except RuntimeError:
            return "gave up"
        return "worked"

    assert attempt() == "gave up"
    assert len(started) == 3 and set(started) <= {"Running", "Retrying"}


@unchanged
def test_on_completion_of_a_task_gets_its_result() -> None:
    """A task's on_completion hook sees the completed state and its result."""
    from stead import flow, task

    results = []

    @task(on_completion=[lambda task, task_run, state: results.append(state.result())])
    def produce(n: int) -> list[int]:
        return list(range(n))

    @flow
    def producer() -> int:
        return len(produce(3))

    assert producer() == 3
    assert results == [[0, 1, 2]]


@unchanged
def test_on_crashed_when_the_run_is_interrupted() -> None:
    """An interrupted run (SystemExit here, Ctrl-C alike) is Crashed and on_crashed runs."""
    from stead import flow

    crashed = []

    @flow(on_crashed=[lambda flow, flow_run, state: crashed.append(state.is_crashed())])
    def interrupted() -> None:
        raise SystemExit(1)

    with pytest.raises(SystemExit):
        interrupted()
    assert crashed == [True]
    assert runs("interrupted")[0].state == "Crashed"


@unchanged
def test_a_failing_hook_does_not_change_the_outcome() -> None:
    """A hook that raises does not change the run's final state."""
    from stead import flow

    def broken_hook(flow, flow_run, state):
        raise ConnectionError("webhook down")

    @flow(on_completion=[broken_hook])
    def fine() -> str:
        return "ok"

    assert fine() == "ok"
    assert runs("fine")[0].state == "Completed"


@differs
def test_unread_failed_future() -> None:
    from stead import flow, task

    @task
    def broken() -> int:
        raise ValueError("bad row")

    @flow
    def careless() -> str:
        broken.submit()
        return "done"

    with pytest.raises(ValueError, match="bad row"):
        careless()
    assert runs("careless")[0].state == "Failed"


@differs
def test_crashed_state_is_final() -> None:
    from stead.states import Completed, Crashed, Failed

    assert Completed().is_final() and Failed().is_final()
    assert not Crashed().is_final()


@differs
def test_cached_state_name() -> None:
    from stead import flow, task
    from stead.cache_policies import INPUTS

    @task(cache_policy=INPUTS)
    def square(x: int) -> int:
        return x * x

    @flow
    def twice() -> list:
        states = [square(3, return_state=True) for _ in range(2)]
        return [(s.name, s.is_completed(), s.result()) for s in states]

    assert twice() == [("Completed", True, 9),
                       ("Completed", True, 9)]       # Prefect: ("Cached", True, 9) second
    [run] = runs("twice")
    assert [s.state for s in store_for().load_steps(run.id).values()] == ["Completed", "Cached"]

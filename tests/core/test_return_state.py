"""``return_state=True`` on flow and task calls, and a flow's returned state setting its
final state (Prefect's states-as-values), everything still recorded as without them."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stead import FlowRunFailed, FlowRunStopped, RunConflict, State, flow, task
from stead.core.runtime import store_for
from stead.core.serialization import decode
from stead.errors import ConfigError, FailedState
from stead.states import Cancelled, Completed, Failed, Running
from stead.store.base import RunFilter

calls: list[str] = []
broken = [True]


@task
def boom(x: int) -> int:
    calls.append(f"boom {x}")
    raise ValueError(f"bad {x}")


@task
def double(x: int) -> int:
    calls.append(f"double {x}")
    return 2 * x


@task
def flaky() -> str:
    calls.append("flaky")
    if broken[0]:
        raise ConnectionError("down")
    return "up"


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    broken[0] = True


def only_run(store, flow_name: str | None = None):
    runs = [r for r in store.list_runs(RunFilter()) if flow_name in (None, r.flow_name)]
    [run] = runs
    return run


def history(store, run_id: str) -> list[tuple[str, str | None]]:
    return [(c.state, c.message) for c in store.run_history(run_id)]


# -- task calls ------------------------------------------------------------------------------
def test_a_failed_task_called_for_its_state_does_not_raise_and_the_flow_completes(store) -> None:
    seen = []

    @flow
    def etl() -> int:
        state = boom(1, return_state=True)
        seen.append(state)
        return double(state.is_failed() + 1)

    assert etl() == 4
    [state] = seen
    assert state.is_failed() and state.type is State.FAILED
    assert state.message == "ValueError: bad 1"
    assert isinstance(state.result(raise_on_failure=False), ValueError)
    with pytest.raises(ValueError, match="bad 1"):
        state.result()
    run = only_run(store)
    assert run.state == "Completed"  # Prefect's rule: the flow ignored it, so it completes
    steps = store.load_steps(run.id)
    assert steps["1"].state == "Failed" and json.loads(steps["1"].error)["message"] == "bad 1"
    assert steps["2"].state == "Completed"


def test_a_task_that_succeeds_gives_a_completed_state_with_its_result(store) -> None:
    @flow
    def etl() -> int:
        state = double(21, return_state=True)
        assert state.is_completed() and state.name == "Completed"
        return state.result()

    assert etl() == 42
    assert store.load_steps(only_run(store).id)["1"].state == "Completed"


def test_a_task_outside_a_flow_gives_its_state_too() -> None:
    assert double(2, return_state=True).result() == 4
    assert boom(2, return_state=True).is_failed()


def test_a_replayed_failure_comes_back_as_the_same_failed_state_on_resume(store) -> None:
    @flow
    def etl() -> str:
        state = boom(1, return_state=True)
        return f"{state.name}: {flaky()}"

    with pytest.raises(ConnectionError):
        etl()
    run = only_run(store)
    broken[0] = False
    assert etl.resume(run.id) == "Failed: up"
    assert calls == ["boom 1", "flaky", "flaky"]  # boom's recorded failure was replayed
    assert store.get_run(run.id).state == "Completed"


def test_an_engine_error_is_still_raised_not_turned_into_a_state(store) -> None:
    @flow
    def etl(n: int) -> int:
        return double(n, return_state=True).result()

    assert etl.with_options(run_id="fixed")(1) == 2
    with pytest.raises(RunConflict):  # same run id, other parameters: not the run's outcome
        etl.with_options(run_id="fixed")(2, return_state=True)


def test_async_flows_and_tasks_give_states_as_well(store) -> None:
    @task
    async def fetch(ok: bool) -> str:
        if not ok:
            raise LookupError("missing")
        return "page"

    @flow
    async def crawl() -> list[str]:
        good, bad = await fetch(True, return_state=True), await fetch(False, return_state=True)
        return [good.name, good.result(), bad.name, type(bad.data).__name__]

    assert asyncio.run(crawl()) == ["Completed", "page", "Failed", "LookupError"]
    state = asyncio.run(crawl(return_state=True))
    assert state.is_completed() and state.result()[0] == "Completed"


# -- flow calls ------------------------------------------------------------------------------
def test_a_failed_flow_called_for_its_state_returns_it_and_is_recorded_failed(store) -> None:
    @flow
    def etl() -> int:
        return boom(3)

    state = etl(return_state=True)
    run = only_run(store)
    assert state.is_failed() and state.run_id == run.id and state.message == "ValueError: bad 3"
    with pytest.raises(ValueError, match="bad 3"):
        state.result()
    assert run.state == "Failed" and json.loads(run.error)["message"] == "bad 3"


def test_a_completed_flow_called_for_its_state_has_its_result(store) -> None:
    @flow
    def etl(n: int) -> int:
        return double(n)

    state = etl(5, return_state=True)
    assert state.is_completed() and state.result() == 10
    assert state.run_id == only_run(store).id


def test_a_child_flow_failing_for_its_state_lets_the_parent_complete(store) -> None:
    @flow
    def child() -> int:
        return boom(7)

    @flow
    def parent() -> str:
        return child(return_state=True).name

    assert parent() == "Failed"
    assert only_run(store, "parent").state == "Completed"
    assert only_run(store, "child").state == "Failed"


def test_a_childs_replayed_failure_is_its_failed_state_again_on_resume(store) -> None:
    @flow
    def child() -> int:
        return boom(8)

    @flow
    def parent() -> str:
        state = child(return_state=True)
        return f"{state.name}: {flaky()}"

    with pytest.raises(ConnectionError):
        parent()
    run = only_run(store, "parent")
    broken[0] = False
    assert parent.resume(run.id) == "Failed: up"
    assert calls == ["boom 8", "flaky", "flaky"]  # the child was not run again


def test_a_finished_run_id_called_for_its_state_gives_its_recorded_result(store) -> None:
    @flow
    def etl(n: int) -> int:
        return double(n)

    fixed = etl.with_options(run_id="day-1")
    assert fixed(2) == 4
    state = fixed(2, return_state=True)
    assert state.is_completed() and state.result() == 4 and state.run_id == "day-1"
    assert calls == ["double 2"]


# -- a flow returning a state ----------------------------------------------------------------
@flow
def load(rows: list[int]):
    if not rows:
        return Failed(message="no rows")
    return Completed(message=f"{len(rows)} rows", data=sum(rows))


def test_returning_failed_fails_the_run_with_its_message(store) -> None:
    with pytest.raises(FlowRunFailed, match="flow 'load' returned Failed: no rows") as raised:
        load([])
    run = only_run(store)
    assert raised.value.run_id == run.id and isinstance(raised.value.__cause__, FailedState)
    assert run.state == "Failed"
    error = json.loads(run.error)
    assert error["message"] == "no rows" and error["type"] == "stead.errors.FailedState"
    assert history(store, run.id)[-1] == ("Failed", "no rows")


def test_returning_failed_to_a_caller_asking_for_the_state(store) -> None:
    state = load([], return_state=True)
    assert state.is_failed() and state.message == "no rows"
    with pytest.raises(FlowRunFailed, match="no rows"):
        state.result()


def test_runs_show_shows_the_returned_failure_message(store, backend: str) -> None:
    if backend == "http":
        pytest.skip("the CLI reads the database itself; the data is checked above")
    with pytest.raises(FlowRunFailed):
        load([])
    run = only_run(store_for())
    shown = subprocess.run([sys.executable, "-m", "stead.cli.main", "runs", "show", run.id],
                           capture_output=True, text=True, timeout=60,
                           env={**os.environ, "COLUMNS": "200"})
    assert shown.returncode == 0, shown.stderr
    assert "Failed" in shown.stdout and "no rows" in shown.stdout


def test_returning_completed_records_its_data_as_the_result_and_its_message(store) -> None:
    assert load([1, 2, 3]) == 6
    run = only_run(store)
    assert run.state == "Completed" and decode(run.result) == 6
    assert history(store, run.id)[-1] == ("Completed", "3 rows")
    again = load.with_options(run_id=run.id)  # the recorded result is the answer
    assert again([1, 2, 3]) == 6


def test_a_child_flow_returning_failed_fails_its_parent_at_that_step(store) -> None:
    @flow
    def child() -> object:
        return Failed(message="no rows")

    @flow
    def parent() -> object:
        return child()

    with pytest.raises(FlowRunFailed, match="flow 'child' returned Failed: no rows"):
        parent()
    error = json.loads(only_run(store, "parent").error)
    assert error["step"] == "1" and error["rerun"] == ["1"]  # resuming runs the child again
    assert json.loads(only_run(store, "child").error)["message"] == "no rows"


def test_a_returned_failed_state_is_final_the_flow_is_not_retried(store) -> None:
    attempts = []

    @flow(retries=2)
    def check() -> object:
        attempts.append(1)
        return Failed(message="not yet")

    with pytest.raises(FlowRunFailed):
        check()
    assert len(attempts) == 1


def test_returning_a_tasks_failed_state_fails_the_run_with_the_tasks_error(store) -> None:
    @flow
    def etl() -> object:
        return boom(4, return_state=True)

    with pytest.raises(ValueError, match="bad 4"):
        etl()
    run = only_run(store)
    assert run.state == "Failed" and json.loads(run.error)["step"] == "1"
    assert json.loads(run.error)["rerun"] == ["1"]  # resuming runs that task again


def test_returning_states_fails_the_run_if_any_failed(store) -> None:
    @flow
    def etl() -> object:
        return [double(1, return_state=True), boom(2, return_state=True)]

    with pytest.raises(ValueError, match="bad 2"):
        etl()
    run = only_run(store)
    assert run.state == "Failed" and history(store, run.id)[-1] == ("Failed", "1/2 states failed")

    @flow
    def fine() -> object:
        return [double(1, return_state=True), double(2, return_state=True)]

    assert fine() == [2, 4]


def test_returning_cancelled_cancels_the_run(store) -> None:
    @flow
    def nightly() -> object:
        return Cancelled(message="holiday")

    with pytest.raises(FlowRunStopped, match="returned Cancelled: holiday") as raised:
        nightly()
    run = only_run(store)
    assert raised.value.state == "Cancelled" and run.state == "Cancelled"
    assert [s for s, _ in history(store, run.id)][-2:] == ["Cancelling", "Cancelled"]
    assert nightly(return_state=True).is_cancelled()


def test_returning_a_state_that_is_not_final_fails_the_run_saying_what_to_return(store) -> None:
    @flow
    def odd() -> object:
        return Running()

    with pytest.raises(ConfigError, match="returned a Running state, which is not a final"):
        odd()
    assert only_run(store).state == "Failed"


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.booleans(), st.integers(-5, 5)), min_size=1, max_size=5))
def test_returned_states_fail_the_run_exactly_when_one_of_them_failed(
        store, outcomes: list[tuple[bool, int]]) -> None:
    states = [Completed(data=n) if ok else Failed(message=f"bad {n}") for ok, n in outcomes]

    @flow
    def aggregate() -> object:
        return list(states)

    result = aggregate(return_state=True)
    run = store.get_run(result.run_id)
    failures = [n for ok, n in outcomes if not ok]
    if failures:
        assert result.is_failed() and run.state == "Failed"
        assert result.message == f"{len(failures)}/{len(outcomes)} states failed"
        assert json.loads(run.error)["message"] == f"bad {failures[0]}"  # the first failure
    else:
        assert result.is_completed() and run.state == "Completed"
        assert result.result() == decode(run.result) == [n for _, n in outcomes]

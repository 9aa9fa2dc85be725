"""Flows and tasks, retries, timeouts, subflows, async, run names, parameters, logging:
written as Prefect 3's docs write them, with `stead` in place of `prefect`."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from pydantic import BaseModel

from stead.core.runtime import store_for
from stead.store.base import RunFilter
from tests.prefect_style.registry import Difference, differs, unchanged

DIFFERENCES = [
    Difference("invalid_parameters",
               "a flow called with a parameter its annotation refuses raises "
               "stead.ParameterError (a TypeError) before any run is recorded",
               "Prefect creates the run and fails it with ParameterTypeError; Stead records "
               "nothing for a call that could never run, so nothing has to be cleaned up"),
]


class Model(BaseModel):
    """A flow parameter's type (at module level, where Prefect users define them)."""

    name: str
    layers: int = 2


def runs(flow_name: str) -> list:
    return store_for().list_runs(RunFilter(flow_name=flow_name, limit=100))


@unchanged
def test_tasks_in_a_flow() -> None:
    """A flow calls tasks like functions; calling the flow returns its return value."""
    from stead import flow, task

    @task
    def extract() -> list[int]:
        return [3, 1, 2]

    @task
    def transform(rows: list[int]) -> list[int]:
        return sorted(rows)

    @flow
    def etl() -> list[int]:
        return transform(extract())

    assert etl() == [1, 2, 3]
    [run] = runs("etl")
    assert run.state == "Completed"
    assert [s.name for s in store_for().load_steps(run.id).values()] == ["extract",
                                                                          "transform"]


@unchanged
def test_flow_retries() -> None:
    """@flow(retries=2): a flow that raises is run again, up to twice more."""
    from stead import flow

    attempts = []

    @flow(retries=2, retry_delay_seconds=0)
    def troublesome() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise RuntimeError("oops")
        return "finally"

    assert troublesome() == "finally"
    assert len(attempts) == 3


@unchanged
def test_task_retries_with_a_list_of_delays() -> None:
    """retry_delay_seconds=[...]: one delay per retry; the task succeeds on its third try."""
    from stead import flow, task

    tries = []

    @task(retries=4, retry_delay_seconds=[0, 0.01, 0.02, 0.04])
    def mercurial() -> int:
        tries.append(1)
        if tries.count(1) < 3:
            raise ConnectionError("503")
        return 200

    @task
    def steady() -> str:
        tries.append(0)
        return "ok"

    @flow
    def workflow() -> tuple:
        return steady(), mercurial()

    assert workflow() == ("ok", 200)
    assert tries == [0, 1, 1, 1]   # the steady task did not run again


@unchanged
def test_exponential_backoff_from_prefect_tasks() -> None:
    """`from prefect.tasks import exponential_backoff`: retries wait 1x, 2x, 4x the factor."""
    from stead import flow, task
    from stead.tasks import exponential_backoff

    tries = []

    @task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=0.01))
    def flaky() -> str:
        tries.append(time.monotonic())
        if len(tries) < 4:
            raise ConnectionError("try again")
        return "done"

    @flow
    def backoff() -> str:
        return flaky()

    assert backoff() == "done"
    assert len(tries) == 4
    assert exponential_backoff(backoff_factor=10)(3) == [10, 20, 40]


@unchanged
def test_retry_condition_fn() -> None:
    """retry_condition_fn decides from the failed state: a 404 is not retried, a 503 is."""
    from stead import flow, task

    class HTTPError(Exception):
        def __init__(self, status: int) -> None:
            super().__init__(f"HTTP {status}")
            self.status = status

    def retry_server_errors(task, task_run, state) -> bool:
        try:
            state.result()
        except HTTPError as exc:
            return exc.status >= 500
        return False

    calls: dict[str, int] = {}

    @task(retries=3, retry_delay_seconds=0, retry_condition_fn=retry_server_errors)
    def fetch(path: str, status: int) -> str:
        calls[path] = calls.get(path, 0) + 1
        if calls[path] < 3:
            raise HTTPError(status)
        return path

    @flow
    def crawl() -> list[str]:
        got = [fetch("/busy", 503)]
        try:
            fetch("/missing", 404)
        except HTTPError:
            got.append("404 not retried")
        return got

    assert crawl() == ["/busy", "404 not retried"]
    assert calls == {"/busy": 3, "/missing": 1}


@unchanged
def test_task_timeout() -> None:
    """timeout_seconds on a task: a slow call fails with a TimeoutError the flow can catch."""
    from stead import flow, task

    @task(timeout_seconds=0.2)
    def slow() -> str:
        time.sleep(5)
        return "too late"

    @flow
    def guarded() -> str:
        try:
            return slow()
        except TimeoutError:
            return "timed out"

    assert guarded() == "timed out"


@unchanged
def test_flow_timeout() -> None:
    """timeout_seconds on a flow: the run fails and the caller gets a TimeoutError."""
    from stead import flow

    @flow(timeout_seconds=0.3)
    def overdue() -> None:
        time.sleep(5)

    with pytest.raises(TimeoutError):
        overdue()
    assert runs("overdue")[0].state == "Failed"


@unchanged
def test_subflow() -> None:
    """A flow called in a flow is a subflow: a run of its own whose parent is the caller."""
    from stead import flow, runtime, task

    @task
    def double(x: int) -> int:
        return 2 * x

    @flow
    def child(x: int) -> dict:
        return {"value": double(x), "parent": runtime.flow_run.parent_flow_run_id}

    @flow
    def parent() -> dict:
        return {"me": runtime.flow_run.id, "child": child(21)}

    out = parent()
    assert out["child"]["value"] == 42
    assert out["child"]["parent"] == out["me"]
    [sub] = runs("child")
    assert sub.parent_id == out["me"] and sub.state == "Completed"


@unchanged
def test_failing_subflow_is_an_exception_in_the_parent() -> None:
    """A subflow that fails raises in its parent, which may handle it and complete."""
    from stead import flow

    @flow
    def shaky() -> None:
        raise ValueError("no data today")

    @flow
    def resilient() -> str:
        try:
            shaky()
        except ValueError as exc:
            return f"handled: {exc}"
        return "no error"

    assert resilient() == "handled: no data today"
    assert runs("shaky")[0].state == "Failed"
    assert runs("resilient")[0].state == "Completed"


@unchanged
def test_async_flow_with_gather() -> None:
    """An async flow awaits async tasks; asyncio.gather runs them concurrently."""
    from stead import flow, task

    @task
    async def fetch(city: str) -> str:
        await asyncio.sleep(0.01)
        return city.upper()

    @flow
    async def forecast(cities: list[str]) -> list[str]:
        return list(await asyncio.gather(*(fetch(c) for c in cities)))

    assert asyncio.run(forecast(["oslo", "lima"])) == ["OSLO", "LIMA"]
    [run] = runs("forecast")
    assert len(store_for().load_steps(run.id)) == 2


@unchanged
def test_flow_run_name_template() -> None:
    """flow_run_name="report-{day}" names the run from its parameters."""
    from stead import flow, runtime

    @flow(flow_run_name="report-{day}-{region}")
    def report(day: str, region: str = "eu") -> str | None:
        return runtime.flow_run.name

    assert report("monday") == "report-monday-eu"
    assert runs("report")[0].name == "report-monday-eu"


@unchanged
def test_task_run_name_function_reads_the_runtime() -> None:
    """A task_run_name function with no argument reads prefect.runtime, as Prefect shows."""
    from stead import flow, runtime, task

    def name_from_runtime() -> str:
        params = runtime.task_run.parameters
        return f"{runtime.flow_run.flow_name}-{runtime.task_run.task_name}-{params['table']}"

    @task(task_run_name=name_from_runtime)
    def load(table: str) -> str | None:
        return runtime.task_run.name

    @flow
    def warehouse() -> list:
        return [load("orders"), load("users")]

    assert warehouse() == ["warehouse-load-orders", "warehouse-load-users"]


@unchanged
def test_pydantic_parameter_validation() -> None:
    """Parameters are validated and coerced by their type hints, pydantic models included."""
    from stead import flow

    @flow
    def train(model: Model, epochs: int, rate: float = 0.1) -> tuple:
        return model, epochs, rate

    assert train({"name": "tiny"}, "3") == (Model(name="tiny", layers=2), 3, 0.1)

    @flow(validate_parameters=False)
    def raw(epochs: int) -> object:
        return epochs

    assert raw("3") == "3"


@differs
def test_invalid_parameters() -> None:
    from stead import ParameterError, flow

    @flow
    def train(epochs: int) -> int:
        return epochs

    with pytest.raises(ParameterError, match="epochs"):
        train("many")
    assert runs("train") == []


@unchanged
def test_log_prints() -> None:
    """@flow(log_prints=True): print() lines inside the flow and its tasks are run logs."""
    from stead import flow, task

    @task
    def greet(name: str) -> None:
        print(f"hello {name}")

    @flow(log_prints=True)
    def chatty() -> None:
        print("starting")
        greet("marvin")

    chatty.with_options(run_id="chatty-1")()
    messages = [line.message for line in store_for().read_logs("chatty-1")]
    assert "starting" in messages and "hello marvin" in messages


@unchanged
def test_get_run_logger() -> None:
    """get_run_logger() inside flows and tasks: its lines are stored with the run."""
    from stead import flow, get_run_logger, task

    @task
    def count(rows: list[int]) -> int:
        get_run_logger().warning("counting %d rows", len(rows))
        return len(rows)

    @flow
    def audited() -> int:
        get_run_logger().info("audit starts")
        return count([1, 2, 3])

    assert audited.with_options(run_id="audited-1")() == 3
    lines = [(line.level, line.message) for line in store_for().read_logs("audited-1")]
    assert (logging.INFO, "audit starts") in lines
    assert (logging.WARNING, "counting 3 rows") in lines


@unchanged
def test_flow_options_and_with_options() -> None:
    """name=, version=, description= on @flow; with_options() makes a changed copy."""
    from stead import flow, task

    @task(name="pull")
    def pull_rows() -> int:
        return 1

    @flow(name="nightly-etl", version="2.1", description="Loads last night's rows.")
    def etl() -> int:
        return pull_rows() + pull_rows.with_options(name="pull-again", retries=2)()

    assert etl.name == "nightly-etl" and etl.version == "2.1"
    assert etl.description == "Loads last night's rows."
    assert etl() == 2
    again = etl.with_options(name="etl-copy")
    assert again.name == "etl-copy" and again() == 2
    [run] = runs("nightly-etl")
    assert [s.name for s in store_for().load_steps(run.id).values()] == ["pull", "pull-again"]


@unchanged
def test_task_called_outside_a_flow() -> None:
    """Prefect 3 runs a task called outside a flow as a task run of its own."""
    from stead import task

    @task(retries=1, retry_delay_seconds=0)
    def add(a: int, b: int) -> int:
        return a + b

    assert add(2, 3) == 5
    assert [r.state for r in runs("add")] == ["Completed"]


@unchanged
def test_task_fn_for_unit_tests() -> None:
    """task.fn calls the bare function: what Prefect's docs suggest for unit tests."""
    from stead import task

    @task
    def add(a: int, b: int) -> int:
        return a + b

    assert add.fn(1, 2) == 3
    assert runs("add") == []


class Forecast(BaseModel):
    """A task's result type: pydantic models round-trip through the recorded result."""

    city: str
    highs: list[float]


@unchanged
def test_pydantic_results() -> None:
    """A task returning a pydantic model: the flow gets the model; a resumed run too."""
    from stead import flow, task

    @task
    def fetch(city: str) -> Forecast:
        return Forecast(city=city, highs=[21.5, 23.0])

    @flow
    def weather(city: str) -> float:
        forecast = fetch(city)
        assert isinstance(forecast, Forecast)
        return max(forecast.highs)

    assert weather.with_options(run_id="weather-1")("Lisbon") == 23.0
    assert weather.with_options(run_id="weather-1")("Lisbon") == 23.0   # from the record


@unchanged
def test_retried_flow_with_a_subflow() -> None:
    """A parent flow retried after its subflow completed: the retry finishes the work."""
    from stead import flow

    attempts = []

    @flow
    def load() -> int:
        return 10

    @flow(retries=1, retry_delay_seconds=0)
    def parent() -> int:
        value = load()
        attempts.append(value)
        if len(attempts) == 1:
            raise RuntimeError("flaky after the subflow")
        return value * 2

    assert parent() == 20
    assert attempts == [10, 10]

"""Run names and metadata: `flow_run_name`, `task_run_name`, `version`, `description` and
`validate_parameters`, as a user sees them in the store (on every backend, see
tests/core/conftest.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from stead import flow, task
from stead.core.runtime import store_for
from stead.core.serialization import encode
from stead.errors import ConfigError, ParameterError
from stead.store.base import RunFilter, RunRecord, Store, WorkerRecord


def only_run(flow_name: str | None = None) -> RunRecord:
    [run] = store_for().list_runs(RunFilter(flow_name=flow_name, parent_id=None))
    return run


def top_runs(flow_name: str) -> list[RunRecord]:
    return [r for r in store_for().list_runs(RunFilter(flow_name=flow_name))
            if r.parent_id is None]


@task(task_run_name="fetch-{url}-{attempt}")
def fetch(url: str, attempt: int = 1) -> str:
    return url.upper()


@flow(flow_run_name="etl-{day}-{limit}", version="2.1")
def etl(day: str, limit: int = 10) -> list[str]:
    return [fetch(day), fetch(day, attempt=2)]


# -- flow_run_name --------------------------------------------------------------------------
def test_a_template_names_the_run_with_its_parameters_and_defaults() -> None:
    assert etl("2026-11-22") == ["2026-11-22"] * 2
    run = only_run("etl")
    assert run.name == "etl-2026-11-22-10"  # the default of `limit` filled in
    assert run.version == "2.1"
    assert store_for().get_run(run.id).name == "etl-2026-11-22-10"
    assert etl.flow_run_name == "etl-{day}-{limit}"  # the option as given, as in Prefect
    assert fetch.task_run_name == "fetch-{url}-{attempt}"


def test_a_template_uses_format_specs_attributes_and_converted_arguments() -> None:
    @flow(flow_run_name="report-{day:%Y-%m}-{day.day}-{sizes[1]:03d}")
    def report(day: datetime, sizes: list[int]) -> None:
        return None

    report("2026-11-22T08:00:00", ["1", "7"])  # converted by the annotations first
    assert only_run("report").name == "report-2026-11-22-007"


def test_an_unknown_field_is_refused_when_the_flow_is_decorated() -> None:
    with pytest.raises(ConfigError, match=r"flow 'load': flow_run_name 'load-\{dya\}' refers "
                                          r"to \{dya\}, which is not one of its parameters "
                                          r"\(it has: day\)"):
        @flow(flow_run_name="load-{dya}")
        def load(day: str) -> None: ...
    with pytest.raises(ConfigError, match=r"positional field \{0\}"):
        @flow(flow_run_name="load-{0}")
        def load2(day: str) -> None: ...
    with pytest.raises(ConfigError, match="not a valid template"):
        @flow(flow_run_name="load-{day")
        def load3(day: str) -> None: ...
    with pytest.raises(ConfigError, match=r"task 'get': task_run_name 'get-\{x\}' refers to \{x\}"):
        @task(task_run_name="get-{x}")
        def get(url: str) -> None: ...
    assert store_for().list_runs(RunFilter()) == []


def test_a_template_that_cannot_be_filled_in_fails_the_call_before_any_run() -> None:
    @flow(flow_run_name="batch-{size:d}")
    def batch(size: Any) -> int:
        return 1

    with pytest.raises(ParameterError, match=r"flow 'batch': flow_run_name 'batch-\{size:d\}' "
                                             r"could not be filled in.*ValueError"):
        batch("many")
    assert store_for().list_runs(RunFilter()) == []  # nothing was recorded


def test_fields_may_come_from_keyword_arguments() -> None:
    @flow(flow_run_name="sync-{table}")
    def sync(**options: Any) -> int:
        return len(options)

    assert sync(table="orders", full=True) == 2
    assert only_run("sync").name == "sync-orders"
    with pytest.raises(ParameterError, match=r"refers to \{table\}, which this call did not"):
        sync(full=True)
    assert len(store_for().list_runs(RunFilter())) == 1


def test_a_callable_of_nothing_or_of_the_parameters_names_the_run() -> None:
    @flow(flow_run_name=lambda: "fixed-name")
    def plain(n: int) -> int:
        return n

    @flow(flow_run_name=lambda params: f"n-is-{params['n']}-{params['k']}")
    def with_params(n: int, k: int = 3) -> int:
        return n

    plain(1)
    with_params(4)
    assert only_run("plain").name == "fixed-name"
    assert only_run("with_params").name == "n-is-4-3"


def test_a_callable_that_fails_or_returns_no_text_fails_the_call_before_any_run() -> None:
    @flow(flow_run_name=lambda params: 1 / 0)
    def broken(n: int) -> int:
        return n

    @flow(flow_run_name=lambda: 42)
    def not_text(n: int) -> int:
        return n

    with pytest.raises(ParameterError, match=r"flow_run_name function .* raised "
                                             "ZeroDivisionError"):
        broken(1)
    with pytest.raises(ParameterError, match="returned int 42; it must return the name as a "
                                             "str"):
        not_text(1)
    with pytest.raises(ConfigError, match="must take no argument, or one"):
        @flow(flow_run_name=lambda a, b: "x")
        def two(n: int) -> None: ...
    with pytest.raises(ConfigError, match=r"must be a template .* or a function"):
        @flow(flow_run_name=7)  # type: ignore[arg-type]
        def seven(n: int) -> None: ...
    assert store_for().list_runs(RunFilter()) == []


def test_no_name_given_records_none_and_with_options_can_add_one() -> None:
    @flow
    def anon(n: int) -> int:
        return n

    anon(1)
    assert only_run("anon").name is None and only_run("anon").version is None
    anon.with_options(flow_run_name="anon-{n}", version="3")(2)
    names = {r.name: r.version for r in top_runs("anon")}
    assert names == {None: None, "anon-2": "3"}


@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(day=st.text(max_size=40))
def test_any_text_parameter_gives_a_name_the_store_keeps(day: str) -> None:
    @flow(flow_run_name="day={day}")
    def named(day: str) -> str:
        return day

    run_id = f"r{abs(hash(day))}"
    named.with_options(run_id=run_id)(day)
    assert store_for().get_run(run_id).name == "day=" + day.replace("\x00", "")


# -- version, description ---------------------------------------------------------------------
def test_the_version_is_recorded_on_each_run_and_kept_on_resume() -> None:
    attempts: list[int] = []

    @task
    def flaky() -> int:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("first time fails")
        return 1

    @flow(version="1.0")
    def job() -> int:
        return flaky()

    with pytest.raises(RuntimeError):
        job.with_options(run_id="job-1")()
    assert store_for().get_run("job-1").version == "1.0"
    assert job.with_options(version="1.1").resume("job-1") == 1
    assert store_for().get_run("job-1").version == "1.0"  # the version it started with
    with pytest.raises(ConfigError, match="version must be text"):
        flow(version=["1"])(lambda: None)  # type: ignore[call-overload]
    assert flow(version=3)(lambda: None).version == "3"


def test_the_description_defaults_to_the_docstrings_first_paragraph() -> None:
    @flow
    def documented() -> None:
        """Load the day's orders
        into the warehouse.

        Details that a listing does not show.
        """

    @task(description="Given explicitly")
    def described() -> None:
        """Ignored."""

    @flow
    def bare() -> None:
        return None

    assert documented.description == "Load the day's orders into the warehouse."
    assert described.description == "Given explicitly"
    assert bare.description is None
    assert documented.with_options(description="other").description == "other"


# -- task_run_name ----------------------------------------------------------------------------
def test_task_calls_record_their_display_names_and_keep_their_task_names() -> None:
    etl("d1")
    steps = store_for().load_steps(only_run("etl").id)
    assert [(s.name, s.run_name) for s in steps.values()] == [
        ("fetch", "fetch-d1-1"), ("fetch", "fetch-d1-2")]


def test_submitted_and_async_tasks_are_named_from_their_resolved_arguments() -> None:
    @task
    def make(i: int) -> int:
        return i * 10

    @task(task_run_name=lambda params: f"use-{params['value']}")
    def use(value: int) -> int:
        return value + 1

    @task(task_run_name="wait-{n}")
    async def wait(n: int) -> int:
        await asyncio.sleep(0)
        return n

    @flow
    def fan_out() -> list[int]:
        firsts = [make.submit(i) for i in range(3)]
        return [use.submit(f).result() for f in firsts]

    @flow
    async def async_flow() -> list[int]:
        return list(await asyncio.gather(wait(1), wait(2)))

    assert fan_out() == [1, 11, 21]
    assert asyncio.run(async_flow()) == [1, 2]
    named = {s.run_name for s in store_for().load_steps(only_run("fan_out").id).values()}
    assert named == {None, "use-0", "use-10", "use-20"}  # the futures' values, not futures
    waits = store_for().load_steps(only_run("async_flow").id).values()
    assert sorted(s.run_name for s in waits) == ["wait-1", "wait-2"]


def test_a_child_flow_step_shows_the_child_runs_name() -> None:
    @flow(flow_run_name="part-{i}")
    def part(i: int) -> int:
        return i

    @flow
    def whole() -> int:
        return part(1) + part(2)

    assert whole() == 3
    root = only_run("whole")
    steps = store_for().load_steps(root.id)
    assert [(s.kind, s.run_name) for s in steps.values()] == [("flow", "part-1"),
                                                              ("flow", "part-2")]
    children = store_for().list_runs(RunFilter(parent_id=root.id))
    assert sorted(c.name or "" for c in children) == ["part-1", "part-2"]


def test_a_task_name_that_cannot_be_made_fails_that_call_and_nothing_runs() -> None:
    ran: list[int] = []

    @task(task_run_name="t-{n:d}")
    def typed(n: Any) -> None:
        ran.append(1)

    @flow
    def caller() -> str:
        try:
            typed("x")
        except ParameterError as exc:
            return str(exc)
        return "no error"

    assert "task 'typed': task_run_name 't-{n:d}' could not be filled in" in caller()
    assert ran == []
    assert store_for().load_steps(only_run("caller").id) == {}


# -- enqueued and claimed runs --------------------------------------------------------------
@flow(flow_run_name="queued-{n}", version="9")
def queued(n: int) -> int:
    return n


def test_an_enqueued_run_is_named_when_enqueued_and_a_claimed_unnamed_run_when_started(
        store: Store) -> None:
    handle = queued.enqueue(5, queue="etl")
    assert store.get_run(handle).name == "queued-5" and store.get_run(handle).version == "9"
    # A run created without a name (as a deployment creates them) is named by its executor.
    store.create_run(RunRecord(id="bare", flow_name="queued", state="Pending",
                               entrypoint=queued.entrypoint, params=encode({"n": 7}),
                               queue="etl"))
    worker = WorkerRecord(id="w", name="w", host="h", pid=1, queues='["etl"]', concurrency=2,
                          state="running", started_at=0.0, heartbeat_at=0.0)
    claimed = {r.id: r for r in store.claim_runs(["etl"], worker, "owner", 2, 1.0, 30.0)}
    assert queued.execute_claimed(claimed["bare"], store) == 7
    assert store.get_run("bare").name == "queued-7" and store.get_run("bare").version == "9"
    assert queued.execute_claimed(claimed[str(handle)], store) == 5
    assert store.get_run(handle).name == "queued-5"


@flow(flow_run_name="q-{n:d}")
def strict(n: Any) -> None:
    return None


def test_a_bad_template_refuses_the_enqueue() -> None:
    with pytest.raises(ParameterError, match="could not be filled in"):
        strict.enqueue("x", queue="etl")
    assert store_for().list_runs(RunFilter()) == []


# -- validate_parameters --------------------------------------------------------------------
class Order(BaseModel):
    id: int
    total: float


def test_direct_calls_convert_arguments_as_prefect_documents() -> None:
    seen: list[Any] = []

    @flow
    def convert(n: int, order: Order, at: datetime) -> None:
        seen.extend([n, order, at])

    convert("3", {"id": "7", "total": 2}, "2026-11-22T08:30:00")
    assert seen == [3, Order(id=7, total=2.0), datetime(2026, 11, 22, 8, 30)]
    with pytest.raises(ParameterError, match="parameter 'n' expects int"):
        convert("three", {"id": 1, "total": 1}, "2026-11-22T08:30:00")


SEEN: list[Any] = []


@flow(validate_parameters=False)
def raw(n: int, order: Order) -> None:
    SEEN.extend([n, order])


def test_validate_parameters_false_passes_arguments_as_given() -> None:
    seen = SEEN
    seen.clear()
    raw("3", {"id": "7", "total": 2})
    assert seen == ["3", {"id": "7", "total": 2}]
    raw("three", {"anything": True})  # not checked either
    assert seen[2:] == ["three", {"anything": True}]
    handle = raw.enqueue("not-a-number", {"id": 1}, queue="etl")
    assert store_for().get_run(handle).state == "Pending"


def test_a_deployments_run_is_named_by_the_worker_that_executes_it(store: Store) -> None:
    import time

    from stead.deployments.registry import deploy, run_deployment
    from stead.worker.child import execute

    deploy(store, queued, name="queued-dep", now=time.time(), queue="etl")
    run, _ = run_deployment(store, "queued-dep", time.time(), params={"n": 8})
    assert run.name is None  # created from the deployment, without the flow's code
    worker = WorkerRecord(id="w", name="w", host="h", pid=1, queues='["etl"]', concurrency=1,
                          state="running", started_at=0.0, heartbeat_at=0.0)
    [claimed] = store.claim_runs(["etl"], worker, "owner", 1, time.time(), 30.0)
    assert execute(store, claimed).state == "Completed"  # what a worker's child process does
    done = store.get_run(run.id)
    assert (done.name, done.version, done.deployment) == ("queued-8", "9", "queued-dep")

"""State change hooks on flows and tasks: when each runs, what it gets, and that a failing
hook changes nothing but the run's log. (Crashes of killed processes: tests/worker/.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stead import flow, task
from stead.core.runtime import store_for
from stead.errors import ConfigError

Calls = list[tuple[Any, ...]]


def recorder(calls: Calls, kind: str) -> Any:
    def hook(obj: Any, run: Any, state: Any) -> None:
        calls.append((kind, obj.name, run, state))
    hook.__qualname__ = f"record_{kind}"
    return hook


def names(calls: Calls) -> list[str]:
    return [c[0] for c in calls]


def test_flow_hooks_get_the_flow_its_run_and_the_state_in_order() -> None:
    calls: Calls = []

    @flow(on_running=recorder(calls, "running"), on_completion=[recorder(calls, "done")],
          on_failure=recorder(calls, "failed"))
    def etl(day: str, rows: int = 3) -> int:
        calls.append(("body",))
        return rows * 2

    assert etl.with_options(run_id="etl-1")("2026-11-21") == 6
    assert names(calls) == ["running", "body", "done"]
    _, flow_name, run, state = calls[2]
    assert flow_name == "etl" and calls[2][1] == etl.name
    assert (run.id, run.name, run.flow_name) == ("etl-1", "etl-1", "etl")
    assert run.parameters == {"day": "2026-11-21", "rows": 3}
    assert state.is_completed() and not state.is_failed() and state.name == "Completed"
    assert state.result() == 6
    assert calls[0][3].is_running()
    # The run's outcome was recorded before on_completion ran.
    assert store_for().get_run("etl-1").state == "Completed"


def test_on_failure_runs_once_after_the_last_retry_with_the_exception() -> None:
    calls: Calls = []

    @flow(retries=2, on_failure=recorder(calls, "failed"), on_running=recorder(calls, "running"))
    def flaky() -> None:
        raise ValueError("no rows")

    with pytest.raises(ValueError, match="no rows"):
        flaky()
    assert names(calls) == ["running", "running", "running", "failed"]
    state = calls[-1][3]
    assert state.is_failed() and state.message == "ValueError: no rows"
    assert isinstance(state.data, ValueError)
    assert state.result(raise_on_failure=False) is state.data
    with pytest.raises(ValueError):
        state.result()


def test_a_failing_hook_is_logged_with_its_traceback_and_changes_nothing() -> None:
    calls: Calls = []

    def broken(flow: Any, flow_run: Any, state: Any) -> None:
        raise RuntimeError("the webhook is down")

    @flow(on_completion=[broken, recorder(calls, "done")], on_running=broken)
    def fine() -> str:
        return "ok"

    assert fine.with_options(run_id="fine-1")() == "ok"
    assert names(calls) == ["done"]  # the next hook still ran
    store = store_for()
    assert store.get_run("fine-1").state == "Completed"
    lines = [log for log in store.read_logs("fine-1") if "the webhook is down" in log.message]
    assert len(lines) == 2 and all(log.level == 40 for log in lines)
    assert "on_running hook 'test_a_failing_hook_is_logged_with_its_traceback_and_changes_" \
           "nothing.<locals>.broken' raised RuntimeError" in lines[0].message
    assert "Traceback (most recent call last)" in lines[1].message
    assert "the run's state stays Completed" in lines[1].message


def test_decorator_style_registers_and_returns_the_function_and_with_options_keeps_it() -> None:
    calls: Calls = []

    @flow
    def nightly() -> int:
        return 1

    @nightly.on_completion
    def report(flow: Any, flow_run: Any, state: Any) -> None:
        calls.append(("report", flow.name, state.name))

    @nightly.on_failure
    def alarm(flow: Any, flow_run: Any, state: Any) -> None:
        calls.append(("alarm",))

    assert callable(report) and report.__name__ == "report"  # the function itself
    nightly()
    nightly.with_options(name="nightly-copy")()
    assert calls == [("report", "nightly", "Completed"), ("report", "nightly-copy", "Completed")]
    assert nightly.hooks["on_failure"] == [alarm]


def test_hook_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="on_failure must be a function or a list"):
        flow(on_failure="notify")(lambda: None)
    with pytest.raises(ConfigError, match="is not callable"):
        task(on_completion=[print, 3])(lambda: None)
    with pytest.raises(ConfigError, match="unknown option on_crashed="):
        task(on_crashed=print)(lambda: None)  # as in Prefect: crash hooks belong to flows


def test_task_hooks_run_per_attempt_and_once_at_the_final_outcome() -> None:
    calls: Calls = []
    attempts = {"n": 0}

    @task(retries=2, on_running=recorder(calls, "running"),
          on_failure=recorder(calls, "failed"), on_completion=recorder(calls, "done"))
    def fetch(url: str) -> str:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionError("reset")
        return url.upper()

    @task(on_failure=recorder(calls, "failed"))
    def broken(x: int) -> None:
        raise KeyError(x)

    @flow
    def crawl() -> str:
        page = fetch("a.example")
        try:
            broken(7)
        except KeyError:
            pass
        return page

    assert crawl.with_options(run_id="crawl-1")() == "A.EXAMPLE"
    assert names(calls) == ["running", "running", "running", "done", "failed"]
    _, task_name, task_run, state = calls[3]
    assert task_name == "fetch" and state.result() == "A.EXAMPLE"
    assert (task_run.id, task_run.name, task_run.flow_run_id) == ("crawl-1/1", "fetch-1",
                                                                  "crawl-1")
    assert task_run.parameters == {"url": "a.example"} and task_run.run_count == 3
    failed = calls[4]
    assert failed[1] == "broken" and isinstance(failed[3].data, KeyError)
    assert failed[2].id == "crawl-1/2"


def test_a_resumed_run_runs_each_hook_once_per_transition_and_replays_none() -> None:
    calls: Calls = []
    fail = {"flow": True}

    @task(on_completion=recorder(calls, "task done"))
    def extract() -> int:
        return 5

    @flow(on_failure=recorder(calls, "failed"), on_completion=recorder(calls, "done"),
          on_running=recorder(calls, "running"))
    def pipeline() -> int:
        value = extract()
        if fail["flow"]:
            raise RuntimeError("load failed")
        return value

    with pytest.raises(RuntimeError):
        pipeline.with_options(run_id="pipe-1")()
    fail["flow"] = False
    assert pipeline.resume("pipe-1") == 5
    assert pipeline.with_options(run_id="pipe-1")() == 5  # already Completed: no transition
    # extract's step was replayed on resume: its hook did not run again.
    assert names(calls) == ["running", "task done", "failed", "running", "done"]


def test_submitted_and_mapped_tasks_run_their_hooks() -> None:
    done: list[int] = []

    @task
    def square(x: int) -> int:
        return x * x

    @square.on_completion
    def collect(task: Any, task_run: Any, state: Any) -> None:
        done.append(state.result())

    @flow
    def fan() -> int:
        return sum(f.result() for f in square.map(range(5))) + square.submit(10).result()

    assert fan() == 130
    assert sorted(done) == [0, 1, 4, 9, 16, 100]


def test_async_flows_and_tasks_await_async_hooks() -> None:
    calls: list[str] = []

    async def on_done(obj: Any, run: Any, state: Any) -> None:
        await asyncio.sleep(0)
        calls.append(f"{obj.name} {state.name}")

    @task(on_completion=on_done, on_running=lambda t, r, s: calls.append("task running"))
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        return n + 1

    @flow(on_completion=[on_done])
    async def main() -> list[int]:
        return list(await asyncio.gather(fetch(1), fetch(2)))

    assert asyncio.run(main()) == [2, 3]
    assert sorted(calls) == ["fetch Completed", "fetch Completed", "main Completed",
                             "task running", "task running"]


def test_an_interrupted_run_is_recorded_crashed_then_its_on_crashed_hooks_run() -> None:
    calls: Calls = []

    @flow(on_crashed=recorder(calls, "crashed"), on_failure=recorder(calls, "failed"))
    def stopped() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stopped.with_options(run_id="stop-1")()
    assert names(calls) == ["crashed"]
    state = calls[0][3]
    assert state.is_crashed() and state.message == "interrupted by KeyboardInterrupt"
    store = store_for()
    assert store.get_run("stop-1").state == "Crashed"
    assert [log.message for log in store.read_logs("stop-1")
            if "hooks ran" in log.message] == ["on_crashed hooks ran: record_crashed"]


def test_hooks_run_outside_the_run_so_a_task_in_a_hook_is_not_a_step() -> None:
    @task
    def notify(text: str) -> str:
        return text

    @flow(on_completion=lambda f, r, s: notify(f"{r.id} done"))
    def job() -> int:
        return 1

    job.with_options(run_id="job-1")()
    assert list(store_for().load_steps("job-1")) == []


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(failures=st.integers(min_value=0, max_value=4), retries=st.integers(min_value=0,
                                                                           max_value=3))
def test_task_hooks_follow_the_attempts_whatever_the_retries(failures: int,
                                                             retries: int) -> None:
    calls: Calls = []
    left = {"n": failures}

    @task(retries=retries, on_running=recorder(calls, "running"),
          on_failure=recorder(calls, "failed"), on_completion=recorder(calls, "done"))
    def shaky() -> int:
        if left["n"]:
            left["n"] -= 1
            raise OSError("again")
        return 1

    @flow
    def outer() -> int:
        try:
            return shaky()
        except OSError:
            return 0

    assert outer() == (1 if failures <= retries else 0)
    attempts = min(failures, retries) + 1
    final = ["done"] if failures <= retries else ["failed"]
    assert names(calls) == ["running"] * attempts + final


def test_a_child_flow_runs_its_own_hooks_and_its_parent_its_own() -> None:
    calls: Calls = []

    @flow(on_completion=recorder(calls, "child done"))
    def child(n: int) -> int:
        return n + 1

    @flow(on_completion=recorder(calls, "parent done"))
    def parent() -> int:
        return child(1) + child(2)

    assert parent.with_options(run_id="family")() == 5
    assert names(calls) == ["child done", "child done", "parent done"]
    assert [c[2].id for c in calls] == ["family:1", "family:2", "family"]
    assert calls[0][2].parent_id == "family" and calls[0][2].parameters == {"n": 1}

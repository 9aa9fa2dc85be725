"""A task called outside any flow is a standalone task run: recorded, retried, cached, timed.

Every test runs on SQLite, PostgreSQL and remote mode (the `backend` fixture, tests/core).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import stead
from stead import INPUTS, flow, get_logger, task
from stead.core.runtime import store_for
from stead.core.serialization import decode
from stead.core.standalone import TASK_RUN_TAG
from stead.errors import TaskTimeout, UpstreamFailed
from stead.settings import reset_settings
from stead.store.base import Limit, RunFilter, RunRecord

calls: Counter[str] = Counter()


def task_runs(name: str | None = None) -> list[RunRecord]:
    """The standalone task runs recorded so far, oldest first."""
    runs = store_for().list_runs(RunFilter(tag=TASK_RUN_TAG, flow_name=name, limit=1000))
    return sorted(runs, key=lambda r: r.created_at)


@task
def double(x: int) -> int:
    return 2 * x


def test_a_call_outside_a_flow_is_recorded_as_a_run_with_one_step() -> None:
    assert double(21) == 42
    [run] = task_runs()
    assert (run.flow_name, run.state, run.parent_id) == ("double", "Completed", None)
    assert json.loads(run.tags) == [TASK_RUN_TAG]
    assert decode(run.params) == {"x": 21}
    assert run.entrypoint.endswith(":double") and run.ended_at >= run.started_at
    steps = store_for().load_steps(run.id)
    assert list(steps) == ["1"]
    step = steps["1"]
    assert (step.name, step.kind, step.state, step.attempts) == ("double", "task", "Completed", 1)
    assert decode(step.result) == 42 and decode(run.result) == 42
    assert [h.state for h in store_for().run_history(run.id)] == ["Completed"]
    assert stead.get_run(run.id).result(timeout=10) == 42


def test_each_call_is_a_run_of_its_own() -> None:
    assert [double(i) for i in range(3)] == [0, 2, 4]
    runs = task_runs("double")
    assert [decode(r.params)["x"] for r in runs] == [0, 1, 2]
    assert len({r.id for r in runs}) == 3


def test_retries_with_retry_delay_apply() -> None:
    @task(retries=2, retry_delay=0.01)
    def flaky() -> str:
        calls["flaky"] += 1
        if calls["flaky"] < 3:
            raise ConnectionError(f"attempt {calls['flaky']}")
        return "ok"

    calls["flaky"] = 0
    assert flaky() == "ok"
    assert calls["flaky"] == 3
    [run] = task_runs("flaky")
    assert run.state == "Completed"
    step = store_for().get_step(run.id, "1")
    assert (step.state, step.attempts) == ("Completed", 3)
    states = [entry[0] for entry in json.loads(step.history)]
    assert states.count("Retrying") == 2 and states[-1] == "Completed"


def test_failure_raises_the_tasks_own_exception_after_recording_it() -> None:
    @task(retries=1, retry_delay=0)
    def broken(key: str) -> None:
        raise KeyError(key)

    with pytest.raises(KeyError, match="missing") as caught:
        broken("missing")
    assert not type(caught.value).__module__.startswith("stead")
    [run] = task_runs("broken")
    assert run.state == "Failed"
    error = json.loads(run.error)
    assert error["type"] == "builtins.KeyError" and error["step"] == "1"
    assert error["attempts"] == 2
    step = store_for().get_step(run.id, "1")
    assert (step.state, step.attempts) == ("Failed", 2)
    assert any(run.id in note for note in caught.value.__notes__)


def test_timeout_applies() -> None:
    @task(timeout=0.2)
    def hangs() -> None:
        time.sleep(30)

    with pytest.raises(TaskTimeout, match="hangs"):
        hangs()
    [run] = task_runs("hangs")
    assert run.state == "Failed"
    assert json.loads(run.error)["type"] == "stead.errors.TaskTimeout"


def test_a_second_call_with_the_same_inputs_is_cached() -> None:
    @task(cache_policy=INPUTS)
    def lookup(word: str) -> int:
        calls["lookup"] += 1
        return len(word)

    calls["lookup"] = 0
    assert lookup("stead") == 5
    assert lookup("stead") == 5
    assert lookup("prefect") == 7
    assert calls["lookup"] == 2
    first, second, third = task_runs("lookup")
    assert [first.state, second.state, third.state] == ["Completed", "Cached", "Completed"]
    cached = store_for().get_step(second.id, "1")
    assert cached.state == "Cached" and cached.cached_from == f"{first.id}/1"
    assert decode(second.result) == 5


def test_an_expired_cache_entry_runs_the_task_again() -> None:
    @task(cache_policy=INPUTS, cache_expiration=0.05)
    def stamp(x: int) -> int:
        calls["stamp"] += 1
        return x

    calls["stamp"] = 0
    stamp(1)
    time.sleep(0.2)  # past the entry's expiry (no wall-clock limit is asserted)
    stamp(1)
    assert calls["stamp"] == 2
    assert [r.state for r in task_runs("stamp")] == ["Completed", "Completed"]


@task(retries=1, retry_delay=0)
async def fetch(x: int) -> int:
    await asyncio.sleep(0)
    calls["fetch"] += 1
    if calls["fetch"] == 1:
        raise ConnectionError("first attempt")
    return x + 1


def test_an_async_task_is_recorded_when_awaited() -> None:
    calls["fetch"] = 0
    assert asyncio.run(fetch(1)) == 2
    [run] = task_runs("fetch")
    assert run.state == "Completed"
    assert store_for().get_step(run.id, "1").attempts == 2


def test_async_calls_gathered_on_one_loop_are_runs_of_their_own() -> None:
    @task
    async def ping(i: int) -> int:
        await asyncio.sleep(0.01)
        return i

    async def main() -> list[int]:
        return await asyncio.gather(*(ping(i) for i in range(5)))

    assert asyncio.run(main()) == [0, 1, 2, 3, 4]
    runs = task_runs("ping")
    assert sorted(decode(r.result) for r in runs) == [0, 1, 2, 3, 4]
    assert {r.state for r in runs} == {"Completed"}


def test_submit_and_map_outside_a_flow_are_task_runs_started_in_the_background() -> None:
    future = double.submit(5)
    assert future.result() == 10
    futures = double.map([1, 2, 3])
    assert [f.result() for f in futures] == [2, 4, 6]
    runs = task_runs("double")
    assert sorted(decode(r.params)["x"] for r in runs) == [1, 2, 3, 5]
    assert {r.state for r in runs} == {"Completed"}


def test_submit_of_an_async_task_outside_a_flow() -> None:
    calls["fetch"] = 0
    assert fetch.submit(10).result() == 11
    assert [r.state for r in task_runs("fetch")] == ["Completed"]


def test_a_submitted_failure_is_recorded_and_its_dependants_do_not_run() -> None:
    @task
    def explode() -> int:
        raise ValueError("no")

    failed = explode.submit()
    after = double.submit(failed)
    with pytest.raises(ValueError, match="no"):
        failed.result()
    with pytest.raises(UpstreamFailed, match="explode"):
        after.result()
    assert [r.state for r in task_runs("explode")] == ["Failed"]
    assert task_runs("double") == []


def test_tags_are_recorded_and_global_limits_apply() -> None:
    store_for().set_limit(Limit("one-at-a-time", concurrency=1))
    spans: list[tuple[float, float]] = []

    @task(tags=["one-at-a-time"])
    def exclusive(i: int) -> int:
        start = time.monotonic()
        time.sleep(0.05)
        spans.append((start, time.monotonic()))
        return i

    assert [f.result() for f in exclusive.map(range(4))] == [0, 1, 2, 3]
    spans.sort()
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    runs = task_runs("exclusive")
    assert len(runs) == 4
    assert all(json.loads(r.tags) == [TASK_RUN_TAG, "one-at-a-time"] for r in runs)


def test_logs_of_a_standalone_run_are_captured() -> None:
    @task
    def chatty(n: int) -> int:
        get_logger().info("counted %d rows", n)
        return n

    chatty(3)
    [run] = task_runs("chatty")
    lines = store_for().read_logs(run.id)
    assert [(line.step_key, line.message) for line in lines] == [("1", "counted 3 rows")]


def test_prints_are_captured_when_the_task_logs_prints(capsys: pytest.CaptureFixture) -> None:
    @task
    def shout() -> None:
        print("hello from a task run")

    shout.log_prints = True  # type: ignore[attr-defined]  # @task(log_prints=True) once merged
    shout()
    [run] = task_runs("shout")
    assert [line.message for line in store_for().read_logs(run.id)] == ["hello from a task run"]
    assert "hello from a task run" in capsys.readouterr().err  # shown as a log line


def test_nested_task_calls_are_steps_of_the_same_run() -> None:
    @task
    def outer(n: int) -> int:
        return double(n) + double(n + 1)

    assert outer(1) == 6
    [run] = task_runs("outer")
    assert sorted(store_for().load_steps(run.id)) == ["1", "1.1", "1.2"]
    assert task_runs("double") == []  # inside the run: steps, not runs of their own


def test_a_long_call_is_visible_as_running_while_it_runs() -> None:
    release = threading.Event()

    @task
    def waits() -> str:
        release.wait(30)
        return "done"

    worker = threading.Thread(target=waits)
    worker.start()
    try:
        deadline = time.monotonic() + 20
        seen = []
        while not seen and time.monotonic() < deadline:
            seen = [r.state for r in task_runs("waits")]
            time.sleep(0.05)
        assert seen == ["Running"]
    finally:
        release.set()
        worker.join(30)
    assert [r.state for r in task_runs("waits")] == ["Completed"]


def test_an_interrupted_call_is_recorded_crashed() -> None:
    @task
    def interrupted() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert [r.state for r in task_runs("interrupted")] == ["Crashed"]


def test_a_task_called_in_a_flow_is_still_a_step_not_a_task_run() -> None:
    @flow
    def pipeline() -> int:
        return double(4)

    assert pipeline() == 8
    assert task_runs() == []
    [run] = store_for().list_runs(RunFilter())
    assert run.flow_name == "pipeline"


def test_plain_setting_makes_calls_plain_again(monkeypatch: pytest.MonkeyPatch) -> None:
    @task(retries=3, retry_delay=0)
    def once() -> None:
        calls["once"] += 1
        raise RuntimeError("no retry in plain mode")

    monkeypatch.setenv("STEAD_TASKS_OUTSIDE_FLOWS", "plain")
    reset_settings()
    calls["once"] = 0
    assert double(2) == 4
    assert [f.result() for f in double.map([1, 2])] == [2, 4]
    with pytest.raises(RuntimeError):
        once()
    assert calls["once"] == 1
    assert store_for().list_runs(RunFilter()) == []


def test_fn_is_always_the_bare_function() -> None:
    assert double.fn(8) == 16
    assert store_for().list_runs(RunFilter()) == []


def test_an_unknown_mode_is_refused_with_advice(monkeypatch: pytest.MonkeyPatch) -> None:
    from stead.errors import ConfigError

    monkeypatch.setenv("STEAD_TASKS_OUTSIDE_FLOWS", "sometimes")
    reset_settings()
    with pytest.raises(ConfigError, match=r"STEAD_TASKS_OUTSIDE_FLOWS.*record, plain"):
        double(1)


def test_unstorable_arguments_are_recorded_as_a_repr() -> None:
    @task
    def size(lock: object, n: int) -> int:
        return n

    assert size(threading.Lock(), 3) == 3
    [run] = task_runs("size")
    assert "$repr" in json.loads(run.params) and run.state == "Completed"


@settings(max_examples=15, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(st.text(max_size=5), inner, max_size=3),
                    max_leaves=8))
def test_any_storable_value_round_trips_through_a_task_run(value: object) -> None:
    @task
    def echo(v: object) -> object:
        return v

    assert echo(value) == value
    run = task_runs("echo")[-1]
    assert decode(run.params) == {"v": value} and decode(run.result) == value

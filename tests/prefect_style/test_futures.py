"""Futures, mapping and task runners, as Prefect 3's docs use them."""

from __future__ import annotations

import threading
import time

import pytest

from stead import task
from stead.core.runtime import store_for
from stead.store.base import RunFilter
from tests.prefect_style.registry import Difference, unchanged

DIFFERENCES: list[Difference] = []


@task
def crunch(n: int) -> int:
    """At module level, so a process pool can import it (as Prefect requires too)."""
    return sum(i * i for i in range(n))


@unchanged
def test_submit_and_result() -> None:
    """task.submit() returns a future at once; .result() waits for the value."""
    from stead import flow, task

    @task
    def stop_at_floor(floor: int) -> str:
        time.sleep(0.01)
        return f"floor {floor}"

    @flow
    def elevator() -> list[str]:
        futures = [stop_at_floor.submit(f) for f in (3, 2, 1)]
        return [f.result() for f in futures]

    assert elevator() == ["floor 3", "floor 2", "floor 1"]


@unchanged
def test_map_with_unmapped() -> None:
    """task.map() makes one call per item; unmapped() passes one value to every call."""
    from stead import flow, task, unmapped

    @task
    def add(x: int, y: int) -> int:
        return x + y

    @flow
    def sums() -> list[int]:
        return add.map([1, 2, 3], unmapped(10)).result()

    assert sums() == [11, 12, 13]


@unchanged
def test_map_with_keyword_iterables() -> None:
    """map() zips keyword iterables too; unmapped() keeps a keyword constant."""
    from stead import flow, task, unmapped

    @task
    def label(item: str, index: int, prefix: str) -> str:
        return f"{prefix}{index}:{item}"

    @flow
    def labels() -> list[str]:
        return label.map(item=["a", "b"], index=[1, 2], prefix=unmapped("#")).result()

    assert labels() == ["#1:a", "#2:b"]


@unchanged
def test_async_task_map_in_an_async_flow() -> None:
    """An async task's .map() in an async flow: futures whose results are the values."""
    import asyncio

    from stead import flow, task

    @task
    async def bump(x: int) -> int:
        await asyncio.sleep(0)
        return x + 1

    @flow
    async def bumps() -> list[int]:
        return bump.map([1, 2, 3]).result()

    assert asyncio.run(bumps()) == [2, 3, 4]


@unchanged
def test_map_over_futures() -> None:
    """Mapping over the futures of an earlier map waits for each one."""
    from stead import flow, task

    @task
    def double(x: int) -> int:
        return 2 * x

    @task
    def plus_one(x: int) -> int:
        return x + 1

    @flow
    def chained() -> list[int]:
        doubled = double.map(range(4))
        return plus_one.map(doubled).result()

    assert chained() == [1, 3, 5, 7]


@unchanged
def test_wait_for() -> None:
    """wait_for=[...] orders tasks that pass no data: the second starts after the first."""
    from stead import flow, task

    order = []

    @task
    def create_table() -> None:
        time.sleep(0.05)
        order.append("create")

    @task
    def insert_rows() -> None:
        order.append("insert")

    @flow
    def setup() -> None:
        created = create_table.submit()
        insert_rows.submit(wait_for=[created]).wait()

    setup()
    assert order == ["create", "insert"]


@unchanged
def test_future_as_an_argument() -> None:
    """A future passed to another task is resolved to its value before that task runs."""
    from stead import flow, task

    @task
    def fetch() -> list[int]:
        return [4, 5, 6]

    @task
    def total(rows: list[int]) -> int:
        return sum(rows)

    @flow
    def report() -> int:
        return total.submit(fetch.submit()).result()

    assert report() == 15


@unchanged
def test_future_passed_to_a_direct_call_and_a_subflow() -> None:
    """A future given to a plain task call or to a subflow is waited for: they get its value."""
    from stead import flow, task

    @task
    def fetch() -> int:
        return 20

    @task
    def add(x: int, y: int) -> int:
        return x + y

    @flow
    def child(n: int) -> int:
        return n + 2

    @flow
    def parent() -> tuple[int, int]:
        fetched = fetch.submit()
        return add(fetched, 1), child(fetched)

    assert parent() == (21, 22)


@unchanged
def test_wait_returns_done_and_not_done() -> None:
    """prefect.futures.wait(futures, timeout) returns the (done, not_done) pair."""
    from stead import flow, task
    from stead.futures import wait

    @task
    def nap(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @flow
    def naps() -> tuple[int, int]:
        futures = nap.map([0.0, 0.0, 0.0])
        done, not_done = wait(futures, timeout=60)
        return len(done), len(not_done)

    assert naps() == (3, 0)


@unchanged
def test_as_completed() -> None:
    """as_completed yields futures as they finish: the quick one first."""
    from stead import flow, task
    from stead.futures import as_completed

    @task
    def sleepy(name: str, seconds: float) -> str:
        time.sleep(seconds)
        return name

    @flow
    def race() -> list[str]:
        futures = [sleepy.submit("slow", 1.0), sleepy.submit("quick", 0.0)]
        return [f.result() for f in as_completed(futures)]

    assert race() == ["quick", "slow"]


@unchanged
def test_thread_pool_task_runner_max_workers() -> None:
    """ThreadPoolTaskRunner(max_workers=2): at most two submitted tasks run at once."""
    from stead import flow, task
    from stead.task_runners import ThreadPoolTaskRunner

    lock = threading.Lock()
    running, peak = [0], [0]

    @task
    def work(i: int) -> int:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def bounded() -> list[int]:
        return work.map(range(6)).result()

    assert bounded() == list(range(6))
    assert 1 <= peak[0] <= 2


@unchanged
def test_process_pool_task_runner() -> None:
    """ProcessPoolTaskRunner runs submitted tasks in other processes."""
    from stead import flow
    from stead.task_runners import ProcessPoolTaskRunner

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def heavy() -> list[int]:
        return crunch.map([10, 100]).result()

    assert heavy() == [crunch.fn(10), crunch.fn(100)]


@unchanged
def test_failed_future_result_raises() -> None:
    """future.result() raises the task's exception; raise_on_failure=False returns it."""
    from stead import flow, task

    @task
    def parse(text: str) -> int:
        return int(text)

    @flow
    def parsing() -> list:
        futures = parse.map(["1", "x"])
        out = [futures[0].result()]
        with pytest.raises(ValueError):
            futures[1].result()
        out.append(type(futures[1].result(raise_on_failure=False)).__name__)
        return out

    assert parsing() == [1, "ValueError"]


@unchanged
def test_allow_failure() -> None:
    """allow_failure(future): the downstream task runs even though its upstream failed."""
    from stead import allow_failure, flow, task

    @task
    def extract() -> list[int]:
        raise ConnectionError("source down")

    @task
    def cleanup() -> str:
        return "cleaned"

    @task
    def report(data: object) -> str:
        return f"extract gave {type(data).__name__}"

    @flow
    def etl() -> tuple[str, str]:
        data = extract.submit()
        done = cleanup.submit(wait_for=[allow_failure(data)])
        seen = report.submit(allow_failure(data))
        return done.result(), seen.result()

    assert etl() == ("cleaned", "extract gave ConnectionError")
    [run] = store_for().list_runs(RunFilter(flow_name="etl"))
    assert run.state == "Completed"   # the failure was allowed, and not returned


@unchanged
def test_without_allow_failure_the_downstream_task_does_not_run() -> None:
    """A task whose upstream failed does not run (Prefect: NotReady; Stead: UpstreamFailed)."""
    from stead import flow, task

    cleaned = []

    @task
    def extract() -> int:
        raise ConnectionError("source down")

    @task
    def cleanup() -> None:
        cleaned.append(1)

    @flow
    def etl() -> str:
        data = extract.submit()
        done = cleanup.submit(wait_for=[data])
        done.wait()
        data.wait()
        return "failed" if done.state.is_failed() and data.state.is_failed() else "ran"

    assert etl() == "failed"
    assert cleaned == []

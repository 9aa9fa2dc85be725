"""Futures, mapping, task runners and concurrency limits: recorded, resumable, bounded."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

import stead
from stead import (
    ProcessPoolTaskRunner,
    SerializationError,
    ThreadPoolTaskRunner,
    UpstreamFailed,
    flow,
    task,
    unmapped,
)
from stead.core.runtime import store_for
from stead.store.base import RunFilter
from tests.core.pool_tasks import cpu_square, describe_pid


@task
def slow_square(x: int) -> int:
    time.sleep(0.005)
    return x * x


@task
def scale(x: int, factor: int) -> int:
    return x * factor


@task
def add_all(values: list[int]) -> int:
    return sum(values)


def the_run(store):
    [run] = [r for r in store.list_runs(RunFilter()) if r.parent_id is None]
    return run


def test_map_over_500_items_never_exceeds_the_concurrency_limit(store) -> None:
    @flow(task_runner=ThreadPoolTaskRunner(max_workers=8))
    def fan_out(n: int) -> int:
        return sum(f.result() for f in slow_square.map(range(n)))

    assert fan_out(500) == sum(i * i for i in range(500))
    steps = store.load_steps(the_run(store).id)
    assert len(steps) == 500 and all(s.state == "Completed" for s in steps.values())
    # The recorded start/end times show at most 8 bodies running at any moment.
    events = sorted([(s.started_at, 1) for s in steps.values()]
                    + [(s.ended_at, -1) for s in steps.values()], key=lambda e: (e[0], e[1]))
    running = peak = 0
    for _, delta in events:
        running += delta
        peak = max(peak, running)
    assert 1 < peak <= 8


def test_per_task_concurrency_limit(store) -> None:
    active, peak, lock = [0], [0], threading.Lock()

    @task(concurrency=3)
    def limited(i: int) -> int:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.01)
        with lock:
            active[0] -= 1
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=16))
    def f() -> list[int]:
        return [x.result() for x in limited.map(range(40))]

    assert f() == list(range(40))
    assert peak[0] == 3


def test_positions_follow_submission_order_and_futures_record_edges(store) -> None:
    @flow
    def graph() -> int:
        a = slow_square.submit(2)
        b = slow_square.submit(3)
        c = scale.submit(a, factor=b)  # waits for both
        d = add_all.submit([a, b, c], wait_for=[c])
        return d.result()

    assert graph() == 4 + 9 + 36
    steps = store.load_steps(the_run(store).id)
    assert [steps[k].name for k in "1234"] == ["slow_square", "slow_square", "scale", "add_all"]
    assert json.loads(steps["3"].depends_on) == ["1", "2"]
    assert json.loads(steps["4"].depends_on) == ["1", "2", "3"]
    assert json.loads(steps["3"].params) == {"x": {"$step": "1"}, "factor": {"$step": "2"}}


def test_map_with_unmapped_constants_keyword_iterables_and_length_check(store) -> None:
    @flow
    def f() -> list[int]:
        return [x.result() for x in scale.map([1, 2, 3], factor=unmapped(10))]

    assert f() == [10, 20, 30]

    @flow
    def mismatched() -> None:
        scale.map([1, 2], [1, 2, 3])

    with pytest.raises(stead.ConfigError, match="different lengths"):
        mismatched()


def test_wait_and_as_completed(store) -> None:
    @task
    def sleeper(seconds: float) -> float:
        time.sleep(seconds)
        return seconds

    @flow
    def f() -> tuple[list[float], int]:
        futures = sleeper.map([0.8, 0.0, 0.4])  # wide gaps: robust on a loaded machine
        order = [x.result() for x in stead.as_completed(futures)]
        done, not_done = stead.wait(futures)
        return order, len(done) + 10 * len(not_done)

    order, count = f()
    assert order == [0.0, 0.4, 0.8] and count == 3


def test_future_state_and_result_after_it_was_consumed(store) -> None:
    gate = threading.Event()

    @task
    def gated() -> dict:
        gate.wait(10)
        return {"big": list(range(100))}

    @flow
    def f() -> bool:
        future = gated.submit()
        assert not future.done() and future.state in (stead.State.PENDING, stead.State.RUNNING)
        gate.set()
        first = future.result()
        assert future.state == stead.State.COMPLETED and future.done()
        second = future.result()  # read back from the database: the future let go of it
        return first == second == {"big": list(range(100))} and first is not second

    assert f()


def test_failed_child_fails_the_flow_only_when_used_or_left_unresolved(store) -> None:
    @task
    def maybe_fail(i: int) -> int:
        if i == 2:
            raise ValueError(f"bad item {i}")
        return i

    @flow
    def handled() -> list[str]:
        out = []
        for future in maybe_fail.map(range(4)):
            try:
                out.append(str(future.result()))
            except ValueError as exc:
                out.append(str(exc))
        return out

    assert handled() == ["0", "1", "bad item 2", "3"]

    @flow
    def ignored() -> str:
        maybe_fail.map(range(4))  # nobody looks at the results
        return "done"

    with pytest.raises(ValueError, match="bad item 2"):
        ignored()
    failed = next(r for r in store.list_runs(RunFilter()) if r.flow_name == "ignored")
    assert failed.state == "Failed" and json.loads(failed.error)["step"] == "3"


def test_a_task_whose_input_failed_does_not_run(store) -> None:
    ran = []

    @task
    def boom() -> int:
        raise RuntimeError("upstream broke")

    @task
    def downstream(x: int) -> int:
        ran.append(x)
        return x

    @flow
    def f() -> None:
        downstream.submit(boom.submit()).result()

    with pytest.raises(UpstreamFailed, match=r"did not run: its input from task 'boom' \[1\]"):
        f()
    assert ran == []
    steps = store.load_steps(the_run(store).id)
    assert steps["1"].state == "Failed"
    assert steps["2"].state == "Failed" and steps["2"].attempts == 0  # recorded, not run
    assert json.loads(steps["2"].error)["type"] == "stead.errors.UpstreamFailed"


def test_async_flow_gathers_async_tasks_and_submits_them(store) -> None:
    @task
    async def fetch(i: int) -> int:
        await asyncio.sleep(0.01)
        return i

    @flow
    async def f() -> list[int]:
        gathered = await asyncio.gather(*(fetch(i) for i in range(8)))
        submitted = fetch.submit(100)  # runs on a worker thread's event loop
        return [*gathered, submitted.result()]

    assert asyncio.run(f()) == [*range(8), 100]
    assert len(store.load_steps(the_run(store).id)) == 9


def test_process_pool_runs_picklable_tasks_in_other_processes(store) -> None:
    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def crunch() -> tuple[list[int], bool]:
        squares = [x.result() for x in cpu_square.map(range(6))]
        pids = {p.result() for p in describe_pid.map(range(4))}
        return squares, pids != {__import__("os").getpid()}

    squares, elsewhere = crunch()
    assert squares == [i * i for i in range(6)] and elsewhere


def test_process_pool_refuses_an_unpicklable_task_clearly(store) -> None:
    @task
    def local_fn(x: int) -> int:  # defined inside a test function: not importable
        return x

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
    def f() -> None:
        local_fn.submit(1)

    with pytest.raises(SerializationError,
                       match=r"task 'local_fn' cannot run in a process pool: its function "
                             r"cannot be pickled.*module level"):
        f()


def test_submit_outside_a_flow_is_a_standalone_task_run(store) -> None:
    future = scale.submit(2, 5)
    assert future.result() == 10
    assert [f.result() for f in scale.map([1, 2], unmapped(3))] == [3, 6]
    runs = store.list_runs(RunFilter(tag="task-run"))
    assert len(runs) == 3 and {r.flow_name for r in runs} == {"scale"}


def test_group_commit_batches_concurrent_checkpoints(store) -> None:
    from stead.core.writer import writer_for

    writer = writer_for(store_for())
    before_commits, before_records = writer.commits, writer.records

    @task
    def tiny(i: int) -> int:
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=8))
    def f() -> int:
        return sum(x.result() for x in tiny.map(range(400)))

    assert f() == sum(range(400))
    records = writer.records - before_records
    commits = writer.commits - before_commits
    assert records == 400
    assert commits < records  # several checkpoints shared a commit

"""Timeouts: a timed-out attempt is a failure that retries may follow."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from stead import FakeClock, TaskTimeout, flow, task
from stead.store.base import RunFilter


def test_task_timeout_interrupts_a_sleeping_task_and_is_recorded(store) -> None:
    @task(timeout=0.2)
    def hang() -> None:
        time.sleep(30)

    @flow
    def f() -> None:
        hang()

    start = time.monotonic()
    with pytest.raises(TaskTimeout, match=r"task 'hang' \(step 1\) \(limit 0.2 s\) timed out"):
        f()
    assert time.monotonic() - start < 10
    [run] = store.list_runs(RunFilter())
    assert run.state == "Failed"
    assert store.load_steps(run.id)["1"].state == "Failed"


def test_timed_out_attempt_is_retried() -> None:
    attempts = []

    @task(timeout=0.2, retries=2)
    def slow_then_fast() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            time.sleep(30)
        return "ok"

    @flow(clock=FakeClock())
    def f() -> str:
        return slow_then_fast()

    assert f() == "ok" and len(attempts) == 2


def test_flow_timeout() -> None:
    @flow(timeout=0.2)
    def f() -> None:
        time.sleep(30)

    with pytest.raises(TaskTimeout, match="flow 'f'"):
        f()


def test_nested_deadlines_fire_in_the_right_order() -> None:
    @task(timeout=0.2)
    def inner() -> None:
        time.sleep(30)

    @flow(timeout=20)
    def f() -> str:
        try:
            inner()
        except TaskTimeout:
            return "inner timed out, flow still within its limit"
        return "no timeout"

    assert f() == "inner timed out, flow still within its limit"


def test_timeout_outside_the_main_thread() -> None:
    @task(timeout=0.2)
    def busy() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # pure Python: interruptible off the main thread
            pass

    @flow
    def f() -> None:
        busy()

    errors: list[BaseException] = []

    def target() -> None:
        try:
            f()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(20)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], TaskTimeout)


def test_async_task_timeout() -> None:
    @task(timeout=0.1)
    async def hang() -> None:
        await asyncio.sleep(30)

    @flow
    async def f() -> None:
        await hang()

    with pytest.raises(TaskTimeout, match="hang"):
        asyncio.run(f())

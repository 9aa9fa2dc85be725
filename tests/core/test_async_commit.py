"""Async tasks' steps go through group commit: the event loop keeps running while a step
commits, concurrent steps share transactions, and the flow never goes on past an await
before that step's outcome is committed."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from typing import Any

import pytest

from stead import flow, task
from stead.core.runtime import store_for
from stead.core.writer import writer_for
from stead.errors import LeaseLost, SerializationError
from stead.settings import get_settings
from stead.store.base import Store, WorkerRecord


@task
async def echo(i: int) -> int:
    return i


@task
async def unstorable() -> object:
    return object()


class WriteLock:
    """Another connection holding the database's write lock on the steps (SQLite: its one
    write lock; PostgreSQL: an exclusive lock on the table) until `release()`."""

    def __init__(self, backend: str) -> None:
        store = store_for()
        if backend == "sqlite":
            self.conn: Any = sqlite3.connect(store.path,  # type: ignore[attr-defined]
                                             isolation_level=None, check_same_thread=False)
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            import psycopg

            self.conn = psycopg.connect(get_settings().database_url)
            self.conn.execute("LOCK TABLE steps IN EXCLUSIVE MODE")

    def release(self) -> None:
        self.conn.rollback()

    def count_steps(self) -> int:
        return int(self.conn.execute("SELECT count(*) FROM steps").fetchone()[0])


def test_the_loop_runs_while_a_step_waits_for_the_database(backend: str) -> None:
    """Another connection holds the write lock for 0.4 s: the step's commit waits for it on
    the writer thread, and meanwhile the loop's other coroutines keep running."""
    if backend == "http":
        pytest.skip("the lock is taken on the server's database; sqlite covers it")
    asyncio.run(warm_up())
    seen: dict[str, float] = {}

    @flow
    async def blocked() -> int:
        ticks = 0
        stop = False

        async def ticker() -> None:
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0.01)

        lock = WriteLock(backend)
        releaser = threading.Timer(0.4, lock.release)
        running = asyncio.create_task(ticker())
        await asyncio.sleep(0.02)
        releaser.start()
        start, ticks_before = time.monotonic(), ticks
        value = await echo(7)
        seen["waited"] = time.monotonic() - start
        seen["ticks"] = ticks - ticks_before
        stop = True
        await running
        # Committed before the await returned: another connection sees the step.
        seen["rows"] = lock.count_steps()
        lock.conn.close()
        return value

    assert asyncio.run(blocked()) == 7
    assert seen["waited"] >= 0.3  # the commit did wait for the lock
    # The loop was not blocked meanwhile: about 40 ticks without load; blocked, none.
    assert seen["ticks"] >= 8
    assert seen["rows"] == 2  # warm_up's step and this one


@flow
async def warm_up() -> int:
    return await echo(0)


def test_a_gather_of_async_tasks_commits_in_groups() -> None:
    @flow
    async def fan_out(n: int) -> int:
        return sum(await asyncio.gather(*(echo(i) for i in range(n))))

    asyncio.run(fan_out(2))  # create the schema, warm up
    writer = writer_for(store_for())
    commits, records = writer.commits, writer.records
    run_id = "gathered"
    assert asyncio.run(fan_out.with_options(run_id=run_id)(300)) == sum(range(300))
    assert writer.records - records == 300
    assert writer.commits - commits < 150  # shared transactions, not one per step
    steps = store_for().load_steps(run_id)
    assert len(steps) == 300
    assert {s.state for s in steps.values()} == {"Completed"}
    # Resuming replays every step: nothing runs again.
    assert asyncio.run(fan_out.resume(run_id)) == sum(range(300))


def test_sequential_awaits_are_each_committed_before_the_next() -> None:
    seen: list[int] = []

    @flow
    async def one_by_one(n: int) -> int:
        total = 0
        for i in range(n):
            total += await echo(i)
            seen.append(len(store_for().load_steps("seq")))
        return total

    assert asyncio.run(one_by_one.with_options(run_id="seq")(5)) == 10
    assert seen == [1, 2, 3, 4, 5]


def test_an_async_step_that_cannot_be_stored_is_recorded_failed() -> None:
    @flow
    async def bad() -> object:
        return await unstorable()

    with pytest.raises(SerializationError):
        asyncio.run(bad.with_options(run_id="bad")())
    step = store_for().load_steps("bad")["1"]
    assert step.state == "Failed"


def test_async_retries_are_recorded_through_the_writer() -> None:
    calls = {"n": 0}

    @task(retries=2, retry_delay=0)
    async def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ValueError("not yet")
        return "ok"

    @flow
    async def retrying() -> str:
        return await flaky()

    assert asyncio.run(retrying.with_options(run_id="flaky")()) == "ok"
    step = store_for().load_steps("flaky")["1"]
    assert (step.state, step.attempts) == ("Completed", 3)


def test_a_sync_flow_calling_async_tasks_records_each_before_the_next() -> None:
    seen: list[int] = []

    @flow
    def sync_caller(n: int) -> int:
        total = 0
        for i in range(n):
            total += echo(i)  # run on a loop of its own: committed before it returns
            seen.append(len(store_for().load_steps("sync-caller")))
        return total

    assert sync_caller.with_options(run_id="sync-caller")(4) == 6
    assert seen == [1, 2, 3, 4]


RECOVER: dict[str, Store] = {}  # run id -> store: another worker recovers it during `taken`


@task
async def taken(run_id: str) -> str:
    store = RECOVER.pop(run_id, None)
    if store is not None:
        epoch = store.get_run(run_id).lease_epoch
        assert store.recover_run(run_id, epoch, 1e9, "lease expired (test)") == "Pending"
    return "taken"


@flow
async def fenced(target: str) -> list:
    return [await echo(1), await taken(target), await echo(2)]


def test_a_refused_commit_is_raised_at_the_await(store: Store) -> None:
    """The run is recovered by another worker while a step runs: the writer's commit of that
    step is refused (the fence), the await raises LeaseLost, and nothing after it runs."""
    worker = WorkerRecord(id="w-async", name="t", host="here", pid=1, queues='["a"]',
                          concurrency=1, state="running", started_at=0.0, heartbeat_at=0.0)
    run_id = fenced.enqueue(target="fenced-run", queue="a", run_id="fenced-run")
    [claimed] = store.claim_runs(["a"], worker, "here|1|1", 1, now=1e6, lease_s=30.0)
    RECOVER[run_id] = store
    with pytest.raises(LeaseLost):
        fenced.execute_claimed(claimed, store)
    assert {k: s.state for k, s in store.load_steps(run_id).items()} == {"1": "Completed"}
    [again] = store.claim_runs(["a"], worker, "here|1|1", 1, now=1e6, lease_s=30.0)
    assert fenced.execute_claimed(again, store) == [1, "taken", 2]

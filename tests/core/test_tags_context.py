"""`stead.tags(...)`: the tags of the runs and task calls started inside the block, nested,
per thread and per asyncio task, recorded on runs and counted by tag limits (on every
backend, see tests/core/conftest.py)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import pytest

import stead
from stead import flow, task
from stead.core.runtime import store_for
from stead.errors import ConfigError
from stead.store.base import Limit, RunFilter, RunRecord, Store, WorkerRecord


def tags_of(run: RunRecord) -> list[str]:
    return sorted(json.loads(run.tags))


def runs_of(flow_name: str) -> list[RunRecord]:
    return store_for().list_runs(RunFilter(flow_name=flow_name))


@task
def seen_tags() -> list[str]:
    with stead.tags() as in_effect:  # no new tag: just the ones in effect here
        return sorted(in_effect)


@flow
def report(label: str) -> list[str]:
    return seen_tags()


@flow
def outer() -> list[str]:
    with stead.tags("inner"):
        return report("child")


def test_blocks_nest_add_up_and_end_with_the_block() -> None:
    with stead.tags("a", "b") as first:
        assert first == {"a", "b"}
        with stead.tags("b", "c") as second:
            assert second == {"a", "b", "c"}
        with stead.tags() as after:
            assert after == {"a", "b"}
    with stead.tags() as outside:
        assert outside == set()
    with pytest.raises(RuntimeError), stead.tags("gone"):
        raise RuntimeError("the block ends on an error too")
    with stead.tags() as outside:
        assert outside == set()
    with pytest.raises(ConfigError, match=r"stead.tags\(\) takes tag names"), \
            stead.tags("ok", ""):
        pass
    with pytest.raises(ConfigError, match="takes tag names"), \
            stead.tags(["db"]):  # type: ignore[arg-type]
        pass


def test_runs_started_inside_record_the_tags_and_their_tasks_carry_them() -> None:
    with stead.tags("nightly", "eu"):
        assert report("x") == ["eu", "nightly"]
    assert report("y") == []
    tagged, plain = sorted(runs_of("report"), key=lambda r: r.tags != "[]")[::-1]
    assert tags_of(tagged) == ["eu", "nightly"] and plain.tags == "[]"
    found = store_for().list_runs(RunFilter(tag="nightly"))
    assert [r.id for r in found] == [tagged.id]


def test_child_runs_get_the_parents_tags_and_those_of_blocks_inside_it() -> None:
    with stead.tags("batch"):
        assert outer() == ["batch", "inner"]
    [root] = runs_of("outer")
    [child] = runs_of("report")
    assert tags_of(root) == ["batch"]
    assert tags_of(child) == ["batch", "inner"] and child.parent_id == root.id


def test_a_resumed_run_keeps_the_tags_it_started_with() -> None:
    failures = [1]

    @task
    def tags_once() -> list[str]:
        if failures:
            failures.pop()
            raise RuntimeError("fails the first time")
        with stead.tags() as in_effect:
            return sorted(in_effect)

    @flow
    def once() -> list[str]:
        return tags_once()

    with stead.tags("db"), pytest.raises(RuntimeError):
        once.with_options(run_id="once-1")()
    assert once.resume("once-1") == ["db"]  # outside the block: the run's tags still hold
    assert tags_of(store_for().get_run("once-1")) == ["db"]


def test_each_thread_sees_only_its_own_blocks() -> None:
    results: dict[str, list[str]] = {}
    barrier = threading.Barrier(2)

    def start(label: str) -> None:
        with stead.tags(label):
            barrier.wait()  # both blocks are open at once
            results[label] = report(label)

    threads = [threading.Thread(target=start, args=(name,)) for name in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {"left": ["left"], "right": ["right"]}
    assert sorted(tags_of(r)[0] for r in runs_of("report")) == ["left", "right"]


def test_each_asyncio_task_sees_only_its_own_blocks() -> None:
    @task
    async def async_seen() -> list[str]:
        await asyncio.sleep(0.01)
        with stead.tags() as in_effect:
            return sorted(in_effect)

    @flow
    async def async_report(label: str) -> list[str]:
        return await async_seen()

    async def tagged(label: str) -> list[str]:
        with stead.tags(label):
            await asyncio.sleep(0.01)  # the other task opens its block meanwhile
            return await async_report(label)

    async def main() -> list[list[str]]:
        return list(await asyncio.gather(tagged("one"), tagged("two")))

    assert asyncio.run(main()) == [["one"], ["two"]]
    assert sorted(tags_of(r) for r in runs_of("async_report")) == [["one"], ["two"]]


@task
def hold(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@flow
def fan_out(n: int) -> int:
    return len([f.result() for f in [hold.submit(0.15) for _ in range(n)]])


def most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    now = peak = 0
    for _, delta in events:
        now += delta
        peak = max(peak, now)
    return peak


def test_a_tag_added_by_a_block_counts_for_tag_limits(store: Store) -> None:
    store.set_limit(Limit("db", concurrency=1))
    with stead.tags("db"):
        assert fan_out(4) == 4  # `hold` has no tags of its own: the block's tag limits it
    [run] = runs_of("fan_out")
    steps = store.load_steps(run.id).values()
    spans = [(s.started_at, s.ended_at) for s in steps]
    assert len(spans) == 4 and all(s is not None and e is not None for s, e in spans)
    assert most_at_once(spans) == 1  # type: ignore[arg-type]


def test_an_enqueued_run_records_the_tags_and_its_worker_applies_them(store: Store) -> None:
    with stead.tags("queued", "db"):
        handle = report.enqueue("q", queue="etl")
    run = store.get_run(handle)
    assert tags_of(run) == ["db", "queued"] and run.state == "Pending"
    worker = WorkerRecord(id="w", name="w", host="h", pid=1, queues='["etl"]', concurrency=1,
                          state="running", started_at=0.0, heartbeat_at=0.0)
    [claimed] = store.claim_runs(["etl"], worker, "owner", 1, time.time(), 30.0)
    assert report.execute_claimed(claimed, store) == ["db", "queued"]  # outside any block

"""A future passed to a direct task call or to a child flow is resolved to its value first,
as a submitted call's inputs are; a failed one raises its error at the call."""

from __future__ import annotations

import pytest

from stead import UpstreamFailed, flow, task
from stead.store.base import RunFilter, Store

ran: list[str] = []


@task
def source(n: int) -> int:
    if n < 0:
        raise ValueError(f"negative {n}")
    return n


@task
def double(x: int) -> int:
    ran.append("double")
    return 2 * x


@flow
def child(values: list[int], scale: int = 1) -> int:
    return sum(values) * scale


def test_futures_given_to_calls_are_their_values(store: Store) -> None:
    @flow
    def parent() -> tuple[int, int]:
        a, b = source.submit(2), source.submit(3)
        return double(a), child([a, b], scale=b)

    assert parent.with_options(run_id="futures-1")() == (4, 15)
    steps = store.load_steps("futures-1")
    assert [s.name for s in steps.values()] == ["source", "source", "double", "child"]
    [sub] = store.list_runs(RunFilter(flow_name="child"))
    assert sub.parent_id == "futures-1" and sub.state == "Completed"


def test_a_failed_future_raises_at_the_call_and_the_task_does_not_run(store: Store) -> None:
    ran.clear()

    @flow
    def parent() -> str:
        bad = source.submit(-1)
        try:
            double(bad)
        except ValueError as exc:
            return f"caught {exc}"
        return "no error"

    assert parent.with_options(run_id="futures-2")() == "caught negative -1"
    assert ran == []
    assert [s.name for s in store.load_steps("futures-2").values()] == ["source"]
    # Resumed (called again with the same id): the same path, from the record.
    assert parent.with_options(run_id="futures-2")() == "caught negative -1"

    @flow
    def careless() -> int:
        return double(source.submit(-3))

    with pytest.raises(ValueError, match="negative -3"):
        careless()


def test_allow_failure_runs_the_task_with_the_exception_and_replays_the_same(
        store: Store) -> None:
    from stead import allow_failure

    ran.clear()

    @task
    def describe(value: object) -> str:
        ran.append("describe")
        return type(value).__name__

    @flow
    def tolerant() -> list[str]:
        bad, good = source.submit(-1), source.submit(4)
        after = double.submit(wait_for=[allow_failure(bad)], x=1)
        return [describe.submit(allow_failure(bad)).result(), describe(allow_failure(good)),
                str(after.result())]

    assert tolerant.with_options(run_id="allowed-1")() == ["ValueError", "int", "2"]
    assert store.get_run("allowed-1").state == "Completed"   # the allowed failure is handled
    assert sorted(ran) == ["describe", "describe", "double"]
    # Called again with the same id: every step comes from the record, nothing runs again.
    assert tolerant.with_options(run_id="allowed-1")() == ["ValueError", "int", "2"]
    assert sorted(ran) == ["describe", "describe", "double"]


def test_allow_failure_outside_a_flow(store: Store) -> None:
    from stead import allow_failure

    @task
    def describe(value: object) -> str:
        return type(value).__name__

    bad = source.submit(-1)
    assert describe.submit(allow_failure(bad)).result() == "ValueError"
    with pytest.raises(UpstreamFailed, match="did not run"):
        describe.submit(bad).result()

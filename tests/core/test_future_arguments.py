"""A future passed to a direct task call or to a child flow is resolved to its value first,
as a submitted call's inputs are; a failed one raises its error at the call."""

from __future__ import annotations

import pytest

from stead import flow, task
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

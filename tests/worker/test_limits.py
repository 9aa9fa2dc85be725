"""Limits hold across workers: a queue's concurrency limit, a tag's concurrency limit and a
tag's rate limit, asserted from the start and end times the runs and steps recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
import queued_flows

from stead.store.base import Limit, RunFilter, Store
from tests.worker.conftest import Workers, wait_until

ON_POSTGRES = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


def most_at_once(intervals: list[tuple[float, float]]) -> int:
    """The largest number of intervals open at one moment (an end comes before a start at the
    same instant)."""
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda e: (e[0], e[1]))
    open_now = peak = 0
    for _, delta in events:
        open_now += delta
        peak = max(peak, open_now)
    return peak


def all_completed(db: Store, ids: list[str]) -> bool:
    return all(db.get_run(rid).state == "Completed" for rid in ids)


def tagged_steps(db: Store, ids: list[str]) -> list[tuple[float, float]]:
    spans = []
    for rid in ids:
        for step in db.load_steps(rid).values():
            assert step.name == "limited" and step.state == "Completed"
            assert step.started_at is not None and step.ended_at is not None
            spans.append((step.started_at, step.ended_at))
    return spans


@ON_POSTGRES
def test_a_tag_concurrency_limit_holds_across_workers(workers: Workers, db: Store,
                                                      tmp_path: Path) -> None:
    db.set_limit(Limit("db", concurrency=2))
    out = str(tmp_path / "effects.txt")
    ids = [queued_flows.tagged.enqueue(out=out, n=3, seconds=0.2, queue="q") for _ in range(6)]
    for _ in range(3):
        workers.start("-q", "q", "-c", "2")  # 6 runs at once could run 6 tagged tasks at once
    wait_until(lambda: all_completed(db, ids), 120, "every run to complete")
    spans = tagged_steps(db, ids)
    assert len(spans) == 18
    assert most_at_once(spans) == 2  # reached, never exceeded
    assert {w.name for w in db.list_workers()} and len(db.list_workers()) == 3


@ON_POSTGRES
def test_a_tag_rate_limit_holds_across_workers(workers: Workers, db: Store,
                                               tmp_path: Path) -> None:
    db.set_limit(Limit("db", rate=3, period=1.0))
    out = str(tmp_path / "effects.txt")
    ids = [queued_flows.tagged.enqueue(out=out, n=2, seconds=0.0, queue="q") for _ in range(6)]
    for _ in range(3):
        workers.start("-q", "q", "-c", "2")
    wait_until(lambda: all_completed(db, ids), 120, "every run to complete")
    starts = sorted(start for start, _ in tagged_steps(db, ids))
    assert len(starts) == 12
    # No 4 starts within one period. The slot is taken a moment before the step's start is
    # stamped, so allow the stamps 50 ms of that lag.
    for i in range(len(starts) - 3):
        assert starts[i + 3] - starts[i] > 1.0 - 0.05, starts
    assert starts[-1] - starts[0] > 3.0 - 0.05  # 12 starts at 3 per second need 3 periods


@ON_POSTGRES
def test_a_queue_concurrency_limit_holds_across_workers(workers: Workers, db: Store,
                                                        tmp_path: Path) -> None:
    db.set_queue("q", 2)
    out = str(tmp_path / "effects.txt")
    ids = [queued_flows.fenced.enqueue(out=out, seconds=0.3, queue="q") for _ in range(8)]
    for _ in range(3):
        workers.start("-q", "q", "-c", "1")  # one run each: two at once means two workers
    wait_until(lambda: all_completed(db, ids), 120, "every run to complete")
    runs = db.list_runs(RunFilter(queue="q", limit=100))
    spans = [(r.started_at, r.ended_at) for r in runs]
    assert len(spans) == 8 and all(s is not None and e is not None for s, e in spans)
    assert most_at_once(spans) == 2  # type: ignore[arg-type]


def test_higher_priority_runs_start_first(workers: Workers, db: Store, tmp_path: Path) -> None:
    out = str(tmp_path / "effects.txt")
    low = [queued_flows.fenced.enqueue(out=out, seconds=0.0, queue="q") for _ in range(3)]
    high = [queued_flows.fenced.enqueue(out=out, seconds=0.0, queue="q", priority=5)
            for _ in range(3)]
    workers.start("-q", "q", "-c", "1")
    wait_until(lambda: all_completed(db, low + high), 60, "every run to complete")
    order = sorted(low + high, key=lambda rid: db.get_run(rid).started_at or 0)
    assert order == high + low

"""Restarting the server (with its scheduler) never creates a scheduled run twice."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import deployed_flows  # tests/scripts, put on sys.path by tests/server/conftest.py

from stead.deployments.registry import deploy
from stead.deployments.schedules import Schedule
from stead.store.base import RunFilter, Store
from tests.server.conftest import Server, stop_server


def scheduled(db: Store) -> list[str]:
    return [r.id for r in db.list_runs(RunFilter(deployment="often", limit=1000))]


def test_a_restarted_server_creates_no_duplicate_scheduled_runs(serve: Callable[..., Server],
                                                                 db: Store) -> None:
    # Every 20 s, the next 3 fire times (within 60 s) created ahead: the first round makes 3.
    deploy(db, deployed_flows.tidy, name="often", now=time.time(),
           schedules=[Schedule.interval(20)])
    first = serve(services=True)
    deadline = time.monotonic() + 30
    while len(scheduled(db)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    before = sorted(scheduled(db))
    assert len(before) >= 3, first.output()
    stop_server(first)
    second = serve(services=True)
    deadline = time.monotonic() + 10
    while "scheduler, lease reaper and retention running" not in second.output():
        assert time.monotonic() < deadline, second.output()
        time.sleep(0.1)
    time.sleep(1.0)  # its first scheduler round has run
    after = scheduled(db)
    assert max(Counter(after).values()) == 1
    # What the first server made is kept; the second adds at most the fire times that came
    # within its horizon meanwhile (a restart takes seconds, fire times are 20 s apart).
    assert set(before) <= set(after) and len(after) <= len(before) + 2

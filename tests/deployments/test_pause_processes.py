"""Pause and resume with real processes: `stead scheduler start` and `stead worker start` on
one SQLite database, a deployment firing every second. After `stead deployments pause` no
run of a later fire time exists or starts; after `resume` runs start again, with no burst of
the fire times that passed while paused."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from stead.core.runtime import store_for
from stead.deployments.registry import deploy
from stead.deployments.schedules import Schedule
from stead.store.base import RunFilter, RunRecord
from tests.conftest import SCRIPTS, script_env

if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

import deployed_flows


@pytest.fixture
def start(stead_home: Path) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []

    def run(*args: str) -> subprocess.Popen[bytes]:
        log = open(stead_home / f"proc-{len(procs)}.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen([sys.executable, "-m", "stead.cli.main", *args], stdout=log,
                                stderr=subprocess.STDOUT, env=script_env(stead_home),
                                start_new_session=True)
        procs.append(proc)
        return proc

    yield run
    for proc in procs:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def runs() -> list[RunRecord]:
    return store_for().list_runs(RunFilter(deployment="every1", limit=10_000))


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, [(r.id, r.state) for r in runs()]
        time.sleep(0.1)


def test_pause_stops_a_running_schedule_and_resume_brings_it_back_without_a_burst(
        start: Callable[..., subprocess.Popen[bytes]], stead_home: Path) -> None:
    deploy(store_for(), deployed_flows.tidy, name="every1", now=time.time(), queue="etl",
           schedules=[Schedule.interval(1)], missed="all")
    start("scheduler", "start", "--every", "0.2", "--ahead", "3")
    start("worker", "start", "-q", "etl", "--poll", "0.05")
    wait_for(lambda: sum(r.state == "Completed" for r in runs()) >= 2)

    paused = subprocess.run([sys.executable, "-m", "stead.cli.main", "deployments", "pause",
                             "every1"], capture_output=True, text=True, timeout=60,
                            env=script_env(stead_home))
    assert paused.returncode == 0, paused.stderr
    paused_at = time.time()
    time.sleep(4)  # more than --ahead, and many scheduler rounds
    after_pause = runs()
    assert [r.id for r in after_pause if r.scheduled_for > paused_at] == []
    assert not [r for r in after_pause if r.state in ("Scheduled", "Pending", "Late")]
    time.sleep(2)
    assert [(r.id, r.state) for r in runs()] == [(r.id, r.state) for r in after_pause]

    resumed = subprocess.run([sys.executable, "-m", "stead.cli.main", "deployments",
                              "resume", "every1"], capture_output=True, text=True, timeout=60,
                             env=script_env(stead_home))
    assert resumed.returncode == 0, resumed.stderr
    resumed_at = time.time()
    wait_for(lambda: any(r.state == "Completed" and r.scheduled_for > resumed_at
                         for r in runs()))
    # No run for the ~6 fire times that passed while paused.
    assert [r.id for r in runs() if paused_at + 0.5 < r.scheduled_for < resumed_at - 1] == []

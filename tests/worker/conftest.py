"""Worker tests: real `stead worker start` processes (each in its own process group, so a
test can kill or stop a worker with its children, as losing a host would) on a real
database. Flows live in tests/scripts/queued_flows.py, imported by module name."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stead.core.runtime import store_for
from stead.settings import get_settings
from stead.store.base import Store
from tests.conftest import SCRIPTS

if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))


class Workers:
    """Starts worker processes on one database and stops them all at the end."""

    def __init__(self, url: str, logs: Path) -> None:
        self.url = url
        self.logs = logs
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = open(self.logs / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115
        path = os.pathsep.join([str(SCRIPTS), os.environ.get("PYTHONPATH", "")])
        environ = {**os.environ, "STEAD_DATABASE_URL": self.url, "PYTHONPATH": path, **env}
        proc = subprocess.Popen(
            [sys.executable, "-m", "stead.cli.main", "worker", "start", "--poll", "0.05", *args],
            stdout=log, stderr=subprocess.STDOUT, env=environ, start_new_session=True)
        proc.log_path = log.name  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return Path(proc.log_path).read_text(errors="replace")  # type: ignore[attr-defined]

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Signal the worker and every process of its group (its forkserver and children)."""
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass

    def stop_all(self) -> None:
        for proc in self.procs:
            self.kill(proc, signal.SIGCONT)
            self.kill(proc)
            proc.wait(10)


@pytest.fixture
def workers(db_url: str, tmp_path: Path) -> Iterator[Workers]:
    ws = Workers(db_url, tmp_path)
    yield ws
    ws.stop_all()


@pytest.fixture
def db_url(backend: str) -> str:
    """The test's database (SQLite file or fresh PostgreSQL database; see `backend`)."""
    return get_settings().database_url


@pytest.fixture
def db(db_url: str) -> Store:
    return store_for(db_url)


def wait_until(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll `check` until it returns something true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def effects(out: Path) -> list[tuple[str, int]]:
    """The side effects written by queued_flows' tasks: (RUN_ID/STEP_KEY, pid) per line."""
    if not out.exists():
        return []
    lines = [line.split() for line in out.read_text().splitlines() if line.strip()]
    return [(key, int(pid)) for key, pid in lines]


def checkpointed(db: Store, run_id: str, key: str) -> bool:
    """Whether step `key` of the run is recorded Completed: its side effect will not rerun.

    A test that kills a worker after a step must wait for this, not for the step's side
    effect alone: a kill between the effect and its checkpoint reruns the step, as promised.
    """
    step = db.load_steps(run_id).get(key)
    return step is not None and step.state == "Completed"

"""`flow.serve()` and `stead.serve()`: one process that deploys flows, creates their scheduled
runs and executes them (and runs asked for from the CLI) until Ctrl-C, on a real SQLite file.

The served script is tests/scripts/served_flows.py, started as a real subprocess in its own
process group, so a test signals the group as a terminal's Ctrl-C does."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from stead import flow
from stead.core.runtime import store_for
from stead.deployments.serve import to_deployment
from stead.errors import ConfigError
from stead.settings import get_settings
from stead.store.base import RunFilter, Store
from tests.conftest import SCRIPTS, script_env
from tests.worker.conftest import wait_until


class Served:
    """A `python served_flows.py MODE OUT` process and its output."""

    def __init__(self, home: Path, mode: str, out: Path) -> None:
        self.log = home.parent / f"serve-{mode}.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, str(SCRIPTS / "served_flows.py"), mode, str(out)],
                stdout=log, stderr=subprocess.STDOUT, env=script_env(home),
                start_new_session=True)

    def wait(self, check: Any, timeout: float, what: str) -> None:
        """Wait for `check()`; fail at once, with the output, if the process ended."""
        def ready() -> Any:
            if self.proc.poll() is not None:
                raise AssertionError(f"the serving process exited ({self.proc.returncode}) "
                                     f"before {what}:\n{self.output()}")
            return check()

        wait_until(ready, timeout, f"{what}\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to the whole process group (the server, forkserver, children)."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


@pytest.fixture
def served(stead_home: Path) -> Iterator[list[Served]]:
    started: list[Served] = []
    yield started
    for s in started:
        s.stop()


def cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stead.cli.main", *args], capture_output=True,
                          text=True, timeout=60, env=script_env(home))


def runs_of(db: Store, deployment: str) -> list:
    return db.list_runs(RunFilter(deployment=deployment, limit=1000))


def test_served_flow_runs_on_its_schedule_and_on_demand_then_stops_on_ctrl_c(
        backend: str, stead_home: Path, served: list[Served], tmp_path: Path) -> None:
    """On SQLite, PostgreSQL, and in remote mode (the served process talks to a server)."""
    out = tmp_path / "effects.txt"
    s = Served(stead_home, "interval", out)
    served.append(s)
    s.wait(lambda: "run it now" in s.output(), 60, "the process to say it serves")
    db = store_for(get_settings().database_url)
    s.wait(lambda: sum(r.state == "Completed" for r in runs_of(db, "ticking")) >= 3, 90,
               "three scheduled runs to complete")
    # The process says where it serves and how to trigger a run; that command works.
    text = s.output()
    assert "deployment 'ticking'" in text and "every 1 s" in text
    assert "stead deployments run ticking" in text
    asked = cli(stead_home, "deployments", "run", "ticking", "--param", "label=asked",
                "--run-id", "asked-1")
    assert asked.returncode == 0, asked.stderr
    s.wait(lambda: db.get_run("asked-1").state == "Completed", 60,
               "the run asked for from the CLI")
    lines = out.read_text().splitlines()
    assert any(line.startswith("asked asked-1 ticking ") for line in lines)
    scheduled = [r for r in runs_of(db, "ticking") if r.id.startswith("ticking@")]
    done = [r for r in scheduled if r.state == "Completed"]
    # Each scheduled run saw its own fire time as scheduled_start_time, and ran once.
    for run in done:
        assert f"tick {run.id} ticking {run.scheduled_for:.0f}" in lines
    assert len({line.split()[1] for line in lines}) == len(lines)

    s.interrupt()
    assert s.proc.wait(60) == 0, s.output()
    text = s.output()
    assert "serve returned" in text and "paused the schedules of ticking" in text
    # Stopped serving: the schedule is paused and its runs created ahead are gone, so no run
    # waits for a process that is not there.
    assert [sch.active for sch in db.list_schedules("ticking")] == [False]
    assert not [r for r in runs_of(db, "ticking") if r.state in ("Scheduled", "Running")]


def test_a_served_run_can_be_cancelled_and_ctrl_c_twice_hands_a_run_back(
        stead_home: Path, served: list[Served], tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    s = Served(stead_home, "interval", out)
    served.append(s)
    s.wait((stead_home / "stead.db").exists, 60, "the database")
    db = store_for(get_settings().database_url)
    s.wait(lambda: any(r.state == "Completed" for r in runs_of(db, "ticking")), 90,
               "the process to serve")
    assert cli(stead_home, "deployments", "run", "slow", "--run-id", "slow-1").returncode == 0
    s.wait(lambda: out.exists() and "slow slow-1 started" in out.read_text(), 60,
               "the slow run to start")
    cancelled = cli(stead_home, "runs", "cancel", "slow-1")
    assert cancelled.returncode == 0, cancelled.stderr
    s.wait(lambda: db.get_run("slow-1").state == "Cancelled", 60,
               "the served run to be Cancelled")
    assert "slow slow-1 finished" not in out.read_text()

    # A run in progress at Ctrl-C may finish; Ctrl-C again hands it back to its queue.
    assert cli(stead_home, "deployments", "run", "slow", "--run-id", "slow-2").returncode == 0
    s.wait(lambda: "slow slow-2 started" in out.read_text(), 60, "the second slow run")
    s.interrupt()
    s.wait(lambda: "draining" in s.output(), 30, "the process to start draining")
    assert s.proc.poll() is None  # still waiting for the run in progress
    s.interrupt()
    assert s.proc.wait(60) == 0, s.output()
    run = db.get_run("slow-2")
    assert run.state == "Pending" and run.queue == "slow", run.state
    assert "handed back" in s.output()


def test_serving_again_resumes_the_schedules_it_paused(stead_home: Path,
                                                       served: list[Served],
                                                       tmp_path: Path) -> None:
    out = tmp_path / "effects.txt"
    first = Served(stead_home, "one", out)
    served.append(first)
    first.wait((stead_home / "stead.db").exists, 60, "the database")
    db = store_for(get_settings().database_url)
    first.wait(lambda: any(r.state == "Completed" for r in runs_of(db, "tick")), 90,
               "a scheduled run")
    first.interrupt()
    assert first.proc.wait(60) == 0
    assert [sch.active for sch in db.list_schedules("tick")] == [False]
    before = len(runs_of(db, "tick"))
    second = Served(stead_home, "one", out)
    served.append(second)
    second.wait(lambda: sum(r.state == "Completed" for r in runs_of(db, "tick")) > before, 90,
               "a scheduled run of the second serve")
    assert [sch.active for sch in db.list_schedules("tick")] == [True]
    assert "(version 1," in second.output()  # nothing changed: the same version is served
    second.interrupt()
    assert second.proc.wait(60) == 0


@flow
def report(region: str, day: str = "today") -> str:
    return f"{region} {day}"


def test_arguments_are_checked_before_anything_is_deployed() -> None:
    with pytest.raises(ConfigError, match=r"cron= and interval= were both given; keep one"):
        to_deployment(report, cron="0 2 * * *", interval=60, parameters={"region": "eu"})
    with pytest.raises(ConfigError, match=r"cron='61 \* \* \* \*'.*bad minute"):
        to_deployment(report, cron="61 * * * *", parameters={"region": "eu"})
    with pytest.raises(ConfigError, match="interval must be seconds"):
        to_deployment(report, interval=0.5, parameters={"region": "eu"})
    with pytest.raises(ConfigError, match=r"'region' has no default: pass parameters="):
        to_deployment(report, cron="0 2 * * *")
    with pytest.raises(ConfigError, match="missed='never'"):
        to_deployment(report, missed="never")
    d = to_deployment(report, "nightly", interval=[timedelta(hours=1), 90],
                      parameters={"region": "eu"}, tags="etl")
    assert (d.name, d.queue, d.tags) == ("nightly", "nightly", ("etl",))
    assert [s.describe() for s in d.schedules] == ["every 1 h", "every 90 s"]
    # Without a schedule, a flow's required parameters come with each run.
    assert to_deployment(report).schedules == ()
    # Prefect's options that Stead does not take say what to do instead.
    with pytest.raises(ConfigError, match="version= is not supported: Stead numbers"):
        report.serve(version="1.2")
    with pytest.raises(ConfigError, match="Stead always checks"):
        report.to_deployment(enforce_parameter_schema=False)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) crn; known: name, cron"):
        report.serve(crn="0 2 * * *")
    assert report.to_deployment(enforce_parameter_schema=True).name == "report"


def test_serve_refuses_what_it_cannot_serve() -> None:
    from stead import serve

    with pytest.raises(ConfigError, match="at least one deployment"):
        serve()
    with pytest.raises(ConfigError, match="two deployments are named 'report'"):
        serve(report, report.to_deployment())
    with pytest.raises(ConfigError, match="limit=0"):
        serve(report, limit=0)

"""`stead runs ls` and `stead runs show` show run names, versions, tags and the steps'
display names, in a real `stead` subprocess over a database filled by real runs."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import stead
from stead import flow, task
from stead.core.runtime import store_for
from stead.store.base import RunFilter

Cli = Callable[..., subprocess.CompletedProcess[str]]


@task(task_run_name="fetch-{city}")
def fetch(city: str) -> int:
    return len(city)


@flow(flow_run_name="weather-{day}", version="7.3")
def weather(day: str) -> int:
    return fetch("Lisbon") + fetch("Oslo")


@flow(flow_run_name="child-{n}")
def child(n: int) -> int:
    return n


@flow
def plain() -> int:
    return child(2)


def test_runs_ls_shows_a_name_column_only_when_a_run_has_a_name(stead_cli: Cli) -> None:
    assert plain() == 2
    listing = stead_cli("runs", "ls", "--flow", "plain")
    assert listing.returncode == 0, listing.stderr
    header = next(line for line in listing.stdout.splitlines() if line.strip())
    assert header.split()[:3] == ["Run", "Flow", "State"]  # no listed run has a name
    with stead.tags("daily"):
        assert weather("2026-11-22") == 10
    listing = stead_cli("runs", "ls")
    assert listing.returncode == 0, listing.stderr
    header, *rows = [line for line in listing.stdout.splitlines() if line.strip()]
    assert header.split()[:4] == ["Run", "Flow", "Name", "State"]
    named = next(line for line in rows if " weather " in line)
    assert "weather-2026-11-22" in named.split()
    assert "child-2" in next(line for line in rows if " child " in line).split()


def test_runs_show_tells_name_version_tags_and_step_names(stead_cli: Cli) -> None:
    with stead.tags("daily", "eu"):
        weather("2026-11-23")
    assert plain() == 2
    [run] = store_for().list_runs(RunFilter(flow_name="weather"))
    shown = stead_cli("runs", "show", run.id)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert any(line.split()[1:3] == ["Name", "weather-2026-11-23"] for line in lines
               if line.startswith("│"))
    assert any(line.split()[1:3] == ["Version", "7.3"] for line in lines if line.startswith("│"))
    assert any(line.split()[1:4] == ["Tags", "daily,", "eu"] for line in lines
               if line.startswith("│"))
    assert "fetch-Lisbon (fetch)" in shown.stdout and "fetch-Oslo (fetch)" in shown.stdout
    [parent] = store_for().list_runs(RunFilter(flow_name="plain"))
    shown = stead_cli("runs", "show", parent.id)
    assert "child-2 (child)" in shown.stdout  # the child flow's step, by the child's name
    assert "child (child-2)" in shown.stdout  # and the child runs table
    assert "Version" not in shown.stdout and "Name  " not in shown.stdout.split("Steps")[0]

"""Fixtures of the fault matrix: a PostgreSQL cluster of the package's own (never a shared
server: scenarios stop and restart it), a fresh database per test, and the recorder that
writes each scenario's figures, with its outcome, to a JSON-lines file for
`python -m tests.faults.report`: $STEAD_FAULTS_FIGURES, else build/faults-figures.jsonl in
the checkout (not pytest's base temporary folder: sessions of other users of the machine
move its pytest-current link). Rows are appended; the report keeps each scenario's latest."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from itertools import count
from pathlib import Path

import pytest

from stead.core.runtime import close_stores, store_for
from stead.settings import get_settings, reset_settings
from stead.store.base import Store
from tests.conftest import SCRIPTS
from tests.faults.harness import Figures, kill_leftovers
from tests.postgres import Cluster, create_database, drop_database

if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

DEFAULT_FIGURES = Path(__file__).resolve().parents[2] / "build" / "faults-figures.jsonl"
_OUTCOME = pytest.StashKey[pytest.TestReport]()
_names = count()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Iterator[None]:
    report = yield
    if report.when == "call" or (report.when == "setup" and report.failed):
        item.stash[_OUTCOME] = report
    return report


@pytest.fixture(autouse=True)
def no_leftovers() -> Iterator[None]:
    """Whatever a scenario started (flows, CLI commands, servers) ends with the test."""
    yield
    kill_leftovers()


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    """The package's own PostgreSQL cluster, on a free loopback port."""
    own = Cluster()
    yield own
    own.stop()


def fresh_database(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated database on `cluster`, made the test's STEAD_DATABASE_URL."""
    from stead.store.postgres import PostgresStore

    name = f"faults_{os.getpid()}_{next(_names)}"
    url = create_database(cluster.url, name)
    PostgresStore(url).close()  # migrated here, not by the processes racing to start
    monkeypatch.setenv("STEAD_DATABASE_URL", url)
    close_stores()
    reset_settings()
    yield url
    close_stores()
    try:
        drop_database(cluster.url, name)
    except Exception:  # a scenario that left its cluster down must not hide its own failure
        pass


@pytest.fixture
def pg_url(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield from fresh_database(cluster, monkeypatch)


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, stead_home: Path,
           monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The scenario on an SQLite file in the test's Stead home, then on PostgreSQL."""
    if request.param == "postgres":
        yield from fresh_database(request.getfixturevalue("cluster"), monkeypatch)
        return
    store_for().close()  # the file and its schema exist before any process races for them
    close_stores()
    yield get_settings().database_url


@pytest.fixture
def db(db_url: str) -> Store:
    return store_for(db_url)


def figures_path() -> Path:
    env = os.environ.get("STEAD_FAULTS_FIGURES")
    return Path(env) if env else DEFAULT_FIGURES


@pytest.fixture
def figures(request: pytest.FixtureRequest) -> Iterator[Callable[..., Figures]]:
    """`figures(scenario, backend, injected)` starts a scenario's figures; they are written
    with the test's outcome when it ends, whether it passed or not."""
    made: list[Figures] = []

    def new(scenario: str, backend: str, injected: str) -> Figures:
        made.append(Figures(scenario, backend, injected))
        return made[-1]

    yield new
    report = request.node.stash.get(_OUTCOME, None)
    outcome = report.outcome if report is not None else "error"
    failure = ""
    if report is not None and report.failed:
        crash = getattr(report.longrepr, "reprcrash", None)
        failure = (crash.message if crash is not None else str(report.longrepr))[:400]
    path = figures_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as out:
        for fig in made:
            row = {**fig.as_dict(), "test": request.node.nodeid, "outcome": outcome,
                   "failure": failure, "at": time.time()}
            out.write(json.dumps(row) + "\n")

"""The durability dial: options and settings, the level recorded and applied, batched runs.

The SIGKILL tests proving what each level re-runs after a crash are in test_durability_crash.py.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest

from stead import flow, task
from stead.core.context import current_run
from stead.core.runtime import close_stores, store_for
from stead.errors import ConfigError
from stead.settings import Settings, reset_settings
from stead.store.base import RunFilter


@task
def inc(i: int) -> int:
    return i + 1


@flow
def count_to(n: int) -> int:
    return sum(inc(i) for i in range(n))


def test_a_bad_level_is_a_config_error_that_lists_the_three_choices(
        monkeypatch: pytest.MonkeyPatch) -> None:
    for make in (lambda: flow(durability="always")(lambda: 1),
                 lambda: count_to.with_options(durability="FULL"),
                 lambda: count_to.enqueue(3, durability="sync")):
        with pytest.raises(ConfigError) as info:
            make()
        message = str(info.value)
        assert "'fsync'" in message and "'process'" in message and "'batched'" in message
    monkeypatch.setenv("STEAD_DURABILITY", "disk")
    with pytest.raises(ConfigError, match=r"STEAD_DURABILITY.*'fsync'.*'process'.*'batched'"):
        Settings.from_env()


def test_the_superseded_sqlite_setting_still_means_what_it_meant(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings.from_env().durability == "process"  # the default
    monkeypatch.setenv("STEAD_SQLITE_SYNCHRONOUS", "FULL")
    assert Settings.from_env().durability == "fsync"
    monkeypatch.setenv("STEAD_SQLITE_SYNCHRONOUS", "normal")
    assert Settings.from_env().durability == "process"
    monkeypatch.setenv("STEAD_DURABILITY", "fsync")
    with pytest.raises(ConfigError, match="unset STEAD_SQLITE_SYNCHRONOUS"):
        Settings.from_env()
    monkeypatch.setenv("STEAD_SQLITE_SYNCHRONOUS", "OFF")
    with pytest.raises(ConfigError, match="superseded by STEAD_DURABILITY"):
        Settings.from_env()


def test_the_level_is_recorded_per_flow_per_run_and_inherited_by_child_runs(
        backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    @flow
    def child() -> int:
        return inc(1)

    @flow(durability="fsync")
    def fsync_child() -> int:
        return inc(2)

    @flow(durability="batched")
    def parent() -> int:
        return child() + fsync_child() + inc(3)

    parent.with_options(run_id="p")()
    count_to.with_options(run_id="default")(2)
    count_to.with_options(run_id="per-run", durability="fsync")(2)
    store = store_for()
    levels = {r.id: r.durability for r in store.list_runs(RunFilter(limit=10))}
    assert levels == {"p": "batched", "p:1": "batched", "p:2": "fsync",
                      "default": "process", "per-run": "fsync"}
    monkeypatch.setenv("STEAD_DURABILITY", "batched")
    reset_settings()
    count_to.with_options(run_id="from-setting")(2)
    assert store_for().get_run("from-setting").durability == "batched"


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_sqlite_commits_each_run_at_its_level(backend: str) -> None:

    @task
    def synchronous_now() -> int:  # what this thread's connection commits with
        store = store_for()
        return int(store._conn().execute("PRAGMA synchronous").fetchone()[0])

    @flow
    def probe(n: int) -> list[int]:
        return [inc(0) and synchronous_now() for _ in range(n)]

    assert probe.with_options(durability="fsync")(2) == [2, 2]  # FULL after its own step
    assert probe.with_options(durability="process")(2) == [1, 1]  # NORMAL
    assert probe.with_options(durability="fsync")(1) == [2]


@pytest.mark.parametrize("backend", ["postgres"], indirect=True)
def test_postgres_commits_each_run_at_its_level(backend: str) -> None:
    store = store_for()

    @task
    def synchronous_commit() -> list[str]:  # the sessions of the pool's idle connections
        seen = []
        for _ in range(2):
            with store._pool.connection() as conn:
                seen.append(getattr(conn, "_stead_sync", None))
                assert conn.execute("SHOW synchronous_commit").fetchone()[0] == seen[-1]
        return seen

    @flow
    def probe() -> list[str]:
        inc(0)
        return synchronous_commit()

    assert "on" in probe.with_options(durability="fsync")()
    assert "off" in probe.with_options(durability="process")()


def test_a_batched_run_records_every_step_and_resumes_like_any_other(backend: str) -> None:
    fail = {"at": 150}

    @task
    def maybe_fail(i: int) -> int:
        if i == fail["at"]:
            raise KeyboardInterrupt  # like Ctrl-C: the run is Crashed, resumable
        return i

    @flow(durability="batched")
    def long(n: int) -> int:
        return sum(inc(maybe_fail(i)) for i in range(n))

    with pytest.raises(KeyboardInterrupt):
        long.with_options(run_id="b")(300)
    store = store_for()
    assert store.get_run("b").state == "Crashed"
    # Every step before the interruption was committed with the Crashed transition.
    assert store.count_steps(["b"])["b"] == 300
    fail["at"] = -1
    assert long.resume("b") == sum(range(1, 301))
    assert store.count_steps(["b"])["b"] == 600


def test_a_stuck_flow_has_its_pending_group_committed_by_the_timer(
        backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEAD_BATCH_STEPS", "1000")
    monkeypatch.setenv("STEAD_BATCH_MS", "20")
    reset_settings()
    release = threading.Event()

    @task
    def stuck() -> int:
        release.wait(30)
        return 0

    @flow(durability="batched")
    def slow_tail() -> int:
        return inc(1) + inc(2) + inc(3) + stuck()

    thread = threading.Thread(target=slow_tail.with_options(run_id="stuck"))
    thread.start()
    try:
        store = store_for()
        deadline = time.monotonic() + 10
        while store.count_steps(["stuck"]).get("stuck", 0) < 3:
            assert time.monotonic() < deadline, "the group was not committed while stuck"
            time.sleep(0.01)
    finally:
        release.set()
        thread.join(30)
    assert store.get_run("stuck").state == "Completed"


def test_a_child_run_starts_only_after_its_parents_pending_steps_are_committed(
        backend: str) -> None:
    @task
    def committed_steps_of(run_id: str) -> int:
        return store_for().count_steps([run_id])[run_id]

    @flow
    def child(parent_id: str) -> int:
        return committed_steps_of(parent_id)

    @flow(durability="batched")
    def parent() -> int:
        inc(1)
        inc(2)
        return child(current_run.get().run.id)  # type: ignore[union-attr]

    assert parent.with_options(run_id="ordered")() == 2


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)  # reads the file directly
def test_batched_steps_are_committed_in_groups(backend: str, stead_home: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEAD_BATCH_STEPS", "50")
    monkeypatch.setenv("STEAD_BATCH_MS", "10000")
    reset_settings()
    seen: list[int] = []

    @task
    def committed_so_far() -> int:  # read on a connection of its own
        path = stead_home / "stead.db"
        with sqlite3.connect(path) as conn:
            return int(conn.execute("SELECT count(*) FROM steps").fetchone()[0])

    @flow(durability="batched")
    def grouped() -> int:
        for i in range(120):
            inc(i)
            if i % 10 == 9:
                seen.append(committed_so_far())
        return 0

    grouped()
    # Steps (the probes too) become visible 50 at a time, never one by one.
    assert seen and all(n % 50 == 0 for n in seen)
    assert max(seen) >= 100
    close_stores()


def test_runs_show_states_the_level_and_what_it_survives(stead_home: Path) -> None:
    from typer.testing import CliRunner

    from stead.cli.main import app

    count_to.with_options(run_id="shown", durability="batched")(3)
    count_to.with_options(run_id="shown-fsync", durability="fsync")(3)
    runner = CliRunner()
    out = runner.invoke(app, ["runs", "show", "shown"], env={"COLUMNS": "250"}).stdout
    assert "Durability" in out and "batched" in out
    assert "a crash re-runs at most the last group" in out
    out = runner.invoke(app, ["runs", "show", "shown-fsync"], env={"COLUMNS": "250"}).stdout
    assert "fsync: survives power loss" in out


def test_the_api_and_the_wire_carry_the_level(backend: str) -> None:
    from stead.server.schemas import Run
    from stead.store import wire

    count_to.with_options(run_id="api", durability="fsync")(1)
    run = store_for().get_run("api")  # through the server's store in remote mode
    assert run.durability == "fsync"
    assert Run.of(run).durability == "fsync"
    assert wire.loads(wire.dumps(run)).durability == "fsync"



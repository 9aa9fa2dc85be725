"""A flow executed by a remote worker reads variables through the server with the worker's
key, which may not change them; the reads are recorded steps of the run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import variable_flows

from stead.core.runtime import close_stores
from stead.server.apikeys import new_api_key
from stead.settings import reset_settings
from stead.store import open_store
from stead.store.base import Store
from tests.conftest import serve_in_thread
from tests.worker.conftest import Workers, wait_until


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    backing = open_store(f"sqlite:///{tmp_path / 'server.db'}")
    url, stop = serve_in_thread(backing, require_auth=True)
    yield url, backing
    stop()
    backing.close()


def test_a_worker_key_reads_variables_and_may_not_write_them(
        server: tuple[str, Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url, backing = server
    keys = {}
    for role in ("operator", "worker"):
        keys[role], record = new_api_key(f"{role}-key", time.time(), role=role)
        backing.create_api_key(record)
    backing.set_variable("batch_size", "default", "500", None, time.time())  # type: ignore
    monkeypatch.setenv("STEAD_DATABASE_URL", url)
    monkeypatch.setenv("STEAD_API_KEY", keys["operator"])  # who enqueues
    close_stores()
    reset_settings()
    run = variable_flows.configured.enqueue(queue="vars")
    workers = Workers(url, tmp_path)
    try:
        workers.start("-q", "vars", STEAD_API_KEY=keys["worker"])
        wait_until(lambda: backing.get_run(run).state == "Completed", 60,
                   "the remote worker to complete the run")
    finally:
        workers.stop_all()
    assert run.result(timeout=10) == {"size": 500, "wrote": "refused"}
    assert backing.get_variable("touched_by_worker", "default") is None  # type: ignore
    steps = backing.load_steps(run.id)
    assert [(s.kind, s.name, s.state) for s in steps.values()] == [
        ("variable", "Variable.get('batch_size')", "Completed"),
        ("variable", "Variable.set('touched_by_worker')", "Failed")]

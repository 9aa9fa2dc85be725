"""A remote worker: a process with only the server's URL and an API key executes runs; the
server refuses it once its key is revoked."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import queued_flows

from stead.core.runtime import close_stores
from stead.errors import StoreError
from stead.server.apikeys import new_api_key
from stead.settings import reset_settings
from stead.store import open_store
from stead.store.base import Store
from stead.store.http import HttpStore
from tests.conftest import serve_in_thread
from tests.worker.conftest import Workers, effects, wait_until


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Store]]:
    """A server that requires API keys, over an SQLite database only it opens."""
    backing = open_store(f"sqlite:///{tmp_path / 'server.db'}")
    url, stop = serve_in_thread(backing, require_auth=True)
    yield url, backing
    stop()
    backing.close()


def test_a_worker_with_only_a_url_and_a_key_completes_runs(server: tuple[str, Store],
                                                           tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch
                                                           ) -> None:
    url, backing = server
    key, record = new_api_key("worker-host-2", time.time())
    backing.create_api_key(record)
    monkeypatch.setenv("STEAD_DATABASE_URL", url)
    monkeypatch.setenv("STEAD_API_KEY", key)
    close_stores()
    reset_settings()
    out = tmp_path / "effects.txt"
    ids = [queued_flows.twenty.enqueue(out=str(out), queue="remote", n=5) for _ in range(6)]
    workers = Workers(url, tmp_path)
    try:
        workers.start("-q", "remote", "-c", "2", STEAD_API_KEY=key)
        wait_until(lambda: all(backing.get_run(r).state == "Completed" for r in ids), 60,
                   "the remote worker to complete every run")
        assert len(effects(out)) == 30
        assert [w.host for w in backing.list_workers()]  # it reported itself to the server
    finally:
        workers.stop_all()


def test_a_revoked_key_is_refused(server: tuple[str, Store], tmp_path: Path) -> None:
    url, backing = server
    key, record = new_api_key("old", time.time())
    backing.create_api_key(record)
    backing.revoke_api_key(record.id, time.time())
    workers = Workers(url, tmp_path)
    try:
        proc = workers.start("-q", "remote", STEAD_API_KEY=key)
        assert proc.wait(60) == 2
        assert "refused the API key" in workers.log(proc)
    finally:
        workers.stop_all()
    with pytest.raises(StoreError, match="refused the API key"):
        HttpStore(url, api_key=key).get_run("x")
    with pytest.raises(StoreError, match="refused the API key"):
        HttpStore(url).get_run("x")  # no key at all


def test_a_workers_key_cannot_manage_keys_or_prune(server: tuple[str, Store]) -> None:
    url, backing = server
    key, record = new_api_key("worker", time.time())
    backing.create_api_key(record)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    for verb in ("create_api_key", "list_api_keys", "revoke_api_key", "prune_runs"):
        answer = httpx.post(f"{url}/api/v1/store/{verb}", headers=headers, content=b"{}")
        assert answer.status_code == 404, verb
    assert httpx.post(f"{url}/api/v1/store/list_runs", headers=headers,
                      content=b'{"args": [{"__record__": "RunFilter"}]}').status_code == 200


def test_a_worker_key_executes_its_namespaces_runs_of_its_queues_only(
        server: tuple[str, Store], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The least privilege a worker needs is enough: claims, heartbeats, child runs, tag slots
    and checkpoints all pass the server's checks; another namespace's run is not claimed."""
    from stead.store.base import Limit

    url, backing = server
    backing.set_limit(Limit("db", concurrency=1))
    made = {}
    for name, role, spaces in [("ops-a", "operator", ("team-a",)),
                               ("ops-b", "operator", ("team-b",)),
                               ("etl-a", "worker", ("team-a",))]:
        key, record = new_api_key(name, time.time(), role=role, namespaces=spaces,
                                  queues=("remote",) if role == "worker" else None)
        backing.create_api_key(record)
        made[name] = key
    out = tmp_path / "effects.txt"
    ids = {}
    for team, key in (("team-a", made["ops-a"]), ("team-b", made["ops-b"])):
        monkeypatch.setenv("STEAD_DATABASE_URL", url)
        monkeypatch.setenv("STEAD_API_KEY", key)
        monkeypatch.setenv("STEAD_NAMESPACE", team)
        close_stores()
        reset_settings()
        ids[team] = queued_flows.parent_of_two.enqueue(out=str(out), queue="remote")
    close_stores()
    workers = Workers(url, tmp_path)
    try:
        workers.start("-q", "remote", "-c", "1", STEAD_API_KEY=made["etl-a"])
        wait_until(lambda: backing.get_run(ids["team-a"]).state in ("Completed", "Failed"),
                   60, "the worker to finish team-a's run")
        run = backing.get_run(ids["team-a"])
        assert run.state == "Completed", (run.error, workers.log(workers.procs[0]))
        assert run.created_by is not None and run.created_by.startswith("operator:")
        assert len(effects(out)) == 6  # 2 + 3 effects of the children, 1 tagged task
        time.sleep(1.0)  # several polls: team-b's run on the same queue is not claimed
        assert backing.get_run(ids["team-b"]).state == "Pending"
        assert "AccessDenied" not in workers.log(workers.procs[0])
    finally:
        workers.stop_all()

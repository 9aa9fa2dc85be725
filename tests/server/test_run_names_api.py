"""GET /api/v1/runs, /runs/{id} and /runs/{id}/steps show a run's name and version and the
steps' display names, from a real server process (on every backend)."""

from __future__ import annotations

import stead
from stead import flow, task
from stead.store.base import RunFilter, Store
from tests.server.conftest import Server


@task(task_run_name="load-{table}")
def load(table: str) -> int:
    return len(table)


@flow(flow_run_name="sync-{region}", version="4.0.1")
def sync(region: str) -> int:
    return load("orders") + load("users")


@flow
def unnamed() -> int:
    return 1


def test_runs_show_their_name_version_and_step_names(server: Server, db: Store) -> None:
    with stead.tags("api"):
        assert sync("eu") == 11
    assert unnamed() == 1
    named = next(r for r in db.list_runs(RunFilter()) if r.flow_name == "sync")
    with server.client() as http:
        got = http.get(f"/api/v1/runs/{named.id}").json()
        assert (got["name"], got["version"], got["tags"]) == ("sync-eu", "4.0.1", ["api"])
        listed = {r["flow_name"]: (r["name"], r["version"])
                  for r in http.get("/api/v1/runs").json()["items"]}
        assert listed == {"sync": ("sync-eu", "4.0.1"), "unnamed": (None, None)}
        steps = http.get(f"/api/v1/runs/{named.id}/steps").json()["items"]
        assert [(s["name"], s["run_name"]) for s in steps] == [("load", "load-orders"),
                                                               ("load", "load-users")]
        tagged = http.get("/api/v1/runs", params={"tag": "api"}).json()["items"]
        assert [r["id"] for r in tagged] == [named.id]

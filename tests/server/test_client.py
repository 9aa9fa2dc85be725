"""The Python client (stead.client) against a real server process: runs, deployments,
cancellation through POST /api/v1/runs/{id}/cancel, and errors as ApiError."""

from __future__ import annotations

import sys
import time

import pytest

from stead.client import ApiError, Client
from stead.core.runtime import store_for
from stead.deployments.registry import deploy
from tests.conftest import SCRIPTS

if str(SCRIPTS) not in sys.path:
    sys.path.insert(0, str(SCRIPTS))

import deployed_flows


def test_the_client_runs_a_deployment_lists_and_cancels(server) -> None:
    store = store_for()
    deploy(store, deployed_flows.report, name="daily", now=time.time(), queue="etl")
    with Client(server.url) as api:
        assert [d["name"] for d in api.deployments()] == ["daily"]
        made = [api.run_deployment("daily", {"day": "2026-11-2" + str(i)}) for i in range(3)]
        assert {r["id"] for r in api.runs(deployment="daily", page_size=2)} == {
            r["id"] for r in made}
        cancelled = api.cancel(made[0]["id"])
        assert cancelled["state"] == "Cancelled"
        assert [c["state"] for c in api.history(made[0]["id"])][-1] == "Cancelled"
        assert api.cancel(made[0]["id"])["state"] == "Cancelled"  # again: nothing changes
        assert [q["name"] for q in api.queues()] == ["etl"]
        with pytest.raises(ApiError) as bad:
            api.run_deployment("daily", {"day": "not a day"})
        assert bad.value.status == 422 and "parameter 'day'" in str(bad.value)
        with pytest.raises(ApiError) as missing:
            api.run("no-such-run")
        assert missing.value.status == 404


def test_cancelling_a_finished_run_is_a_conflict(server) -> None:
    store = store_for()
    deploy(store, deployed_flows.tidy, name="t", now=time.time(), queue="etl")
    with Client(server.url) as api:
        run = api.run_deployment("t")
        store.cancel_run(run["id"], time.time(), "first")
        from stead.store.base import RunRecord

        store.create_run(RunRecord(id="done", flow_name="t", state="Completed",
                                   created_at=1.0), "test")
        with pytest.raises(ApiError) as conflict:
            api.cancel("done")
        assert conflict.value.status == 409 and "Completed" in str(conflict.value)

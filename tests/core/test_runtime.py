"""`stead.runtime`: the flow run, task run and deployment the running code belongs to, read
from the engine's context; empty values outside a run, as Prefect's `prefect.runtime`."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import pytest

from stead import flow, runtime, task
from stead.core.runtime import store_for
from stead.deployments.registry import deploy, run_deployment
from stead.deployments.scheduler import tick
from stead.deployments.schedules import Schedule
from stead.runtime import deployment, flow_run, task_run
from stead.store.base import WorkerRecord

WORKER = WorkerRecord("w-test", "w-test", "here", 1, '["rt"]', 1, "running", 1.0, 1.0)


def test_outside_a_run_every_attribute_is_empty() -> None:
    before = datetime.now(UTC)
    start = flow_run.scheduled_start_time
    assert before <= start <= datetime.now(UTC) and start.tzinfo is UTC
    assert (flow_run.id, flow_run.name, flow_run.flow_name, flow_run.parent_flow_run_id,
            flow_run.root_flow_run_id, flow_run.deployment_name) == (None,) * 6
    assert (flow_run.parameters, flow_run.tags, flow_run.run_count) == ({}, [], 0)
    assert (task_run.id, task_run.name, task_run.task_name, task_run.flow_run_id,
            task_run.idempotency_key) == (None,) * 5
    assert (task_run.parameters, task_run.run_count) == ({}, 0)
    assert (deployment.id, deployment.name, deployment.version, deployment.flow_run_id) == (
        None,) * 4
    assert deployment.parameters == {}


attempts: list[int] = []


@task(retries=1, retry_delay=0)
def shaky(x: int) -> dict[str, Any]:
    attempts.append(task_run.run_count)
    if len(attempts) == 1:
        raise ValueError("first attempt fails")
    return {"id": task_run.id, "name": task_run.name, "task": task_run.task_name,
            "params": task_run.parameters, "count": task_run.run_count,
            "run": task_run.flow_run_id, "key": task_run.idempotency_key}


@task
def where() -> str | None:
    return task_run.id


@flow
def child() -> tuple[str | None, str | None, str | None]:
    return flow_run.id, flow_run.parent_flow_run_id, flow_run.root_flow_run_id


@flow
def observed(region: str, day: str = "monday") -> dict[str, Any]:
    return {
        "id": flow_run.id, "name": flow_run.name, "flow": flow_run.flow_name,
        "params": flow_run.parameters, "count": flow_run.run_count,
        "start": flow_run.scheduled_start_time, "body_task": task_run.id,
        "shaky": shaky(3), "submitted": [where.submit().result(), where.submit().result()],
        "child": child(), "deployment": deployment.name,
    }


def test_inside_a_flow_and_its_tasks(backend: str) -> None:
    attempts.clear()
    got = observed.with_options(run_id="obs-1")("eu")
    run = store_for().get_run("obs-1")
    assert (got["id"], got["name"], got["flow"]) == ("obs-1", "observed", "observed")
    assert got["params"] == {"region": "eu", "day": "monday"}
    assert got["count"] == 1 and got["body_task"] is None and got["deployment"] is None
    assert got["start"] == datetime.fromtimestamp(run.created_at, UTC)
    assert attempts == [1, 2]  # each attempt sees its number
    assert got["shaky"] == {"id": "1", "name": "shaky", "task": "shaky", "params": {"x": 3},
                            "count": 2, "run": "obs-1", "key": "obs-1/1"}
    assert got["submitted"] == ["2", "3"]  # in a worker thread too
    assert got["child"] == ("obs-1:4", "obs-1", "obs-1")


failing = {"once": True}


@flow
def resumable() -> tuple[int, datetime]:
    seen = (flow_run.run_count, flow_run.scheduled_start_time)
    if failing["once"]:
        failing["once"] = False
        raise RuntimeError("fails the first time")
    return seen


def test_a_resumed_run_counts_its_attempts_and_keeps_its_start_time(backend: str) -> None:
    failing["once"] = True
    with pytest.raises(RuntimeError, match="fails the first time"):
        resumable.with_options(run_id="res-1")()
    time.sleep(0.01)  # so that a start time taken at the resume would differ
    count, start = resumable.resume("res-1")
    assert count == 2  # the first attempt and the resume
    # The time it was created, as in the first execution: a resume computes the same.
    assert start == datetime.fromtimestamp(store_for().get_run("res-1").created_at, UTC)


@flow
def deployed(region: str = "us") -> dict[str, Any]:
    return {"name": deployment.name, "id": deployment.id, "version": deployment.version,
            "defaults": deployment.parameters, "params": flow_run.parameters,
            "start": flow_run.scheduled_start_time.timestamp(), "run": deployment.flow_run_id,
            "via": runtime.flow_run.deployment_name}


def test_in_a_deployments_scheduled_run(backend: str) -> None:
    store = store_for()
    now = 1_800_000_000.0
    deploy(store, deployed, name="rt-dep", now=now, params={"region": "eu"}, queue="rt",
           schedules=[Schedule.interval(60)])
    report = tick(store, now + 60.5)
    [run_id] = [r for r in report.created if store.get_run(r).state == "Pending"]
    [claimed] = store.claim_runs(["rt"], WORKER, "here|1|1", 1, now=now + 61, lease_s=30.0)
    got = deployed.execute_claimed(claimed, store)
    assert got == {"name": "rt-dep", "id": "rt-dep", "version": 1,
                   "defaults": {"region": "eu"}, "params": {"region": "eu"},
                   "start": now + 60, "run": run_id, "via": "rt-dep"}
    # A run asked for by hand with other parameters: its deployment's defaults stay visible.
    run, _ = run_deployment(store, "rt-dep", now + 70, params={"region": "ap"})
    [claimed] = store.claim_runs(["rt"], WORKER, "here|1|1", 1, now=now + 71, lease_s=30.0)
    got = deployed.execute_claimed(claimed, store)
    assert (got["params"], got["defaults"], got["start"]) == (
        {"region": "ap"}, {"region": "eu"}, store.get_run(run.id).created_at)

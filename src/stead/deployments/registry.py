"""Deploying a flow (a named, versioned registration of its entrypoint, default parameters,
queue, tags and schedules) and creating runs of a deployment.

A run of a deployment is an enqueued run (`Flow.enqueue` without the code at hand): its
parameters are the deployment's defaults overridden by the caller's, checked against the
schema stored at deploy time, and it records the deployment version it ran.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from stead.core.execution import new_run_id
from stead.core.flow import Flow
from stead.core.serialization import encode
from stead.deployments.params import check_parameters, parameter_schema
from stead.deployments.schedules import MISSED_POLICIES, Schedule
from stead.errors import ConfigError, DeploymentNotFound, ParameterError
from stead.settings import get_settings
from stead.store.base import DeploymentRecord, RunRecord, ScheduleRecord, Store


@dataclass(frozen=True)
class Deployed:
    deployment: DeploymentRecord
    created: bool  # False: identical to the latest version, which was kept


def deploy(store: Store, flow: Flow[Any, Any], *, name: str, now: float,
           params: dict[str, Any] | None = None, queue: str = "default",
           tags: list[str] | tuple[str, ...] = (), description: str | None = None,
           schedules: list[Schedule] | tuple[Schedule, ...] = (), missed: str = "latest"
           ) -> Deployed:
    """Register `flow` as deployment `name`: a new version unless nothing changed.

    The deployment's schedules are replaced by `schedules`; a schedule that is kept keeps
    its progress, so redeploying never creates a scheduled run twice.

    Example:
        >>> deploy(store, etl, name="nightly", now=time.time(), params={"region": "eu"},
        ...        queue="etl", schedules=[Schedule.cron("0 2 * * *", "Europe/Berlin")])
    """
    if not name or any(c in name for c in ":@/ \t\n"):
        raise ConfigError(f"deployment name {name!r}: use letters, digits, '-', '_' or '.' "
                          "(no ':', '@', '/' or spaces), e.g. nightly-etl")
    if missed not in MISSED_POLICIES:
        raise ConfigError(f"missed-run policy {missed!r}: use one of {', '.join(MISSED_POLICIES)}")
    from stead.core.enqueue import check_loadable

    check_loadable(flow)
    params = dict(params or {})
    schema = parameter_schema(flow.fn)
    what = f"deployment {name!r}"
    partial = {**schema, "required": []}  # defaults may leave some parameters to each run
    check_parameters(partial, params, what)
    if schedules:
        missing = [n for n in schema.get("required", []) if n not in params]
        if missing:
            raise ParameterError(f"{what}: scheduled runs need a value for every parameter; "
                                 f"give {missing[0]!r} a default with --param "
                                 f"{missing[0]}=VALUE")
    record = DeploymentRecord(
        name=name, version=0, flow_name=flow.name, entrypoint=flow.entrypoint,
        script_path=flow.script_path, params=encode(params),
        param_schema=json.dumps(schema), queue=queue,
        tags=json.dumps(list(tags)), description=description, created_at=now,
        namespace=get_settings().namespace)
    created = True
    try:
        latest = store.get_deployment(name)
    except DeploymentNotFound:  # the first version
        latest = None
    if latest is not None and _same(latest, record):
        record, created = latest, False
    else:
        record = store.save_deployment(record)
    store.set_schedules(name, [ScheduleRecord(None, name, s.to_json(), True, missed, None, now)
                               for s in schedules])
    return Deployed(record, created)


def _same(a: DeploymentRecord, b: DeploymentRecord) -> bool:
    fields = ("flow_name", "entrypoint", "script_path", "params", "param_schema", "queue",
              "tags", "description")
    return all(getattr(a, f) == getattr(b, f) for f in fields)


def run_deployment(store: Store, name: str, now: float, *, params: dict[str, Any] | None = None,
                   run_id: str | None = None, version: int | None = None,
                   scheduled_for: float | None = None, message: str | None = None,
                   hold: bool = False) -> tuple[RunRecord, bool]:
    """Create a run of deployment `name` (its latest version unless `version`); returns the
    run and whether this call created it (False: `run_id` existed, nothing changed).

    A run scheduled for later is Scheduled until it is due, then Pending for a worker. With
    `hold` it is Scheduled even when due: the scheduler's `promote_due_runs` makes it Pending,
    if its deployment's schedules are still active.

    Example:
        >>> run, created = run_deployment(store, "nightly", time.time(),
        ...                               params={"day": "2026-11-21"})
        >>> run.state
        'Pending'
    """
    dep = store.get_deployment(name, version)
    merged = {**json.loads(dep.params), **(params or {})}
    check_parameters(json.loads(dep.param_schema), merged,
                     f"deployment {name!r} (version {dep.version})")
    later = scheduled_for is not None and (hold or scheduled_for > now)
    state = "Scheduled" if later else "Pending"
    record = RunRecord(
        id=run_id or new_run_id(), flow_name=dep.flow_name, state=state,
        entrypoint=dep.entrypoint, script_path=dep.script_path, params=encode(merged),
        created_at=now, queue=dep.queue, tags=dep.tags,
        max_recoveries=get_settings().max_recoveries, deployment=dep.name,
        deployment_version=dep.version, scheduled_for=scheduled_for, namespace=dep.namespace)
    return store.create_run(record, message or f"run of deployment {name} v{dep.version} "
                                               f"on queue {dep.queue!r}")

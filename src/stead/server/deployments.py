"""/api/v1/deployments: deployments, their schedules, and creating a run of one."""

from __future__ import annotations

import time

from fastapi import APIRouter, Response

from stead.server.deps import StoreDep
from stead.server.errors import NOT_FOUND
from stead.server.schemas import (
    CreateRun,
    Deployment,
    DeploymentList,
    Run,
    Schedule,
    ScheduleList,
)

router = APIRouter(prefix="/deployments", tags=["deployments"])


@router.get("", summary="List deployments", response_model=DeploymentList,
            description="The latest version of every deployment, by name.")
def list_deployments(store: StoreDep) -> DeploymentList:
    return DeploymentList(items=[Deployment.of(d) for d in store.list_deployments()])


@router.get("/{name}", summary="Get a deployment", response_model=Deployment,
            responses=NOT_FOUND, description="The latest version of the deployment `name`.")
def get_deployment(name: str, store: StoreDep) -> Deployment:
    return Deployment.of(store.get_deployment(name))


@router.post("/{name}/runs", summary="Create a run of a deployment", status_code=201,
             response_model=Run, responses={
                 **NOT_FOUND,
                 200: {"model": Run, "description": "A run with this `run_id` existed: "
                                                    "nothing was created"}},
             description=(
                 "Enqueue a run of the deployment's latest version on its queue, for a "
                 "worker to execute. `parameters` override the deployment's defaults and are "
                 "checked against its parameter schema: a value that does not fit is a 422 "
                 "whose message names the parameter. With `run_id` the request is "
                 "idempotent: if that run exists, it is returned (200) and nothing changes."))
def create_run(name: str, body: CreateRun, response: Response, store: StoreDep) -> Run:
    # Imported here: deployments load pydantic models and jsonschema, which only this route
    # needs.
    from stead.deployments.registry import run_deployment

    run, created = run_deployment(store, name, time.time(), params=body.parameters,
                                  run_id=body.run_id)
    if not created:
        response.status_code = 200
    return Run.of(run)


@router.get("/{name}/schedules", summary="List a deployment's schedules",
            response_model=ScheduleList, responses=NOT_FOUND,
            description="The schedules of the deployment `name`, with their progress.")
def list_schedules(name: str, store: StoreDep) -> ScheduleList:
    store.get_deployment(name)  # DeploymentNotFound: 404
    return ScheduleList(items=[Schedule.of(s) for s in store.list_schedules(name)])

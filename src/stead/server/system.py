"""Health and readiness, and the state of the system: queues, workers, tag limits."""

from __future__ import annotations

import time

import anyio
from fastapi import APIRouter, Request

from stead.server.deps import StoreDep
from stead.server.errors import ERROR_RESPONSES, ApiError
from stead.server.schemas import (
    ErrorBody,
    Health,
    Limit,
    LimitList,
    Queue,
    QueueList,
    Ready,
    Worker,
    WorkerList,
)
from stead.settings import get_settings
from stead.store.base import Store

READY_TIMEOUT_S = 5.0  # a database slower than this to answer is reported as not ready

health_router = APIRouter(tags=["health"])
ready_router = APIRouter(tags=["health"])
router = APIRouter(tags=["system"])


@health_router.get("/health", summary="Is the server up", response_model=Health,
                   responses={421: ERROR_RESPONSES[421]},
                   description="Always answers 200 while the server runs; needs no API key.")
def health() -> Health:
    return Health()


@ready_router.get("/ready", summary="Can the server answer requests", response_model=Ready,
                  responses={503: {"model": ErrorBody,
                                   "description": "The database does not answer"},
                             421: ERROR_RESPONSES[421]},
                  description=(
                      "200 when the database answers a query within "
                      f"{READY_TIMEOUT_S:g} s, else 503 with the reason."))
async def ready(request: Request) -> Ready:
    store: Store = request.app.state.store
    try:
        with anyio.fail_after(READY_TIMEOUT_S):
            await anyio.to_thread.run_sync(store.list_limits, abandon_on_cancel=True)
    except TimeoutError:
        raise ApiError(503, f"the database did not answer within {READY_TIMEOUT_S:g} s",
                       type="Unavailable") from None
    except Exception as exc:
        raise ApiError(503, f"the database cannot be used: {type(exc).__name__}: {exc}",
                       type="Unavailable") from None
    return Ready()


@router.get("/queues", summary="List queues", response_model=QueueList,
            description="Every queue with its concurrency limit, runs waiting and running, "
                        "and when its oldest waiting run was created.")
def list_queues(store: StoreDep) -> QueueList:
    return QueueList(items=[Queue(name=q.name, concurrency_limit=q.concurrency_limit,
                                  pending=q.pending, running=q.running,
                                  oldest_pending_at=q.oldest_pending_at)
                            for q in store.list_queues()])


@router.get("/workers", summary="List workers", response_model=WorkerList,
            description="Every worker that registered, most recent heartbeat first.")
def list_workers(store: StoreDep) -> WorkerList:
    now, lease = time.time(), get_settings().lease_seconds
    return WorkerList(items=[Worker.of(w, now, lease) for w in store.list_workers()])


@router.get("/limits", summary="List tag limits", response_model=LimitList,
            description="Global limits on tasks by tag: concurrency, and rate per period.")
def list_limits(store: StoreDep) -> LimitList:
    return LimitList(items=[Limit(name=lim.name, concurrency=lim.concurrency, rate=lim.rate,
                                  period=lim.period) for lim in store.list_limits()])

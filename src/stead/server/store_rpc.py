"""POST /api/v1/store/{verb}: the store verbs, for remote workers and flows (`store/http.py`).

The body is {"args": [...], "kwargs": {...}} in the wire form of store/wire.py; the answer is
the verb's result in the same form, or the consistent error body with the Stead error's class
name (the client raises the same error again). It is part of the API, behind the same API
keys, but left out of the OpenAPI document: it is Stead's own protocol, not one to build on.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from stead.errors import (
    AccessDenied,
    DeploymentNotFound,
    LeaseLost,
    RunConflict,
    RunNotFound,
    SteadError,
    StoreError,
)
from stead.server.access import guard
from stead.store import wire

router = APIRouter(include_in_schema=False)
STATUS: dict[type, int] = {RunNotFound: 404, DeploymentNotFound: 404, RunConflict: 409,
                           StoreError: 503, AccessDenied: 403}


@router.post("/store/{verb}")
async def call_verb(verb: str, request: Request) -> Response:
    body = await request.body()
    app = request.app.state
    store = guard(app.store, request.state.principal, app.access)
    # Store verbs block (database I/O): run them in the thread pool, as plain routes are.
    return await run_in_threadpool(run_verb, store, verb, body)


def _answer(status: int, payload: Any) -> Response:
    return Response(wire.dumps(payload), status_code=status, media_type="application/json")


def _error(status: int, kind: str, message: str) -> Response:
    return _answer(status, {"error": {"type": kind, "message": message}})


def run_verb(store: Any, verb: str, body: bytes) -> Response:
    """Run one verb on `store`; its HTTP answer."""
    if verb not in wire.VERBS:
        return _error(404, "NotFound", f"no store verb {verb!r}")
    try:
        call = wire.loads(body) if body else {}
        args, kwargs = list(call.get("args", [])), dict(call.get("kwargs", {}))
    except Exception as exc:  # not JSON, or records this version does not know
        return _error(400, "BadRequest", f"the body is not a store call: {exc}")
    try:
        result = getattr(store, verb)(*args, **kwargs)
    except LeaseLost as exc:  # a BaseException: the executor's fence no longer holds
        return _answer(409, wire.error_to_wire(exc))
    except SteadError as exc:
        return _answer(STATUS.get(type(exc), 400), wire.error_to_wire(exc))
    except TypeError as exc:  # arguments that do not fit the verb
        return _error(400, "BadRequest", f"{verb}: {exc}")
    return _answer(200, result)

"""POST /api/v1/store/{verb}: the store verbs, for remote workers and flows (`store/http.py`).

The body is {"args": [...], "kwargs": {...}} in the wire form of store/wire.py; the answer is
the verb's result in the same form, or the consistent error body with the Stead error's class
name (the client raises the same error again). It is part of the API, behind the same API
keys, but left out of the OpenAPI document: it is Stead's own protocol, not one to build on.
"""

from __future__ import annotations

import logging
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
    WireFormatError,
)
from stead.server.access import Guarded, guard
from stead.server.errors import clean_message, database_locations
from stead.store import validate, wire

router = APIRouter(include_in_schema=False)
log = logging.getLogger("stead.server")
STATUS: dict[type, int] = {RunNotFound: 404, DeploymentNotFound: 404, RunConflict: 409,
                           StoreError: 503, AccessDenied: 403}
UNEXPECTED = "an unexpected error occurred; the server's log has the details"


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
    """Run one verb on `store`; its HTTP answer.

    Malformed input never reaches the store: a body that is not a call (store/wire.py) or
    arguments that do not fit the verb's signature (store/validate.py) are a 400 naming the
    problem. What the verb then raises is either Stead's error, answered with its class and
    its message (with no word of where the database is), or a bug of the server: a 500 that
    says only that, with the traceback in the server's log.

    Example: `run_verb(store, "get_run", b'{"args": ["run-1"]}')` answers the run, or 404.
    """
    if verb not in wire.VERBS:
        return _error(404, "NotFound", f"no store verb {verb[:100]!r}")
    if isinstance(store, Guarded):  # the role first: a refused caller learns nothing more
        try:
            store.permit(verb)
        except AccessDenied as exc:
            return _answer(403, wire.error_to_wire(exc))
    try:
        args, kwargs = wire.loads_call(body)
    except WireFormatError as exc:
        return _error(400, "BadRequest", f"the body is not a store call: {exc}")
    problem = validate.check_call(verb, args, kwargs)
    if problem is not None:
        return _error(400, "BadRequest", problem)
    try:
        result = getattr(store, verb)(*args, **kwargs)
    except LeaseLost as exc:  # a BaseException: the executor's fence no longer holds
        return _answer(409, wire.error_to_wire(exc))
    except SteadError as exc:
        status = next((code for cls, code in STATUS.items() if isinstance(exc, cls)), 400)
        if status >= 500:
            log.error("store verb %s: %s: %s", verb, type(exc).__name__, exc)
        answer = wire.error_to_wire(exc)
        answer["error"]["message"] = clean_message(answer["error"]["message"],
                                                   database_locations(str(store.url)))
        return _answer(status, answer)
    except Exception:
        log.exception("store verb %s failed", verb)
        return _error(500, "InternalError", UNEXPECTED)
    return _answer(200, result)

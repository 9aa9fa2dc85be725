"""POST /api/v1/store/{verb}: the store verbs, for remote workers and flows (`store/http.py`).

A remote flow sends one of these per checkpoint, so they skip FastAPI's per-request machinery
(route matching, dependency solving, exception middleware): `StoreRoute` answers them as a
plain ASGI layer inside the same middlewares as every route (audit, browser guard, body
limits), with the same API key check (`auth.authenticate`) and access checks (`access.guard`),
in one hop to the thread pool. Anything else, and a verb that does not exist, goes on to the
FastAPI route below (which answers it as before).

The body is {"args": [...], "kwargs": {...}} in the wire form of store/wire.py; the answer is
the verb's result in the same form, or the consistent error body with the Stead error's class
name (the client raises the same error again). It is part of the API, behind the same API
keys, but left out of the OpenAPI document: it is Stead's own protocol, not one to build on.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.security import HTTPAuthorizationCredentials
from fastapi.security.utils import get_authorization_scheme_param
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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
from stead.server.access import Access, Guarded, guard
from stead.server.auth import authenticate
from stead.server.errors import (
    HTTP_TYPES,
    STEAD_STATUS,
    ApiError,
    clean_message,
    database_locations,
    error_response,
    store_locations,
)
from stead.store import validate, wire

router = APIRouter(include_in_schema=False)
log = logging.getLogger("stead.server")
STATUS: dict[type, int] = {RunNotFound: 404, DeploymentNotFound: 404, RunConflict: 409,
                           StoreError: 503, AccessDenied: 403}
UNEXPECTED = "an unexpected error occurred; the server's log has the details"
PREFIX = "/api/v1/store/"


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


class StoreRoute:
    """ASGI middleware answering POST /api/v1/store/{verb} for the verbs of store/wire.py
    itself (see the module's docstring); every other request goes on to `app`. Install it
    innermost, so the audit, browser and body-size middlewares see its requests as any other.

    Example: `app.add_middleware(StoreRoute)` (server/app.py, before the other middlewares).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if (not path.startswith(PREFIX) or scope["method"] != "POST"
                or path[len(PREFIX):] not in wire.VERBS):
            await self.app(scope, receive, send)
            return
        try:
            body = await _read_body(receive)
        except HTTPException as exc:  # RequestGuard counted a streamed body over its limit
            await error_response(exc.status_code, HTTP_TYPES.get(exc.status_code, "Error"),
                                 str(exc.detail))(scope, receive, send)
            return
        if body is None:  # the client went away before its call was whole: nothing to run
            return
        request = Request(scope)  # what auth.authenticate reads: the app, request.state
        response = await run_in_threadpool(_authenticated_call, request,
                                           _bearer(scope["headers"]), path[len(PREFIX):], body)
        await response(scope, receive, send)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body; None if the client disconnected before sending all of it."""
    chunks: list[bytes] = []
    while True:
        message: Message = await receive()
        if message["type"] != "http.request":  # http.disconnect
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _bearer(headers: list[tuple[bytes, bytes]]) -> HTTPAuthorizationCredentials | None:
    """The key of an `Authorization: Bearer ...` header, read as fastapi's HTTPBearer
    (auto_error=False) of auth.py reads it: anything else is no key at all."""
    value = next((v for k, v in headers if k == b"authorization"), None)
    if value is None:
        return None
    scheme, credentials = get_authorization_scheme_param(value.decode("latin-1"))
    if not (scheme and credentials) or scheme.lower() != "bearer":
        return None
    return HTTPAuthorizationCredentials(scheme=scheme, credentials=credentials)


def _authenticated_call(request: Request, credentials: HTTPAuthorizationCredentials | None,
                        verb: str, body: bytes) -> Response:
    """The API key check of every route, then the verb: the answers the FastAPI route and
    the app's error handlers (server/errors.py) give."""
    try:
        authenticate(request, credentials)
    except ApiError as exc:
        return error_response(exc.status, exc.type,
                              clean_message(exc.message, store_locations(request.app)),
                              exc.headers)
    except SteadError as exc:  # the keys' database cannot be read
        status = next((code for cls, code in STEAD_STATUS if isinstance(exc, cls)), 500)
        if status >= 500:
            log.error("POST %s: %s: %s", request.url.path, type(exc).__name__, exc)
        return error_response(status, type(exc).__name__,
                              clean_message(str(exc), store_locations(request.app)))
    except Exception:
        log.exception("POST %s failed", request.url.path)
        return error_response(500, "InternalError", UNEXPECTED)
    state = request.app.state
    access = getattr(state, "access", None)
    if access is None:  # an app put together without create_app
        access = state.access = Access(state.store)
    return run_verb(guard(state.store, request.state.principal, access), verb, body)

"""The HTTP API: `create_app(store, require_auth=...)` builds the FastAPI application.

Routes live by concept in runs.py, waits.py, deployments.py, variables.py and system.py; API
keys in auth.py; the one error body in errors.py. Everything under /api/v1 and /ready (and
the OpenAPI document) needs an API key when `require_auth` is set; /health never does.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stead import __version__
from stead.server import audit, deployments, runs, store_rpc, system, variables, waits
from stead.server.access import Access
from stead.server.auth import Authenticated
from stead.server.errors import ERROR_RESPONSES, error_response, install_error_handlers
from stead.server.guard import LOOPBACK_HOSTS, BrowserGuard
from stead.store.base import Store

DESCRIPTION = """\
Runs, deployments, queues, workers and tag limits of one Stead database.

**API keys.** A server listening beyond the loopback address (or started with
`--require-auth`) needs a key on every request except `GET /health`:
`Authorization: Bearer stead_...`. Make one with `stead keys create NAME`.

**Errors.** Every error answers `{"error": {"type": "...", "message": "..."}}`.

**Pages.** `GET /api/v1/runs` answers one page, newest first, and a `next_cursor` to pass as
`cursor` for the next one.

Times are Unix seconds.
"""
DRAIN_MAX_BYTES = 16 * 1024 * 1024  # an oversized body is read (and dropped) up to this much
# The store verbs of remote workers carry batches of step records (up to 64 inline results of
# up to 64 KiB each, and their log lines): they get a limit of their own.
STORE_RPC_PREFIX = "/api/v1/store/"
STORE_RPC_MAX_BYTES = 64 * 1024 * 1024


def create_app(store: Store, *, require_auth: bool, max_body_bytes: int = 1_000_000,
               allowed_hosts: Iterable[str] = LOOPBACK_HOSTS) -> FastAPI:
    """The API over `store`. With `require_auth`, requests need a valid, unrevoked API key
    (except /health); request bodies larger than `max_body_bytes` are refused (413); requests
    naming another host than `allowed_hosts`, and requests a web page of another origin could
    send, are refused (server/guard.py)."""
    app = FastAPI(title="Stead", version=__version__, description=DESCRIPTION,
                  openapi_url=None, docs_url=None, redoc_url=None,
                  generate_unique_id_function=lambda route: route.name)
    app.state.store = store
    app.state.access = Access(store)  # role and namespace checks (server/access.py)
    app.state.require_auth = require_auth
    install_error_handlers(app)

    app.include_router(system.health_router)
    app.include_router(system.ready_router, dependencies=[Authenticated],
                       responses={401: ERROR_RESPONSES[401], 500: ERROR_RESPONSES[500]})
    api = APIRouter(prefix="/api/v1", dependencies=[Authenticated], responses=ERROR_RESPONSES)
    api.include_router(runs.router)
    api.include_router(deployments.router)
    api.include_router(system.router)
    api.include_router(store_rpc.router)  # remote workers and flows (store/http.py)
    api.include_router(audit.router)
    api.include_router(variables.router)
    api.include_router(waits.router)
    app.include_router(api)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Authenticated])
    def openapi_document() -> dict[str, Any]:
        return app.openapi()

    if not require_auth:  # a browser cannot send the key, so no docs page behind one
        @app.get("/docs", include_in_schema=False)
        def docs() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title="Stead API")

    app.add_middleware(store_rpc.StoreRoute)  # innermost: store verbs skip FastAPI's routing
    app.add_middleware(RequestGuard, max_body_bytes=max_body_bytes,
                       larger={STORE_RPC_PREFIX: max(max_body_bytes, STORE_RPC_MAX_BYTES)})
    app.add_middleware(BrowserGuard, allowed_hosts=allowed_hosts)  # before any route runs
    app.add_middleware(audit.AuditRecorder, store=store)  # outermost: sees every answer
    return app


class RequestGuard:
    """Refuses, with the error body, what no route can use: a body over `max_body_bytes` (or
    over the limit of its path prefix in `larger`), by its Content-Length and by counting the
    bytes of a streamed body; and a NUL character in the path or query (no id or name
    contains one; PostgreSQL refuses them)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int,
                 larger: dict[str, int] | None = None) -> None:
        self.app = app
        self.max = max_body_bytes
        self.larger = larger or {}  # path prefix -> its own limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope["path"] or b"%00" in scope.get("query_string", b""):
            await error_response(422, "ValidationError", "the path or query contains a NUL "
                                 "character, which no id or name can contain"
                                 )(scope, receive, send)
            return
        limit = next((n for prefix, n in self.larger.items()
                      if scope["path"].startswith(prefix)), self.max)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                length = -1
            if length < 0:
                await error_response(400, "BadRequest", "Content-Length is not a number"
                                     )(scope, receive, send)
                return
            if length > limit:
                await _drain(receive, DRAIN_MAX_BYTES)
                await error_response(413, "BodyTooLarge", _too_large(limit, length)
                                     )(scope, receive, send)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if message.get("more_body", False):
                        await _drain(receive, DRAIN_MAX_BYTES)
                    raise HTTPException(413, _too_large(limit))
            return message

        await self.app(scope, counting_receive, send)


def _too_large(limit: int, size: int | None = None) -> str:
    if size is None:  # a streamed body, counted as it came
        return f"the request body is larger than the {limit} bytes this server accepts"
    return f"the request body is {size} bytes; this server accepts at most {limit}"


async def _drain(receive: Receive, limit: int) -> None:
    """Read and drop the rest of a request body (up to `limit` bytes), so the client, still
    sending, reads our answer instead of a reset connection."""
    seen = 0
    while seen <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return

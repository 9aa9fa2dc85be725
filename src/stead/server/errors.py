"""One error body for every error: {"error": {"type": "...", "message": "..."}}.

Stead's own errors keep their class name and message (written for people); HTTP and
validation errors get a type from their status; anything unexpected is a 500 whose body says
only that (the traceback goes to the server's log, never to the client).
"""

from __future__ import annotations

import logging
from pathlib import PurePath
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from stead import errors
from stead.server.schemas import ErrorBody

log = logging.getLogger("stead.server")

HTTP_TYPES = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
              405: "MethodNotAllowed", 406: "NotAcceptable", 409: "Conflict",
              413: "BodyTooLarge", 415: "UnsupportedMediaType", 421: "MisdirectedRequest",
              422: "ValidationError", 500: "InternalError", 503: "Unavailable"}
# Stead's errors by the status they answer with; the first matching class wins.
STEAD_STATUS: list[tuple[type[errors.SteadError], int]] = [
    (errors.RunNotFound, 404),
    (errors.DeploymentNotFound, 404),
    (errors.ParameterError, 422),
    (errors.SerializationError, 422),
    (errors.RunConflict, 409),
    (errors.WaitError, 422),  # InvalidInput too; routes answer 409 for a finished run
    (errors.AccessDenied, 403),
    (errors.ConfigError, 400),
    (errors.StoreError, 503),
]


class ApiError(Exception):
    """An error a route answers with: its status, type and message."""

    def __init__(self, status: int, message: str, type: str | None = None,
                 headers: dict[str, str] | None = None,
                 extra: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type or HTTP_TYPES.get(status, "Error")
        self.message = message
        self.headers = headers
        self.extra = extra  # more fields of the error body (InvalidInput: field, reason)


def error_response(status: int, type: str, message: str,
                   headers: dict[str, str] | None = None,
                   extra: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"type": type, "message": message, **(extra or {})}},
                        status_code=status, headers=headers)


# What every route may answer besides its own success: documented in the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "The request cannot be read (e.g. a body that "
                                             "is not UTF-8 JSON)"},
    401: {"model": ErrorBody, "description": "No valid API key (when the server needs one)"},
    403: {"model": ErrorBody, "description": "The API key's role or namespaces do not allow "
                                             "this request; or a change sent by a web page of "
                                             "another origin, or a CORS preflight"},
    413: {"model": ErrorBody, "description": "The request body is larger than allowed"},
    415: {"model": ErrorBody, "description": "A POST, PUT, PATCH or DELETE without "
                                             "'Content-Type: application/json'"},
    421: {"model": ErrorBody, "description": "The Host is not a name of this server (see "
                                             "`stead server start --allowed-host`)"},
    422: {"model": ErrorBody, "description": "A parameter or the body is not valid"},
    500: {"model": ErrorBody, "description": "An unexpected error (see the server's log)"},
    503: {"model": ErrorBody, "description": "The database cannot be reached"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorBody, "description": "No such run or deployment"}}


def database_locations(url: str) -> list[str]:
    """The strings that would tell a client where the database `url` is: the URL, an SQLite
    file's path and its folder, a PostgreSQL URL without its password, and the password;
    longest first (the order to replace them in).

    >>> database_locations("postgresql://app:s3cret@db:5432/stead")
    ['postgresql://app:s3cret@db:5432/stead', 'postgresql://app@db:5432/stead', 's3cret']
    """
    found = {url}
    if url.startswith("sqlite:///") or "://" not in url:
        path = PurePath(url.removeprefix("sqlite:///"))
        found |= {str(path), str(path.parent)} if str(path.parent) not in ("/", ".") else {
            str(path)}
    else:
        scheme, _, rest = url.partition("://")
        credentials, at, host = rest.rpartition("@")
        if at:
            user, _, password = credentials.partition(":")
            found.add(f"{scheme}://{user}@{host}")
            if password:
                found.add(password)
    return sorted((s for s in found if s), key=len, reverse=True)


def clean_message(message: str, locations: list[str]) -> str:
    """A message fit for a client: each of `locations` (see `database_locations`) replaced by
    "the database" (a folder by "the database's folder"), and no traceback.

    >>> clean_message("the Stead database /srv/x/stead.db failed: disk I/O error",
    ...               database_locations("sqlite:////srv/x/stead.db"))
    'the Stead database failed: disk I/O error'
    """
    message = message.split("Traceback (most recent call last)", 1)[0].rstrip()
    for i, location in enumerate(locations):
        if location in message:
            folder = any(other.startswith(location + "/") for other in locations[:i])
            message = message.replace(f"database {location}", "database").replace(
                location, "the database's folder" if folder else "the database")
    return message


def store_locations(app: Any) -> list[str]:
    """`database_locations` of the store an app serves (none if it has no usable store)."""
    try:
        return database_locations(str(app.state.store.url))
    except Exception:  # the OpenAPI document's app has no database
        return []


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for e in exc.errors()[:3]:
        loc = [str(p) for p in e.get("loc", ())]
        where = {"query": "query parameter", "path": "path parameter", "body": "body",
                 "header": "header"}.get(loc[0], loc[0]) if loc else "request"
        name = ".".join(loc[1:])
        msg = e.get("msg", "is not valid")
        if e.get("type") == "extra_forbidden":
            msg = "is not a field of this body (misspelt?)"
        parts.append(f"{where} {name!r}: {msg}" if name else f"{where}: {msg}")
    more = len(exc.errors()) - 3
    return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")


def install_error_handlers(app: FastAPI) -> None:
    """Make every error answer with the error body; no message tells where the database is
    (`clean_message`)."""

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.type,
                              clean_message(exc.message, store_locations(request.app)),
                              exc.headers, exc.extra)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no such endpoint: {request.method} {request.url.path}; see /docs"
        return error_response(exc.status_code, HTTP_TYPES.get(exc.status_code, "Error"),
                              message, dict(exc.headers) if exc.headers else None)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "ValidationError", _describe_validation(exc))

    @app.exception_handler(errors.SteadError)
    async def stead_error(request: Request, exc: errors.SteadError) -> JSONResponse:
        status = next((code for cls, code in STEAD_STATUS if isinstance(exc, cls)), 500)
        if status >= 500:
            log.error("%s %s: %s: %s", request.method, request.url.path,
                      type(exc).__name__, exc)
        extra = ({"field": exc.field, "reason": exc.reason}
                 if isinstance(exc, errors.InvalidInput) else None)
        return error_response(status, type(exc).__name__,
                              clean_message(str(exc), store_locations(request.app)),
                              extra=extra)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("%s %s failed", request.method, request.url.path)
        return error_response(500, "InternalError",
                              "an unexpected error occurred; the server's log has the details")

"""The audit log of the HTTP API: `AuditRecorder` records who changed what, and
`GET /api/v1/audit` lists it (admins only).

Recorded: every request other than GET/HEAD/OPTIONS, except store verbs that change nothing
(policy.READ_VERBS), and every refused request (401, 403) whatever its method. The execution
verbs of workers (record_step, heartbeat, claim_runs, ...) are recorded only when they fail
or are refused, unless STEAD_AUDIT_EXECUTION=1: each of them is already in the run's own
history, and a row per checkpoint would make the log mostly noise and double the writes.

A request never waits for its audit row: rows are buffered and written in batches by a
thread (every FLUSH_EVERY_S, or at once when FLUSH_ROWS are waiting) and on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stead.server.errors import ApiError
from stead.server.policy import READ_VERBS, VERB_PERMISSION, Permission, Principal
from stead.server.schemas import ErrorBody
from stead.settings import get_settings
from stead.store.audit import AuditFilter, AuditRecord, audit_log

log = logging.getLogger("stead.server")

FLUSH_EVERY_S = 0.5  # buffered rows are written at least this often
FLUSH_ROWS = 500  # ... or as soon as this many wait
MAX_PENDING = 100_000  # while the database cannot be written, keep at most this many rows
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
STORE_PREFIX = "/api/v1/store/"
DENIED = frozenset({401, 403})
# What workers do while executing runs; each is already recorded in the run's history (or the
# worker's row), so by default only their failures and refusals are audited. create_run and
# send_message are not among them: making a run, or sending it a message (input, an approval),
# is an action someone answers for.
EXECUTION_VERBS = frozenset(v for v, p in VERB_PERMISSION.items()
                            if p is Permission.EXECUTE
                            and v not in ("create_run", "send_message")) - READ_VERBS
BODY_PEEK = 64 * 1024  # a store call's body is kept (to find its target) up to this size
ERROR_PEEK = 4096  # an error answer's body is kept (to find its type) up to this size
TARGET_MAX = 200
ACTION_MAX = 300


class AuditWriter:
    """Buffers audit rows and writes them to `store` in batches from a daemon thread.

    Example:
        >>> writer = AuditWriter(store)  # doctest: +SKIP
        >>> writer.add(record); writer.close()  # close() writes what is left
    """

    def __init__(self, store: Any, every_s: float = FLUSH_EVERY_S, rows: int = FLUSH_ROWS
                 ) -> None:
        self._store = store
        self._every_s = every_s
        self._rows = rows
        # (record, store call body or None, error answer body or None)
        self._pending: deque[tuple[AuditRecord, bytes | None, bytes | None]] = deque()
        self._wake = threading.Event()
        self._start_lock = threading.Lock()
        self._flush_lock = threading.Lock()  # one flush at a time: rows keep their order
        self._thread: threading.Thread | None = None
        self._closed = False
        self._failing = False
        self.dropped = 0  # rows given up because the database could not be written for long

    def add(self, record: AuditRecord, body: bytes | None = None,
            answer: bytes | None = None) -> None:
        """Queue one row (never blocks on the database)."""
        self._pending.append((record, body, answer))
        if self._closed:  # a request after shutdown began: write it now
            self.flush()
            return
        if self._thread is None:
            self._start()
        if len(self._pending) >= self._rows:
            self._wake.set()

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None and not self._closed:
                self._thread = threading.Thread(target=self._run, name="stead-audit",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._closed:
            self._wake.wait(self._every_s)
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Write every queued row now; how many were written."""
        written = 0
        with self._flush_lock:
            while self._pending:
                batch = []
                while self._pending and len(batch) < self._rows:
                    batch.append(_complete(*self._pending.popleft()))
                try:
                    self._store.record_audit(batch)
                except Exception:  # keep the rows, not the bodies they were completed from
                    self._pending.extendleft((r, None, None) for r in reversed(batch))
                    excess = len(self._pending) - MAX_PENDING
                    for _ in range(max(0, excess)):
                        self._pending.popleft()
                    self.dropped += max(0, excess)
                    if not self._failing:
                        log.exception("audit: cannot write %d rows; keeping them and trying "
                                      "again (at most %d are kept)", len(batch), MAX_PENDING)
                    self._failing = True
                    return written
                written += len(batch)
                if self._failing:
                    log.warning("audit: writing rows again")
                    self._failing = False
        return written

    def close(self, timeout: float = 5.0) -> None:
        """Stop the thread and write what is left."""
        self._closed = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.flush()


def _complete(record: AuditRecord, body: bytes | None, answer: bytes | None) -> AuditRecord:
    """Fill in the target from a store call's body and the error type from its answer (done
    in the writer's thread, not while the request is answered)."""
    if body is not None and record.target is None:
        record.target = _target_of_call(body)
    if answer is not None:
        kind = _error_type(answer)
        if kind:
            record.detail = f"{kind} ({record.detail})" if record.detail else kind
    return record


def _target_of_call(body: bytes) -> str | None:
    """The first argument of a store call when it names something: a run id, a queue or
    deployment name, or the id/name of the record it carries."""
    try:
        call = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(call, dict):
        return None
    args, kwargs = call.get("args") or [], call.get("kwargs") or {}
    candidates = ([args[0]] if isinstance(args, list) and args else []) + [
        kwargs.get(k) for k in ("run_id", "name", "deployment") if isinstance(kwargs, dict)]
    for value in candidates:
        if isinstance(value, dict):
            value = value.get("name") or value.get("id")
        if isinstance(value, str) and value:
            return value[:TARGET_MAX]
    return None


def _error_type(answer: bytes) -> str | None:
    try:
        error = orjson.loads(answer).get("error") or {}
        kind = error.get("type")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return kind[:80] if isinstance(kind, str) else None


class AuditRecorder:
    """ASGI middleware: one audit row per state-changing or refused request (see the module's
    docstring), written in batches by an `AuditWriter` that is flushed at shutdown.

    Example:
        >>> app.add_middleware(AuditRecorder, store=store)  # doctest: +SKIP
    """

    def __init__(self, app: ASGIApp, store: Any, *, execution: bool | None = None,
                 every_s: float = FLUSH_EVERY_S) -> None:
        self.app = app
        self.writer = AuditWriter(store, every_s)
        self.execution = get_settings().audit_execution if execution is None else execution

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._on_shutdown(send))
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        at = time.time()
        method, path = scope["method"], scope["path"]
        verb = path[len(STORE_PREFIX):] if path.startswith(STORE_PREFIX) else None
        # always: every outcome is recorded; else only refusals (and failures, if `failures`)
        always = method not in SAFE_METHODS and verb not in READ_VERBS
        failures = always
        if verb in EXECUTION_VERBS and not self.execution:
            always = False
        state = scope.setdefault("state", {})  # where the principal will be (auth.py)
        status = 500
        answer: list[bytes] = []
        body: list[bytes] = []
        seen = 0

        async def watch_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif (message["type"] == "http.response.body" and status >= 400
                  and sum(map(len, answer)) < ERROR_PEEK):
                answer.append(message.get("body", b""))
            await send(message)

        async def peek_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request" and seen <= BODY_PEEK:
                chunk = message.get("body", b"")
                seen += len(chunk)
                body.append(chunk)
            return message

        keep_body = verb is not None and always
        detail: str | None = None
        try:
            await self.app(scope, peek_receive if keep_body else receive, watch_send)
        except BaseException as exc:  # answered 500 by the server's outermost layer
            detail = type(exc).__name__
            raise
        finally:
            if always or status in DENIED or (failures and status >= 400):
                principal = state.get("principal")
                if status == 401:
                    sent = any(k == b"authorization" for k, _ in scope["headers"])
                    detail = "key refused" if sent else "no key sent"
                self.writer.add(
                    self._record(at, scope, method, path, verb, status, principal, detail),
                    b"".join(body) if keep_body and seen <= BODY_PEEK else None,
                    b"".join(answer) if answer else None)

    @staticmethod
    def _record(at: float, scope: Scope, method: str, path: str, verb: str | None,
                status: int, principal: Principal | None, detail: str | None) -> AuditRecord:
        client = scope.get("client")
        params = scope.get("path_params") or {}
        target = params.get("run_id") or params.get("name")
        return AuditRecord(
            at=at, key_id=principal.key_id if principal else None,
            key_name=principal.name if principal else None,
            role=principal.role if principal else None,
            address=client[0] if client else None, method=method,
            action=(f"store.{verb}" if verb is not None else f"{method} {path}")[:ACTION_MAX],
            target=str(target)[:TARGET_MAX] if target and verb is None else None,
            outcome=status, detail=detail)

    def _on_shutdown(self, send: Send) -> Send:
        async def forward(message: Message) -> None:
            if message["type"] in ("lifespan.shutdown.complete", "lifespan.shutdown.failed"):
                await asyncio.to_thread(self.writer.close)
            await send(message)

        return forward


# -- GET /api/v1/audit -----------------------------------------------------------------------
router = APIRouter(prefix="/audit", tags=["audit"])
MAX_ID = 2**63 - 1


class AuditEntry(BaseModel):
    id: int
    at: float = Field(description="When the request arrived (Unix seconds)")
    key_id: str | None = Field(description="The API key's id; null for the local user or "
                                           "when no valid key was sent")
    key_name: str | None = Field(description="The key's name; `local` on a keyless loopback "
                                             "server, `local:USER` for a command on the host")
    role: str | None = Field(description="The key's role; null when no key was accepted")
    address: str | None = Field(description="The client's IP address, or `local`")
    method: str = Field(description="The HTTP method, or `CLI`")
    action: str = Field(description="`METHOD /path`, `store.VERB` or a command")
    target: str | None = Field(description="The run, deployment, queue or key acted on, "
                                           "when known")
    outcome: int = Field(description="The HTTP status of the answer")
    detail: str | None = Field(description="A short note, e.g. the error's type")

    @classmethod
    def of(cls, r: AuditRecord) -> AuditEntry:
        return cls(id=r.id or 0, at=r.at, key_id=r.key_id, key_name=r.key_name, role=r.role,
                   address=r.address, method=r.method, action=r.action, target=r.target,
                   outcome=r.outcome, detail=r.detail)


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same filters) for the next page; null on the "
                    "last page")


def _before_id(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if cursor.isdigit() and 0 < int(cursor) <= MAX_ID:
        return int(cursor)
    raise ApiError(422, f"cursor {cursor[:40]!r} is not one this server handed out; leave it "
                        "out to start from the newest row", type="InvalidCursor")


@router.get("", summary="List the audit log", response_model=AuditPage, responses={
    403: {"model": ErrorBody, "description": "The key's role is not admin"}}, description=(
    "Who changed what, when, from which address, and how it ended: one row per "
    "state-changing request and per refused request, newest first, one page at a time "
    "(pass `next_cursor` as `cursor`). Needs an admin key. Execution traffic of workers "
    "(steps, heartbeats, claims) appears only when it failed or was refused, unless the "
    "server runs with STEAD_AUDIT_EXECUTION=1."))
def list_audit(
    request: Request,
    since: Annotated[float | None, Query(
        allow_inf_nan=False, description="Only rows at or after (Unix seconds)")] = None,
    until: Annotated[float | None, Query(
        allow_inf_nan=False, description="Only rows before (Unix seconds)")] = None,
    key: Annotated[str | None, Query(description="Only this key (its id or name)")] = None,
    action: Annotated[str | None, Query(
        description="Only actions containing this text (case-insensitive)")] = None,
    outcome: Annotated[Literal["ok", "failed", "denied"] | None, Query(
        description="`ok` (< 400), `failed` (>= 400) or `denied` (401, 403)")] = None,
    target: Annotated[str | None, Query(description="Only this target")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Rows per page")] = 50,
    cursor: Annotated[str | None, Query(
        description="`next_cursor` of the previous page")] = None,
) -> AuditPage:
    principal = getattr(request.state, "principal", None)
    if not isinstance(principal, Principal) or not principal.may(Permission.ADMIN):
        raise ApiError(403, "reading the audit log needs an admin key")
    store = request.app.state.store  # the whole log: it belongs to no namespace
    rows = audit_log(store).list_audit(AuditFilter(
        since=since, until=until, key=key, action=action, outcome=outcome, target=target,
        limit=limit + 1, before_id=_before_id(cursor)))
    page = rows[:limit]
    return AuditPage(items=[AuditEntry.of(r) for r in page],
                     next_cursor=str(page[-1].id) if len(rows) > limit else None)

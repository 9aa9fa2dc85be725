"""/api/v1/runs: listing runs (cursor pages), one run, its steps, history, logs and result;
cancelling a run.

Runs are listed newest first. A page's `next_cursor` encodes the (created_at, id) of its last
run; the next page holds the runs after it in that order, so pages neither repeat nor skip a
run while new runs are created (they are newer than any cursor handed out).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import math
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from stead.core.states import FINAL_STATES
from stead.errors import AccessDenied
from stead.server.deps import StoreDep
from stead.server.errors import NOT_FOUND, ApiError, clean_message, store_locations
from stead.server.schemas import (
    ErrorBody,
    History,
    LogLine,
    LogPage,
    ResultInfo,
    Run,
    RunPage,
    StateChange,
    Step,
    StepList,
)
from stead.store.base import RunFilter, RunRecord, Store
from stead.store.waits import WaitRecord

router = APIRouter(prefix="/runs", tags=["runs"])
FOLLOW_POLL_S = 0.5  # how often a followed run's new log lines are looked for
KEEPALIVE_S = 15.0  # a comment line this often keeps idle proxies from closing the stream
FINAL_STATE_NAMES = frozenset(str(s.value) for s in FINAL_STATES)
ENDED_STATES = FINAL_STATE_NAMES | {"Crashed"}
MAX_LOG_ID = 2**63 - 1


def encode_cursor(run: RunRecord) -> str:
    raw = json.dumps([run.created_at, run.id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[float, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, run_id = json.loads(raw)
        if (isinstance(created_at, int | float) and not isinstance(created_at, bool)
                and math.isfinite(created_at) and isinstance(run_id, str)):
            return float(created_at), run_id
    except (ValueError, TypeError, binascii.Error):
        pass
    raise ApiError(422, f"cursor {cursor[:40]!r} is not one this server handed out; leave it "
                        "out to start from the newest run", type="InvalidCursor")


def _run(store: Store, run_id: str) -> RunRecord:
    return store.get_run(run_id)  # RunNotFound: 404


def _waits(store: Store, runs: list[RunRecord]) -> dict[str, WaitRecord]:
    """The waits of the runs that wait (one store call for a page). A worker key lists the
    runs of its queues but may not read waits: its runs come without them."""
    live = [r.id for r in runs if r.state not in FINAL_STATE_NAMES]
    if not live:
        return {}
    try:
        return store.list_waits(live)  # type: ignore[attr-defined,no-any-return]
    except AccessDenied:
        return {}


@router.get("", summary="List runs", response_model=RunPage, description=(
    "Runs, newest first, one page at a time. Filters combine (AND); `state` may be repeated "
    "(any of them). For the next page pass the previous page's `next_cursor` as `cursor`, "
    "with the same filters; it is null on the last page. Pages neither repeat nor skip a run "
    "while new runs are created."))
def list_runs(
    store: StoreDep,
    state: Annotated[list[str] | None, Query(
        description="Only runs in this state; repeat for any of several")] = None,
    flow: Annotated[str | None, Query(description="Only runs of this flow (its name)")] = None,
    deployment: Annotated[str | None, Query(
        description="Only runs of this deployment")] = None,
    queue: Annotated[str | None, Query(description="Only runs enqueued on this queue")] = None,
    tag: Annotated[str | None, Query(description="Only runs carrying this tag")] = None,
    created_after: Annotated[float | None, Query(
        allow_inf_nan=False, description="Only runs created at or after (Unix seconds)")] = None,
    created_before: Annotated[float | None, Query(
        allow_inf_nan=False, description="Only runs created before (Unix seconds)")] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Runs per page")] = 50,
    cursor: Annotated[str | None, Query(
        description="`next_cursor` of the previous page")] = None,
) -> RunPage:
    flt = RunFilter(state=tuple(state) if state else None, flow_name=flow,
                    deployment=deployment, queue=queue, tag=tag, created_after=created_after,
                    created_before=created_before, limit=limit + 1,
                    after=decode_cursor(cursor) if cursor is not None else None)
    runs = store.list_runs(flt)
    page = runs[:limit]
    more = len(runs) > limit
    waits = _waits(store, page)
    return RunPage(items=[Run.of(r, waits.get(r.id)) for r in page],
                   next_cursor=encode_cursor(page[-1]) if more else None)


@router.get("/{run_id}", summary="Get a run", response_model=Run, responses=NOT_FOUND,
            description="One run by its full id (a child run's id is `ROOT_ID:STEP_KEY`), "
                        "with what it waits for (`wait`), if anything.")
def get_run(run_id: str, store: StoreDep) -> Run:
    run = _run(store, run_id)
    return Run.of(run, _waits(store, [run]).get(run.id))


@router.get("/{run_id}/steps", summary="List a run's steps", response_model=StepList,
            responses=NOT_FOUND, description=(
                "The recorded steps (task calls, child flows, recorded `now()`/`uuid()`) of "
                "the run, in call order. Results are described (size or file), not sent."))
def list_steps(run_id: str, store: StoreDep) -> StepList:
    _run(store, run_id)
    steps = store.load_steps(run_id)
    ordered = sorted(steps.values(),
                     key=lambda s: [int(p) if p.isdigit() else p for p in s.key.split(".")])
    return StepList(items=[Step.of(s) for s in ordered])


@router.get("/{run_id}/history", summary="A run's state changes", response_model=History,
            responses=NOT_FOUND,
            description="Every state the run went through, with when and why, oldest first.")
def run_history(run_id: str, store: StoreDep) -> History:
    _run(store, run_id)
    return History(items=[StateChange(state=c.state, at=c.at, message=c.message)
                          for c in store.run_history(run_id)])


LOGS_DESCRIPTION = (
    "The run's log lines with an id greater than `after_id`, oldest first, at most `limit` "
    "of them; `next_after_id` continues from there.\n\n"
    "With `follow=true` the answer is a stream of server-sent events (`text/event-stream`) "
    "instead: each stored line, then each new one as it is stored, is an event `log` whose "
    "`id:` is the line's id and whose `data:` is the line as JSON (as in the JSON answer). "
    "When the run has ended (Completed, Cached, Failed, Cancelled or Crashed) and every line "
    "was sent, a last event `end` carries `{\"state\": ...}` and the stream closes. A "
    "reconnecting client may send `Last-Event-ID` instead of `after_id`. Comment lines "
    f"(`: keep-alive`) are sent every {KEEPALIVE_S:g} s while nothing happens.")


SSE_EVENT = {  # one event of the stream, as an OpenAPI-aware client parses it
    "type": "object", "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "enum": ["log", "end", "error"]},
        "id": {"type": "string", "description": "The log line's id (`log` events)"},
        "data": {"type": "string", "description": "JSON: the log line (`log`), "
                                                  "{\"state\": ...} (`end`), or "
                                                  "{\"type\", \"message\"} (`error`)"}}}


@router.get("/{run_id}/logs", summary="Read or follow a run's log lines", responses={
    **NOT_FOUND, 200: {"description": "The lines (JSON), or with follow=true an event stream",
                       "content": {"text/event-stream": {"schema": SSE_EVENT}}}},
    response_model=LogPage, description=LOGS_DESCRIPTION)
async def read_logs(
    run_id: str,
    request: Request,
    store: StoreDep,
    after_id: Annotated[int, Query(ge=0, le=MAX_LOG_ID,
                                   description="Only lines with a greater id")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many lines")] = 1000,
    follow: Annotated[bool, Query(description="Stream new lines until the run ends (SSE)")
                      ] = False,
    last_event_id: Annotated[int | None, Header(ge=0, le=MAX_LOG_ID, include_in_schema=False)
                             ] = None,
) -> Any:
    await run_in_threadpool(_run, store, run_id)
    if follow:
        start = max(after_id, last_event_id or 0)
        return StreamingResponse(_follow(store, run_id, start, limit, request),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache",
                                          "X-Accel-Buffering": "no"})
    lines = await run_in_threadpool(store.read_logs, run_id, after_id, limit)
    return LogPage(items=[LogLine.of(g) for g in lines],
                   next_after_id=lines[-1].id if lines and lines[-1].id else after_id)


def _event(name: str, data: str, event_id: int | None = None) -> str:
    head = f"event: {name}\n" + (f"id: {event_id}\n" if event_id is not None else "")
    return f"{head}data: {data}\n\n"


async def _follow(store: Store, run_id: str, after_id: int, batch: int,
                  request: Request) -> AsyncIterator[str]:
    last, quiet = after_id, 0.0
    while True:
        try:
            # The state before the lines: a run stores its last lines before its final
            # state, so once an ended state is seen, one more read has every line.
            run = await run_in_threadpool(store.get_run, run_id)
            lines = await run_in_threadpool(store.read_logs, run_id, last, batch)
        except Exception as exc:  # the run was deleted, the database went away, ...
            yield _event("error", json.dumps({  # never where the database is
                "type": type(exc).__name__,
                "message": clean_message(str(exc), store_locations(request.app))}))
            return
        for line in lines:
            last = line.id or last
            yield _event("log", LogLine.of(line).model_dump_json(), line.id)
        if len(lines) == batch:
            continue
        if run.state in ENDED_STATES:
            yield _event("end", json.dumps({"state": run.state}))
            return
        if lines:
            quiet = 0.0
        elif quiet >= KEEPALIVE_S:
            quiet = 0.0
            yield ": keep-alive\n\n"
        if await request.is_disconnected():
            return
        await asyncio.sleep(FOLLOW_POLL_S)
        quiet += FOLLOW_POLL_S


@router.get("/{run_id}/result", summary="Where a run's result is", response_model=ResultInfo,
            responses=NOT_FOUND, description=(
                "Whether the run has a result and where it is stored: inline in its row "
                "(with its size) or in a result file (its reference). Not the value itself."))
def result_info(run_id: str, store: StoreDep) -> ResultInfo:
    run = _run(store, run_id)
    if run.result_ref is not None:
        return ResultInfo(run_id=run.id, state=run.state, storage="file", size=None,
                          ref=run.result_ref)
    if run.result is not None:
        return ResultInfo(run_id=run.id, state=run.state, storage="inline",
                          size=len(run.result), ref=None)
    return ResultInfo(run_id=run.id, state=run.state, storage="none", size=None, ref=None)


@router.post("/{run_id}/cancel", summary="Cancel a run", response_model=Run, responses={
    **NOT_FOUND, 409: {"model": ErrorBody, "description": "The run already ended."}},
    description=(
        "Cancel a run and its child runs. A run waiting in a queue (Scheduled, Pending, Late) "
        "is Cancelled at once. A run a worker executes becomes Cancelling: its worker stops "
        "the run's process (within about a second, then SIGKILL after its grace period), "
        "records Cancelled and frees the run's tag slots. Cancelling a run that is already "
        "Cancelling or Cancelled changes nothing. Answers the run as it is now."))
def cancel_run(run_id: str, store: StoreDep) -> Run:
    _run(store, run_id)
    store.cancel_run(run_id, time.time(), "cancelled through the API")  # RunConflict: 409
    return Run.of(_run(store, run_id))

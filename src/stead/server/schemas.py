"""What the API sends and receives (pydantic models), made from the store's records.

Columns the store keeps as JSON text (parameters, errors, tags, histories, schemas) are sent
as JSON values, not as strings. Parameters and results keep Stead's tagged encoding
(`{"$t": "date", "v": "2026-11-21"}` for a date), which is what the database holds.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from stead.core.console import level_name
from stead.store import base
from stead.store.waits import WaitRecord

RUN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,199}$"
# A run in these states waits for nothing (a wait row it left behind is not shown). A
# Crashed run is resumable: its wait still says what it waits for.
_ENDED = frozenset({"Completed", "Cached", "Failed", "Cancelled"})


def _json(text: str | None, default: Any = None) -> Any:
    """A JSON column as a value; text that is not JSON is passed on as a string."""
    if text is None:
        return default
    try:
        return json.loads(text)
    except ValueError:
        return text


class ErrorDetail(BaseModel):
    type: str = Field(description="What kind of error: RunNotFound, ValidationError, "
                                  "Unauthorized, BodyTooLarge, InternalError, ...")
    message: str = Field(description="What was wrong, and what to do about it.")
    field: str | None = Field(None, description="InvalidInput only: the JSON path of the "
                                                "first value of the input that does not fit "
                                                "the schema (\"\" for the whole input)")
    reason: str | None = Field(None, description="InvalidInput only: why it does not fit")


class ErrorBody(BaseModel):
    """Every error the API returns has this body."""

    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Ready(BaseModel):
    status: Literal["ready"] = "ready"


class Wait(BaseModel):
    """What a run waits for now (a durable sleep, a message, input, a child run, a retry)."""

    model_config = ConfigDict(populate_by_name=True)

    kind: str = Field(
        description="timer (a durable sleep), message (on `topic`), input (a person's answer "
                    "to `description`, checked against `schema`), child (the run `topic`), "
                    "retry (a retry delay)")
    topic: str | None = Field(description="The message topic, or the child run's id")
    wake_at: float | None = Field(description="When the wait ends (the timer, or the "
                                              "timeout of a message or input wait); null: "
                                              "none")
    description: str | None = Field(description="The question of an input wait")
    input_schema: Any = Field(alias="schema", description="The JSON Schema input must fit "
                                                          "(input waits; else null)")
    parked: bool = Field(description="True: no process holds the run (Paused, no lease); "
                                     "the store wakes it when the wait is satisfied")
    since: float = Field(description="When the run began to wait")
    step_key: str = Field(description="The step of the wait (sleep, receive, ...)")

    @classmethod
    def of(cls, w: WaitRecord) -> Wait:
        detail = _json(w.detail, {})
        detail = detail if isinstance(detail, dict) else {}
        description = detail.get("description")
        return cls(kind=w.kind, topic=w.topic, wake_at=w.wake_at,
                   description=None if description is None else str(description),
                   input_schema=detail.get("schema"), parked=w.parked, since=w.since,
                   step_key=w.step_key)


class Run(BaseModel):
    id: str
    flow_name: str
    name: str | None = Field(description="The run's name (the flow's "
                             "flow_run_name, e.g. \"etl-2026-11-22\"); null: none given")
    version: str | None = Field(description="The flow's version when the run "
                                "started (its `version=` option); null: none given")
    state: str = Field(description="Scheduled, Late, Pending, Running, Retrying, Paused, "
                                   "Completed, Cached, Failed, Crashed, Cancelling or Cancelled")
    entrypoint: str = Field(description='"module:qualname" of the flow function')
    script_path: str | None
    params: Any = Field(description="The run's parameters (Stead's tagged JSON encoding)")
    parent_id: str | None = Field(description="The parent run, for a child flow run")
    parent_step: str | None
    created_at: float = Field(description="Unix seconds, like every time in this API")
    started_at: float | None
    ended_at: float | None
    error: Any = Field(description="The recorded error (type, message, traceback, step), if any")
    attempts: int
    resumes: int
    owner: str | None = Field(description='"host|pid|start-ticks" of the executing process')
    tags: Any
    queue: str | None
    priority: int
    lease_epoch: int
    lease_expires_at: float | None
    worker_id: str | None
    recoveries: int
    max_recoveries: int
    deployment: str | None
    deployment_version: int | None
    scheduled_for: float | None
    durability: str = Field(description="What the run's checkpoints survive: fsync (power "
                                        "loss), process (a killed process) or batched (steps "
                                        "committed in groups; a crash re-runs at most the "
                                        "last group)")
    wait: Wait | None = Field(None, description="What the run waits for now; null: nothing")

    @classmethod
    def of(cls, r: base.RunRecord, wait: WaitRecord | None = None) -> Run:
        return cls(wait=None if wait is None or r.state in _ENDED else Wait.of(wait),
            id=r.id, flow_name=r.flow_name, name=r.name, version=r.version, state=r.state,
            entrypoint=r.entrypoint,
            script_path=r.script_path, params=_json(r.params, {}), parent_id=r.parent_id,
            parent_step=r.parent_step, created_at=r.created_at, started_at=r.started_at,
            ended_at=r.ended_at, error=_json(r.error), attempts=r.attempts, resumes=r.resumes,
            owner=r.owner, tags=_json(r.tags, []), queue=r.queue, priority=r.priority,
            lease_epoch=r.lease_epoch, lease_expires_at=r.lease_expires_at,
            worker_id=r.worker_id, recoveries=r.recoveries, max_recoveries=r.max_recoveries,
            deployment=r.deployment, deployment_version=r.deployment_version,
            scheduled_for=r.scheduled_for, durability=r.durability)


class RunPage(BaseModel):
    items: list[Run] = Field(description="Newest first")
    next_cursor: str | None = Field(
        description="Pass as `cursor` (with the same filters) for the next page; null on the "
                    "last page")


class Step(BaseModel):
    run_id: str
    key: str = Field(description='Position in call order, e.g. "7", or "7.2" inside step 7')
    name: str = Field(description="The task's (or child flow's) name")
    run_name: str | None = Field(description="The call's display name (the "
                                 "task's task_run_name, or the child run's name); null: none")
    kind: str = Field(description="task, flow, now or uuid")
    state: str
    attempts: int
    started_at: float | None
    ended_at: float | None
    params: Any
    result_size: int | None = Field(description="Characters of the result stored inline")
    result_ref: str | None = Field(description="The result file, for a large result")
    error: Any
    history: Any = Field(description="[state, at, message] entries, for steps that retried")
    child_run_id: str | None
    depends_on: Any
    cache_key: str | None
    cached_from: str | None

    @classmethod
    def of(cls, s: base.StepRecord) -> Step:
        return cls(
            run_id=s.run_id, key=s.key, name=s.name, run_name=s.run_name, kind=s.kind,
            state=s.state,
            attempts=s.attempts, started_at=s.started_at, ended_at=s.ended_at,
            params=_json(s.params), result_size=None if s.result is None else len(s.result),
            result_ref=s.result_ref, error=_json(s.error), history=_json(s.history, []),
            child_run_id=s.child_run_id, depends_on=_json(s.depends_on),
            cache_key=s.cache_key, cached_from=s.cached_from)


class StepList(BaseModel):
    items: list[Step] = Field(description="In call order")


class StateChange(BaseModel):
    state: str
    at: float
    message: str | None


class History(BaseModel):
    items: list[StateChange] = Field(description="Oldest first")


class LogLine(BaseModel):
    id: int
    step_key: str | None = Field(description="The step that logged it; null for the flow")
    at: float
    level: int
    level_name: str
    message: str

    @classmethod
    def of(cls, g: base.LogRecord) -> LogLine:
        return cls(id=g.id or 0, step_key=g.step_key, at=g.at, level=g.level,
                   level_name=level_name(g.level), message=g.message)


class LogPage(BaseModel):
    items: list[LogLine] = Field(description="Oldest first")
    next_after_id: int = Field(description="Pass as `after_id` to read the lines after these")


class ResultInfo(BaseModel):
    run_id: str
    state: str
    storage: Literal["inline", "file", "none"] = Field(
        description="inline: in the run's row; file: in the result file `ref`; none: no result")
    size: int | None = Field(description="Characters of an inline result")
    ref: str | None = Field(description="The result file, relative to the results folder")


class Deployment(BaseModel):
    name: str
    version: int
    flow_name: str
    entrypoint: str
    script_path: str | None
    params: Any = Field(description="Default parameters")
    param_schema: Any = Field(description="JSON Schema the parameters of each run must meet")
    queue: str
    tags: Any
    description: str | None
    created_at: float

    @classmethod
    def of(cls, d: base.DeploymentRecord) -> Deployment:
        return cls(name=d.name, version=d.version, flow_name=d.flow_name,
                   entrypoint=d.entrypoint, script_path=d.script_path,
                   params=_json(d.params, {}), param_schema=_json(d.param_schema, {}),
                   queue=d.queue, tags=_json(d.tags, []), description=d.description,
                   created_at=d.created_at)


class DeploymentList(BaseModel):
    items: list[Deployment] = Field(description="The latest version of each, by name")


class Schedule(BaseModel):
    id: int | None
    deployment: str
    schedule: Any = Field(description="The schedule: cron, interval or RRULE, and time zone")
    active: bool
    missed: str = Field(description="Runs missed during an outage: all, latest or skip")
    last_fire_at: float | None
    created_at: float

    @classmethod
    def of(cls, s: base.ScheduleRecord) -> Schedule:
        return cls(id=s.id, deployment=s.deployment, schedule=_json(s.schedule),
                   active=s.active, missed=s.missed, last_fire_at=s.last_fire_at,
                   created_at=s.created_at)


class ScheduleList(BaseModel):
    items: list[Schedule]


class RequestBody(BaseModel):
    """The base of every request body: a field it does not have (a misspelt one) is a 422
    naming it, not silently ignored. (tests/server/test_browser_surface.py checks every
    route's body model.)"""

    model_config = ConfigDict(extra="forbid")


class CreateRun(RequestBody):
    """A run of a deployment: parameters override the deployment's defaults."""

    parameters: dict[str, Any] = Field(default_factory=dict,
                                       description="Parameter values by name (JSON)")
    run_id: str | None = Field(
        default=None, pattern=RUN_ID_PATTERN,
        description="The run's id, to make the request idempotent: a second request with the "
                    "same id creates nothing and answers 200 with the existing run")

    @field_validator("parameters")
    @classmethod
    def _storable_text(cls, value: dict[str, Any]) -> dict[str, Any]:
        check_text(value, "parameters")
        return value


def check_text(value: Any, where: str, *, refuse_nul: bool = False) -> None:
    """Refuse text that cannot be stored: a lone surrogate (JSON allows "\\ud800"; UTF-8,
    and so the database, does not) and, with `refuse_nul`, a NUL character (PostgreSQL's
    text holds none), anywhere in a JSON value, keys too."""
    if isinstance(value, str):
        if refuse_nul and "\x00" in value:
            raise ValueError(f"{where} contains a NUL character (\\u0000), which cannot "
                             "be stored")
        try:
            value.encode()
        except UnicodeEncodeError:
            raise ValueError(f"{where} contains a lone surrogate (such as \\ud800), which "
                             "is not text that can be stored") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            check_text(key, where, refuse_nul=refuse_nul)
            check_text(item, f"{where}.{key}", refuse_nul=refuse_nul)
    elif isinstance(value, list):
        for item in value:
            check_text(item, where, refuse_nul=refuse_nul)


class Queue(BaseModel):
    name: str
    concurrency_limit: int | None
    pending: int
    running: int
    oldest_pending_at: float | None


class QueueList(BaseModel):
    items: list[Queue]


class Worker(BaseModel):
    id: str
    name: str
    host: str
    pid: int
    queues: Any
    concurrency: int
    state: str = Field(description="running, draining or stopped")
    started_at: float
    heartbeat_at: float
    running: int
    lease_s: float | None = Field(
        description="The worker's own lease in seconds (null: an older worker that did not "
                    "record it)")
    lost: bool = Field(description="Not stopped, and silent for longer than its lease")

    @classmethod
    def of(cls, w: base.WorkerRecord, now: float, default_lease_s: float) -> Worker:
        return cls(id=w.id, name=w.name, host=w.host, pid=w.pid, queues=_json(w.queues, []),
                   concurrency=w.concurrency, state=w.state, started_at=w.started_at,
                   heartbeat_at=w.heartbeat_at, running=w.running, lease_s=w.lease_s,
                   lost=w.is_lost(now, default_lease_s))


class WorkerList(BaseModel):
    items: list[Worker] = Field(description="Most recent heartbeat first")


class Limit(BaseModel):
    name: str = Field(description="The tag it limits")
    concurrency: int | None
    rate: int | None
    period: float | None


class LimitList(BaseModel):
    items: list[Limit]

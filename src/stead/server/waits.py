"""/api/v1/runs/{run_id}/messages, /input and /status: messages to runs, human input for runs
waiting in `stead.wait_for_input`, and the values runs publish (store/waits.py).

Operators and admins send messages and input; webhook keys may send messages (not input:
that is a person's decision); readers read. Who sent a message is recorded from the key
(server/access.py), never taken from the body. Sends are in the audit log as every change is.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, Field, JsonValue, field_validator

from stead.errors import InvalidInput, WaitError
from stead.server.deps import StoreDep
from stead.server.errors import NOT_FOUND, ApiError
from stead.server.schemas import ErrorBody, RequestBody, check_text
from stead.store.base import Store
from stead.store.waits import (
    INPUT_TOPIC,
    KEY_MAX,
    TOPIC_MAX,
    MessageRecord,
    StatusRecord,
    json_value,
)

router = APIRouter(prefix="/runs", tags=["messages and status"])
ENDED_STATES = frozenset({"Completed", "Cached", "Failed", "Cancelled"})  # (Crashed: resumable)
MAX_ID = 2**63 - 1
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "The run has ended (Completed, Failed, "
                                             "Cancelled): it takes no messages"}}


class Message(BaseModel):
    id: int = Field(description="Grows in send order, per database")
    run_id: str
    topic: str
    payload: JsonValue = Field(description="The message (any JSON value)")
    sent_at: float
    idempotency_key: str | None = Field(description="Stored once per run and key")
    sender: str | None = Field(description='Who sent it: "ROLE:KEY_ID" of an API key, "api" '
                                           'or "cli" where no key was used')
    expects_reply: bool = Field(description="Sent by stead.request: its sender waits for "
                                            "`reply`")
    state: str = Field(description="pending (not yet received), consumed (by the receive "
                                   "step `step_key`), rejected (by the flow's validator: "
                                   "`reply_error` says why)")
    step_key: str | None
    consumed_at: float | None
    reply: JsonValue = Field(description="The flow's reply to a request (JSON); null: none "
                                         "yet, or none")
    reply_error: str | None = Field(description="Why a request was rejected or failed")
    replied_at: float | None = Field(description="When the reply (or reply_error) was "
                                                 "recorded; null: not yet")

    @classmethod
    def of(cls, m: MessageRecord) -> Message:
        return cls(id=m.id, run_id=m.run_id, topic=m.topic, payload=json_value(m.payload),
                   sent_at=m.sent_at, idempotency_key=m.idempotency_key, sender=m.sender,
                   expects_reply=m.expects_reply, state=m.state, step_key=m.step_key,
                   consumed_at=m.consumed_at, reply=json_value(m.reply),
                   reply_error=m.reply_error, replied_at=m.replied_at)


class MessageList(BaseModel):
    items: list[Message] = Field(description="In send order")


class StatusValue(BaseModel):
    run_id: str
    key: str
    value: JsonValue = Field(description="What the run published (any JSON value)")
    updated_at: float
    step_key: str | None = Field(description="The step of the stead.set_status call")

    @classmethod
    def of(cls, s: StatusRecord) -> StatusValue:
        return cls(run_id=s.run_id, key=s.key, value=json_value(s.value), updated_at=s.updated_at,
                   step_key=s.step_key)


class StatusList(BaseModel):
    items: list[StatusValue] = Field(description="By key")


def _storable(value: Any, where: str) -> Any:
    """`value` if every string in it (keys too) can be stored (schemas.check_text)."""
    check_text(value, where, refuse_nul=True)
    return value


KeyField = Field(None, min_length=1, max_length=KEY_MAX, description=(
    "Store the message once: a second send with the same key to the same run stores "
    "nothing and answers 200 with the first message"))


class SendMessage(RequestBody):
    topic: str = Field(min_length=1, max_length=TOPIC_MAX, examples=["payment"],
                       description="The topic the flow receives on (stead.receive(topic))")
    payload: JsonValue = Field(description="The message: any JSON value, up to 1 MiB as "
                                           "JSON text", examples=[{"ref": "tx-81"}])
    idempotency_key: str | None = KeyField
    expects_reply: bool = Field(False, description=(
        "A request: the flow answers it with `msg.reply(value)`; poll "
        "GET /api/v1/runs/{run_id}/messages/{id} until `replied_at` is set"))

    @field_validator("topic", "idempotency_key", "payload")
    @classmethod
    def _text(cls, value: Any, info: Any) -> Any:
        return _storable(value, info.field_name)


class SendInput(RequestBody):
    value: JsonValue = Field(description="The answer: JSON that fits the schema of the run's "
                                         "input wait (its `wait.schema`), usually an object "
                                         "of the form's fields",
                             examples=[{"approved": True, "approver": "ana"}])
    idempotency_key: str | None = KeyField

    @field_validator("value", "idempotency_key")
    @classmethod
    def _text(cls, value: Any, info: Any) -> Any:
        return _storable(value, info.field_name)


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _refused(request: Request, run_id: str, exc: WaitError) -> ApiError:
    """A WaitError of a send as its answer: 409 when the run has ended, else 422. The run's
    state is read from the server's own store: the key already passed the send's checks."""
    store: Store = request.app.state.store
    try:
        ended = store.get_run(run_id).state in ENDED_STATES
    except Exception:
        ended = False
    return ApiError(409 if ended else 422, str(exc), type=type(exc).__name__)


@router.post("/{run_id}/messages", summary="Send a message to a run", status_code=201,
             response_model=Message, responses={
                 **NOT_FOUND, **CONFLICT,
                 200: {"model": Message, "description": "A duplicate: a message with this "
                                                        "idempotency key was sent before"}},
             description=(
                 "Store a message for the run; the flow takes it with "
                 "`stead.receive(topic)`, in send order (one sent before the flow gets "
                 "there waits for it). A run parked waiting for this topic is woken (Paused "
                 "-> Pending) in the same transaction. 201 with the new message; 200 with "
                 "the first one when `idempotency_key` was sent before. Needs an operator, "
                 "admin or webhook key."))
def send_message(run_id: str, body: SendMessage, request: Request, response: Response,
                 store: StoreDep) -> Message:
    try:
        message, created = store.send_message(  # type: ignore[attr-defined]
            run_id, body.topic, _json_text(body.payload), body.idempotency_key, time.time(),
            sender="api", expects_reply=body.expects_reply)
    except InvalidInput:
        raise
    except WaitError as exc:
        raise _refused(request, run_id, exc) from None
    response.status_code = 201 if created else 200
    return Message.of(message)


@router.post("/{run_id}/input", summary="Answer a run waiting for input", status_code=201,
             response_model=Message, responses={
                 **NOT_FOUND,
                 200: {"model": Message, "description": "A duplicate: input with this "
                                                        "idempotency key was sent before"},
                 409: {"model": ErrorBody, "description": "The run does not wait for input "
                                                          "(or has ended)"},
                 422: {"model": ErrorBody, "description": "The input does not fit the "
                                                          "schema: `field` and `reason` say "
                                                          "where and why (type "
                                                          "InvalidInput); the run keeps "
                                                          "waiting"}},
             description=(
                 "Send `value` to a run waiting in `stead.wait_for_input(Model, ...)`. It is "
                 "checked against the model's JSON Schema (the run's `wait.schema`) before "
                 "anything is stored: input that does not fit is a 422 naming the field and "
                 "the reason, and the run keeps waiting. Valid input is stored (201) and "
                 "resumes the run. Needs an operator or admin key."))
def send_input(run_id: str, body: SendInput, response: Response, store: StoreDep) -> Message:
    wait = store.get_wait(store.get_run(run_id).id)  # type: ignore[attr-defined]
    if wait is None or wait.kind != "input":
        what = f"it waits for a {wait.kind}" if wait is not None else "it waits for nothing"
        raise ApiError(409, f"run {run_id!r} is not waiting for input ({what}); only a run "
                            "waiting in stead.wait_for_input takes input", type="WaitError")
    try:
        message, created = store.send_message(  # type: ignore[attr-defined]
            run_id, INPUT_TOPIC, _json_text(body.value), body.idempotency_key, time.time(),
            sender="api")
    except InvalidInput:
        raise  # 422 with field and reason (server/errors.py)
    except WaitError as exc:  # it stopped waiting meanwhile, or ended
        raise ApiError(409, str(exc), type=type(exc).__name__) from None
    response.status_code = 201 if created else 200
    return Message.of(message)


@router.get("/{run_id}/messages", summary="List a run's messages", response_model=MessageList,
            responses=NOT_FOUND, description=(
                "The messages sent to the run (of `topic`, or all), in send order, with their "
                "state, the step that consumed each, and replies to requests."))
def list_messages(
    run_id: str, store: StoreDep,
    topic: Annotated[str | None, Query(min_length=1, max_length=TOPIC_MAX,
                                       description="Only messages on this topic")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="At most this many")] = 100,
) -> MessageList:
    store.get_run(run_id)  # RunNotFound: 404
    found = store.list_messages(run_id, topic, limit)  # type: ignore[attr-defined]
    return MessageList(items=[Message.of(m) for m in found])


@router.get("/{run_id}/messages/{message_id}", summary="Get one message of a run",
            response_model=Message, responses={404: {"model": ErrorBody, "description": (
                "No such run, or no such message of it")}}, description=(
                "One message, as it is now: a sender of a request polls it for its `reply` "
                "(set when `replied_at` is)."))
def get_message(run_id: str, store: StoreDep,
                message_id: Annotated[int, Path(ge=1, le=MAX_ID)]) -> Message:
    store.get_run(run_id)  # RunNotFound: 404
    try:
        message = store.get_message(message_id)  # type: ignore[attr-defined]
    except WaitError:
        message = None
    if message is None or message.run_id != run_id:
        raise ApiError(404, f"run {run_id!r} has no message {message_id}",
                       type="MessageNotFound")
    return Message.of(message)


@router.get("/{run_id}/status", summary="A run's published status", response_model=StatusList,
            responses=NOT_FOUND, description=(
                "The values the run published with `stead.set_status(key, value)`, by key. "
                "Readable while it executes, while it is parked and after it ended."))
def list_status(run_id: str, store: StoreDep) -> StatusList:
    found = store.get_status(run_id)  # type: ignore[attr-defined]
    return StatusList(items=[StatusValue.of(s) for s in found])


@router.get("/{run_id}/status/{key:path}", summary="One published status value",
            response_model=StatusValue, responses={404: {"model": ErrorBody, "description": (
                "No such run, or it has not set `key`")}}, description=(
                "The value the run published under `key` with `stead.set_status` (a key may "
                "contain `/`)."))
def get_status(run_id: str, store: StoreDep,
               key: Annotated[str, Path(min_length=1, max_length=KEY_MAX)]) -> StatusValue:
    found = store.get_status(run_id, key)  # type: ignore[attr-defined]
    if not found:
        raise ApiError(404, f"run {run_id!r} has not set status {key!r}", type="StatusNotSet")
    return StatusValue.of(found[0])

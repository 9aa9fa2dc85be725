"""Durable waits inside a flow: `sleep`, `receive`, `wait_for_input`, `set_status`.

Each is a step of the run. A wait records its due time (or deadline) as a Running step
before it waits, so a resumed run waits only what remains; receiving a message records the
step and marks the message consumed in one transaction (`WaitStore.consume_message`), so a
resumed run gets the same message from its record and never a second one. On a worker a
wait longer than STEAD_PARK_AFTER_SECONDS parks the run (core/parking.py); a run called
from a script waits in its process.

Example:
    >>> @stead.flow
    ... def renew(customer: str) -> None:
    ...     stead.sleep(timedelta(days=30))             # no process is held on a worker
    ...     paid = stead.receive("payment", timeout=timedelta(hours=1))
    ...     stead.set_status("stage", "paid" if paid else "unpaid")
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from stead.core.context import RunContext, current_run
from stead.core.parking import Park, can_park, park_after
from stead.core.serialization import encode
from stead.core.states import State
from stead.core.steps import Step
from stead.errors import WaitError, WaitTimeout
from stead.store.base import StepRecord
from stead.store.waits import (
    INPUT_TOPIC,
    MessageRecord,
    StatusRecord,
    WaitRecord,
    check_topic,
)

T = TypeVar("T")
RUNNING, COMPLETED = State.RUNNING.value, State.COMPLETED.value
SHOW_AFTER_S = 1.0  # a wait in place longer than this is recorded, for `runs ls`/`runs show`


@dataclass(slots=True)
class Message(Generic[T]):
    """A message a flow received with `stead.receive`: `payload` is decoded into the `type`
    asked for (else the JSON value as sent).

    Example:
        >>> msg = stead.receive("price-check")
        >>> msg.reply({"price": quote(msg.payload["sku"])})   # the sender's request() returns it
    """

    id: int
    run_id: str
    topic: str
    payload: T
    sent_at: float
    expects_reply: bool = False
    idempotency_key: str | None = None
    _fence: Any = field(default=None, repr=False, compare=False)
    _replayed: bool = field(default=False, repr=False, compare=False)

    def reply(self, value: Any) -> None:
        """Answer the request this message carries (`stead.request` returns `value` to its
        sender). A second reply to the same message changes nothing."""
        from stead.core.runtime import store_for

        ctx = current_run.get()
        store = ctx.store if ctx is not None else store_for()
        if self._replayed and store.get_message(self.id).replied_at is not None:
            return  # a resumed run replying again: the first reply stands (a read, no write)
        store.reply_message(self.id, to_json(value, "the reply"), None, time.time(),
                            ctx.fence if ctx is not None else None)


# -- values ----------------------------------------------------------------------------------
def seconds_of(duration: Any, what: str) -> float:
    """A duration (seconds as int/float, or a timedelta) in seconds; WaitError if it is not
    one or is negative.

    >>> seconds_of(dt.timedelta(minutes=2), "sleep")
    120.0
    """
    if isinstance(duration, dt.timedelta):
        seconds = duration.total_seconds()
    elif isinstance(duration, int | float) and not isinstance(duration, bool):
        seconds = float(duration)
    else:
        raise WaitError(f"{what}: a duration is seconds (int or float) or a timedelta, not "
                        f"{type(duration).__name__}")
    if not seconds >= 0:  # negative or NaN
        raise WaitError(f"{what}: the duration is {duration!r}; a wait cannot be negative")
    return seconds


def to_json(value: Any, what: str) -> str:
    """The JSON text of a payload, a reply or a status value (pydantic models, dataclasses,
    datetimes and the like become their JSON form); WaitError if it has none."""
    from pydantic_core import PydanticSerializationError, to_jsonable_python

    try:
        return json.dumps(to_jsonable_python(value), ensure_ascii=False, allow_nan=False)
    except (PydanticSerializationError, TypeError, ValueError) as exc:
        raise WaitError(f"{what} is a {type(value).__name__}, which has no JSON form: send "
                        f"JSON values, dataclasses or pydantic models ({exc})") from None


def typed(value: Any, kind: Any, where: str) -> Any:
    """`value` (decoded JSON) as `kind` (a pydantic model, a dataclass, a JSON type), or as
    it is when `kind` is None; WaitError naming `where` and the field if it does not fit."""
    if kind is None:
        return value
    from pydantic import TypeAdapter, ValidationError

    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first.get("loc", ())) or "(the whole payload)"
        raise WaitError(f"{where} does not decode as {getattr(kind, '__name__', kind)}: field "
                        f"{path}: {first.get('msg')}; the message stays stored") from None


def _ctx(what: str) -> RunContext:
    ctx = current_run.get()
    if ctx is None:
        raise WaitError(f"stead.{what}() is called inside a flow run (it waits as a step of "
                        "the run); outside flows use stead.send/stead.get_status")
    return ctx


def begin_wait(ctx: RunContext, step: Step) -> None:
    """Record the wait's step as Running with its due time in its params, before waiting."""
    ctx.store.record_step(
        StepRecord(ctx.run.id, step.key, step.name, step.kind, RUNNING, step.attempts,
                   step.started, None, step.params), ctx.take_logs(), ctx.fence)


def _finish(ctx: RunContext, step: Step, shown: bool, value: Any) -> Any:
    if shown or step.begun is not None:  # a row someone may have been shown (or parked)
        ctx.store.clear_wait(ctx.run.id, ctx.fence)
    return step.succeeded(value)


# -- timers ----------------------------------------------------------------------------------
def sleep(duration: float | dt.timedelta | None = None, *,
          until: dt.datetime | None = None) -> None:
    """Wait `duration` (seconds or a timedelta), or until the time `until`, durably.

    The wake-up time is recorded as a step: a run resumed after a crash waits only what
    remains, and on a worker a long sleep parks the run (no process is held). Outside a flow
    it is `time.sleep`.

    Example:
        >>> stead.sleep(timedelta(days=3))
        >>> stead.sleep(until=datetime(2027, 1, 1, tzinfo=UTC))
    """
    if (duration is None) == (until is None):
        raise WaitError("stead.sleep() takes a duration or until=, not both and not neither")
    ctx = current_run.get()
    if ctx is None:
        now = time.time()
        time.sleep(seconds_of(duration, "stead.sleep") if duration is not None
                   else max(0.0, _timestamp(until) - now))
        return
    step = Step(ctx, "stead.sleep", "sleep", None)
    if step.replayed:
        step.replay()
        return
    step.start_attempt()
    if step.begun is not None:
        step.params = step.begun
        due = float(json.loads(step.begun)["until"])
    else:
        now = ctx.clock.now()
        due = (now + seconds_of(duration, "stead.sleep") if duration is not None
               else _timestamp(until))
        step.params = json.dumps({"until": due})
        begin_wait(ctx, step)
    try:
        shown = wait_until(ctx, WaitRecord(ctx.run.id, "timer", step.key, wake_at=due,
                                           since=ctx.clock.now()))
    except Park:
        step.abandoned()
        raise
    _finish(ctx, step, shown, None)


def _timestamp(until: Any) -> float:
    if not isinstance(until, dt.datetime):
        raise WaitError(f"stead.sleep(until=...) takes a datetime, not {type(until).__name__}")
    if until.tzinfo is None:
        raise WaitError(f"stead.sleep(until={until!r}): give a timezone-aware datetime "
                        "(e.g. datetime(..., tzinfo=UTC)); a naive one is ambiguous")
    return until.timestamp()


def wait_until(ctx: RunContext, wait: WaitRecord) -> bool:
    """Wait in place until `wait.wake_at`, or park the run when it may be parked and the wait
    is longer than the setting. Whether the wait was recorded (shown)."""
    assert wait.wake_at is not None
    remaining = wait.wake_at - ctx.clock.now()
    if remaining <= 0:
        return False
    if remaining > park_after() and can_park(ctx):
        raise Park(wait)
    shown = remaining >= SHOW_AFTER_S
    if shown:
        ctx.store.record_wait(wait, ctx.fence)
    ctx.clock.sleep(remaining)
    return shown


# -- messages --------------------------------------------------------------------------------
def receive(topic: str, timeout: float | dt.timedelta | None = None, *, type: Any = None,
            validate: Any = None, raise_on_timeout: bool = False) -> Message[Any] | None:
    """The next message sent to this run on `topic`, in send order, waiting for it.

    Exactly once: taking the message is recorded with this step in one transaction, so a
    resumed run receives the same message again from its record and never another one. With
    `timeout` (seconds or a timedelta), None when no message came in time (or WaitTimeout
    with `raise_on_timeout`). `type` (a pydantic model, a dataclass, a JSON type) decodes
    the payload; a message that does not decode raises WaitError and stays stored.
    `validate(payload)` may refuse a message (raise, or return False): it is marked rejected,
    its sender's `stead.request` raises RequestRejected, and the wait goes on.

    Example:
        >>> msg = stead.receive("payment", timeout=timedelta(hours=1), type=Payment)
        >>> if msg is not None:
        ...     settle(msg.payload.ref)
    """
    ctx = _ctx("receive")
    check_topic(ctx.run.id, topic)
    deadline = _deadline(ctx, timeout, "stead.receive")
    return _receive(ctx, "stead.receive", "receive", topic, deadline, type, validate,
                    raise_on_timeout, None)


def wait_for_input(model: Any, timeout: float | dt.timedelta | None = None, *,
                   description: str = "", raise_on_timeout: bool = False) -> Any:
    """Wait for a person's input, shaped as `model` (a pydantic model, a dataclass, a JSON
    type), and return it as an instance of `model`.

    The model's JSON Schema and `description` are recorded with the wait, so `stead runs
    show`, the API and the UI show the question and the form; input that does not fit is
    refused when it is sent (`stead runs input`, `POST /api/v1/runs/{id}/input`) and the run
    keeps waiting. With `timeout`, None when no input came in time (or WaitTimeout with
    `raise_on_timeout`). On a worker a long wait parks the run.

    Example:
        >>> answer = stead.wait_for_input(Approval, timeout=timedelta(days=2),
        ...                               description="refund 20 EUR for order A-1?")
        >>> answer.approved
        True
    """
    from pydantic import TypeAdapter

    ctx = _ctx("wait_for_input")
    deadline = _deadline(ctx, timeout, "stead.wait_for_input")
    detail = json.dumps({"schema": TypeAdapter(model).json_schema(),
                         "description": str(description)})
    msg = _receive(ctx, "stead.wait_for_input", "input", INPUT_TOPIC, deadline, model, None,
                   raise_on_timeout, detail)
    return None if msg is None else msg.payload


def _deadline(ctx: RunContext, timeout: Any, what: str) -> float | None:
    if timeout is None:
        return None
    return ctx.clock.now() + seconds_of(timeout, what)


def _receive(ctx: RunContext, name: str, kind: str, topic: str, deadline: float | None,
             decode_as: Any, validate: Any, raise_on_timeout: bool,
             detail: str | None) -> Message[Any] | None:
    step = Step(ctx, name, kind, None)
    if step.replayed:
        return _replayed(ctx, step.replay(), topic, decode_as, raise_on_timeout)
    step.start_attempt()
    try:
        return _await_message(ctx, step, topic, deadline, decode_as, validate,
                              raise_on_timeout, detail)
    except BaseException:
        step.abandoned()  # (a no-op once recorded) not in flight any more
        raise


def _await_message(ctx: RunContext, step: Step, topic: str, deadline: float | None,
                   decode_as: Any, validate: Any, raise_on_timeout: bool,
                   detail: str | None) -> Message[Any] | None:
    wait_kind = "input" if detail is not None else "message"
    begun = step.begun is not None
    if begun:
        step.params = step.begun
        deadline = json.loads(step.begun).get("deadline")
    else:
        step.params = json.dumps({"topic": topic, "deadline": deadline})
    wait = WaitRecord(ctx.run.id, wait_kind, step.key, topic=topic, wake_at=deadline,
                      detail=detail or "{}", since=ctx.clock.now())
    shown = False
    if detail is not None:  # input is checked against the recorded form when it is sent
        if not begun:
            begin_wait(ctx, step)
            begun = True
        ctx.store.record_wait(wait, ctx.fence)
        shown = True
    store, clock = ctx.store, ctx.clock
    interval = 0.0004
    while True:
        rec = store.next_message(ctx.run.id, topic)
        while rec is not None:
            msg = _take(ctx, step, rec, decode_as, validate, shown or step.begun is not None)
            if msg is not None:
                return msg
            rec = store.next_message(ctx.run.id, topic)
        now = clock.now()
        if deadline is not None and now >= deadline:
            _finish(ctx, step, shown, None)
            if raise_on_timeout:
                raise WaitTimeout(f"run {ctx.run.id}: no message on {topic!r} came in time")
            return None
        if not begun:  # the deadline is durable before the run waits
            begin_wait(ctx, step)
            begun = True
        waited = now - wait.since
        if waited >= park_after() and can_park(ctx):
            raise Park(wait)
        if not shown and waited >= SHOW_AFTER_S:
            ctx.store.record_wait(wait, ctx.fence)
            shown = True
        # Poll quickly at first (a live conversation), then less often.
        interval = min(interval * 1.25, 0.05 if waited < 10 else 0.5)
        clock.sleep(interval if deadline is None else max(0.0, min(interval, deadline - now)))


def _take(ctx: RunContext, step: Step, rec: MessageRecord, decode_as: Any, validate: Any,
          clear: bool) -> Message[Any] | None:
    """Receive `rec`: decode it, let `validate` refuse it (None), or record the step with the
    message and mark it consumed in one transaction."""
    payload = json.loads(rec.payload)
    where = f"run {ctx.run.id}: message {rec.id} on {rec.topic!r}"
    value = typed(payload, decode_as, where)
    now = ctx.clock.now()
    if validate is not None:
        try:
            accepted = validate(value)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        else:
            reason = "" if accepted is not False else "refused by the flow's validator"
        if reason:
            ctx.store.reject_message(rec.id, reason, now, ctx.fence)
            return None
    if clear:
        ctx.store.clear_wait(ctx.run.id, ctx.fence)
    recorded = {"id": rec.id, "topic": rec.topic, "payload": payload, "sent_at": rec.sent_at,
                "expects_reply": rec.expects_reply, "idempotency_key": rec.idempotency_key}
    text = encode(recorded)
    results = ctx.results
    inline, ref = ((text, None) if len(text) <= results.inline_max
                   else results.place(ctx.run.id, step.key, text))
    done = StepRecord(ctx.run.id, step.key, step.name, step.kind, COMPLETED, step.attempts,
                      step.started, now, step.params, inline, ref)
    ctx.flush_logs()
    ctx.store.consume_message(rec.id, done, ctx.fence)
    step.abandoned()  # (recorded above: it is no longer in flight)
    return Message(rec.id, ctx.run.id, rec.topic, value, rec.sent_at, rec.expects_reply,
                   rec.idempotency_key, ctx.fence)


def _replayed(ctx: RunContext, recorded: Any, topic: str, decode_as: Any,
              raise_on_timeout: bool) -> Message[Any] | None:
    if recorded is None:
        if raise_on_timeout:
            raise WaitTimeout(f"run {ctx.run.id}: no message on {topic!r} came in time")
        return None
    where = f"run {ctx.run.id}: message {recorded['id']} on {topic!r}"
    return Message(recorded["id"], ctx.run.id, recorded["topic"],
                   typed(recorded["payload"], decode_as, where), recorded["sent_at"],
                   recorded.get("expects_reply", False), recorded.get("idempotency_key"),
                   ctx.fence, _replayed=True)


# -- status ----------------------------------------------------------------------------------
def set_status(key: str, value: Any) -> None:
    """Publish `value` (JSON, a dataclass, a pydantic model) under `key` for anyone to read
    with `stead.get_status(run_id, key)` or `stead runs status`, even while no process
    executes the run. Recorded as a step: a resumed run does not publish it again.

    Example:
        >>> stead.set_status("stage", "approved")
    """
    ctx = _ctx("set_status")
    if not isinstance(key, str) or not key or len(key) > 255:
        raise WaitError(f"a status key is a non-empty string of at most 255 characters, not "
                        f"{key!r:.80}")
    value_json = to_json(value, f"status {key!r}")
    step = Step(ctx, "stead.set_status", "status", json.dumps({"key": key}))
    if step.replayed:
        step.replay()
        return
    step.start_attempt()
    now = ctx.clock.now()
    done = StepRecord(ctx.run.id, step.key, step.name, step.kind, COMPLETED, step.attempts,
                      step.started, now, step.params, "null")
    ctx.flush_logs()
    ctx.store.set_status(StatusRecord(ctx.run.id, key, value_json, now, step.key), done,
                         ctx.fence)
    step.abandoned()

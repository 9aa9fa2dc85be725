"""Waits and messages: the part of the store interface behind durable sleeps, messages to
runs, human input, published status and parked runs. Its records, the verbs' protocol, the
rules of what a verb stores (topics, keys, payloads) and the check of input against a
recorded JSON Schema; the SQL both backends share is in store/waits_sql.py.

A run waits for one thing at a time (a timer, a message on a topic, input, a child run, a
retry delay): its `WaitRecord`. While its process waits in place the record only shows the
wait (`runs ls`, `runs show`); a run *parked* by `park_run` has no process at all: it is
Paused with no lease, and it becomes Pending again (any worker claims it) when its wait is
satisfied — `wake_due_runs` for timers, `send_message` for a message on its topic or input,
`notify_finished` for the child it waits for.

Messages are kept in send order per run (`MessageRecord.id` grows); one with an idempotency
key already stored for the run is stored once. Consuming a message and recording the
receive step happen in one transaction (`consume_message`), so a resumed run replays the
message from its step and never takes a second one.

    >>> WaitRecord("r1", "timer", "3", wake_at=1_700_000_000.0).kind
    'timer'
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from stead.errors import InvalidInput, WaitError
from stead.store.parts.runs import Fence, RunRecord, StepRecord

INPUT_TOPIC = "stead.input"  # the topic human input travels on (`stead runs input`)
WAIT_KINDS = ("timer", "message", "input", "child", "retry")
TOPIC_MAX = 255  # characters of a topic
PAYLOAD_MAX_BYTES = 1024 * 1024  # of a message payload's JSON text
KEY_MAX = 255  # characters of an idempotency key or a status key


@dataclass(slots=True)
class MessageRecord:
    """A message sent to a run. `payload` and `reply` are JSON text.

    `state`: "pending" (not yet received), "consumed" (a receive step took it: `step_key`),
    "rejected" (the flow's validator refused it: `reply_error` says why). A request's sender
    waits for `replied_at` (`reply`, or `reply_error` for a rejection or a failed handler).
    """

    id: int
    run_id: str
    topic: str
    payload: str
    sent_at: float
    idempotency_key: str | None = None
    sender: str | None = None  # who sent it (an API key "ROLE:KEY_ID", "cli", ...)
    expects_reply: bool = False  # sent by `stead.request`
    state: str = "pending"
    step_key: str | None = None  # the receive step that consumed it
    consumed_at: float | None = None
    reply: str | None = None
    reply_error: str | None = None
    replied_at: float | None = None


@dataclass(slots=True)
class WaitRecord:
    """What a run waits for now.

    kind: "timer" (until `wake_at`), "message" (on `topic`, until `wake_at` if a timeout was
    given), "input" (on INPUT_TOPIC; `detail` holds {"schema": ..., "description": ...}),
    "child" (`topic` is the child run's id), "retry" (a retry delay until `wake_at`).
    `detail` is JSON text. `parked`: the run has no process (Paused, no lease) and is woken
    by the store; False while the run's process waits in place.
    """

    run_id: str
    kind: str
    step_key: str
    topic: str | None = None
    wake_at: float | None = None
    detail: str = "{}"
    since: float = 0.0
    parked: bool = False


@dataclass(slots=True)
class StatusRecord:
    """A value a run published with `stead.set_status(key, value)` (JSON text)."""

    run_id: str
    key: str
    value: str
    updated_at: float
    step_key: str | None = None


class WaitStore(Protocol):
    """Waits, messages and published status: the part of the store interface that durable
    waits need, implemented by every backend (SQLite, PostgreSQL, and the HTTP client of
    remote processes).

    Example:
        >>> msg, created = store.send_message("r1", "payment", '{"ref": "tx-81"}',
        ...                                   "tx-81", time.time())
        >>> store.next_message("r1", "payment").id == msg.id
        True
    """

    # -- messages ------------------------------------------------------------------------
    def send_message(self, run_id: str, topic: str, payload: str,
                     idempotency_key: str | None, now: float, sender: str | None = None,
                     expects_reply: bool = False) -> tuple[MessageRecord, bool]:
        """Store a message for run `run_id` (its exact id) and return it, with True if this
        call stored it (False: a message with this idempotency key was stored before, and is
        returned as it is). Wakes the run, in the same transaction, if it is parked waiting
        for this topic (Paused -> Pending, with a history entry). RunNotFound for an unknown
        run; WaitError for a finished run (Completed, Failed, Cancelled: a Crashed one is
        resumed, so it still receives), a topic that is empty or too long, or a payload
        that is not JSON text. Input (INPUT_TOPIC) is checked against the schema of the
        run's input wait (`check_input`): InvalidInput if it does not fit, WaitError if the
        run does not wait for input. A key stored before returns its message even if the run
        finished or stopped waiting since (a retried send). Through a server, `sender` is the
        calling key's "ROLE:KEY_ID"."""
        ...

    def next_message(self, run_id: str, topic: str) -> MessageRecord | None:
        """The oldest pending message of the run on `topic`, or None."""
        ...

    def consume_message(self, message_id: int, step: StepRecord,
                        fence: Fence | None = None) -> MessageRecord:
        """Mark the message consumed by `step` and record `step` (its outcome: the message
        as the receive returns it) in one transaction. RunConflict if the message is no
        longer pending (nothing is written), unless this very step consumed it (a retried
        call: the message is returned as it is); WaitError if it is another run's message
        or there is none; LeaseLost if the fence no longer holds."""
        ...

    def reject_message(self, message_id: int, reason: str, now: float,
                       fence: Fence | None = None) -> None:
        """Mark a pending message rejected (the flow's validator refused it): its sender's
        `stead.request` raises RequestRejected(reason). It is never received. Rejecting it
        again changes nothing; RunConflict if it was consumed."""
        ...

    def reply_message(self, message_id: int, reply: str | None, error: str | None,
                      now: float, fence: Fence | None = None) -> None:
        """Record the reply (JSON text) or the error text to a consumed request. A second
        reply to the same message is ignored (the first one stands: a resumed flow that
        replies again changes nothing); WaitError for a message not consumed."""
        ...

    def get_message(self, message_id: int) -> MessageRecord:
        """One message by id; WaitError if there is none."""
        ...

    def list_messages(self, run_id: str, topic: str | None = None,
                      limit: int = 100) -> list[MessageRecord]:
        """The run's messages (of `topic`, or all), in send order, at most `limit`."""
        ...

    # -- waits ---------------------------------------------------------------------------
    def record_wait(self, wait: WaitRecord, fence: Fence | None = None) -> None:
        """Record (or replace) what the run waits for while its process waits in place
        (`wait.parked` is stored False; an input wait's topic is stored as INPUT_TOPIC).
        RunNotFound for an unknown run; WaitError for an unknown kind, a timer or retry
        without `wake_at`, a message or child wait without its topic."""
        ...

    def clear_wait(self, run_id: str, fence: Fence | None = None) -> None:
        """The run waits for nothing any more (its wait row is deleted)."""
        ...

    def get_wait(self, run_id: str) -> WaitRecord | None:
        """What the run waits for now, or None."""
        ...

    def list_waits(self, run_ids: list[str]) -> dict[str, WaitRecord]:
        """The waits of these runs (for listings), by run id; runs that wait for nothing
        are left out."""
        ...

    def park_run(self, run: RunRecord, wait: WaitRecord, now: float,
                 fence: Fence | None = None) -> str:
        """Park a leased run in one transaction, fenced: record `wait` as parked, release the
        run's lease (lease_expires_at and worker_id NULL, lease_epoch bumped so its former
        executor can write nothing more) and its tag slots, and move it to Paused with a
        history entry saying what it waits for — or straight to Pending when the wait is
        already satisfied (a timer due at `now`, a pending message on its topic, a finished
        child, or `wake_at` come). Returns the state it moved to, and changes `run` as it
        was stored (state, no lease, the bumped epoch). The run's other fields are written
        as `transition_run` writes them. RunConflict unless the run is Running, Retrying or
        Paused (in its process); RunNotFound for a child wait on an unknown run. A Pending
        run keeps its wait row, no longer parked."""
        ...

    def wake_due_runs(self, now: float, limit: int = 1000) -> tuple[int, float | None]:
        """Move parked runs whose wake time has come (timers, retry delays, timeouts of
        message and input waits) to Pending; at most `limit` per call. Returns how many it
        woke and the earliest wake time of the runs still parked (None: no parked run has
        one), so a caller sleeps until then instead of polling (a time at or before `now`:
        more were due than `limit`, call again)."""
        ...

    def notify_finished(self, run_id: str, now: float) -> int:
        """Wake the parked run waiting for child run `run_id`, if any and if that child has
        finished (Completed, Failed, Cancelled, Crashed: else nothing changes); how many
        runs were woken (0 or 1)."""
        ...

    # -- status --------------------------------------------------------------------------
    def set_status(self, status: StatusRecord, step: StepRecord | None = None,
                   fence: Fence | None = None) -> None:
        """Record a published value (replacing the key's previous one) and, in the same
        transaction, the step that published it. RunNotFound for an unknown run; WaitError
        for a key that is empty or too long, or a value that is not JSON text."""
        ...

    def get_status(self, run_id: str, key: str | None = None) -> list[StatusRecord]:
        """The run's published values (all, ordered by key, or the one of `key`: a list of
        zero or one). RunNotFound for an unknown run."""
        ...


# -- the rules of what the verbs store -------------------------------------------------------
FINISHED_STATES = ("Completed", "Failed", "Cancelled", "Crashed")  # no more messages, no waits


def check_topic(run_id: str, topic: object) -> str:
    """`topic` if it is one a message can travel on, else WaitError naming the run.

    >>> check_topic("r1", "payment")
    'payment'
    """
    if not isinstance(topic, str) or not topic:
        raise WaitError(f"a message to run {run_id} needs a topic: a non-empty string of at "
                        f"most {TOPIC_MAX} characters, not {topic!r}")
    if len(topic) > TOPIC_MAX or "\x00" in topic:
        raise WaitError(f"topic {topic[:60]!r}... of a message to run {run_id} is not valid: a "
                        f"topic has at most {TOPIC_MAX} characters and no NUL")
    return topic


def check_key(run_id: str, key: object, what: str = "idempotency key") -> str | None:
    """`key` (None: no key) if it is a valid idempotency or status key, else WaitError.

    >>> check_key("r1", "tx-81")
    'tx-81'
    """
    if key is None and what == "idempotency key":
        return None
    if not isinstance(key, str) or not key or len(key) > KEY_MAX or "\x00" in key:
        shown = repr(key)[:60]
        raise WaitError(f"{what} {shown} for run {run_id} is not valid: a key is a string of "
                        f"1 to {KEY_MAX} characters")
    return key


def _refuse_constant(text: str) -> object:
    raise ValueError(f"{text} is not a JSON value")


def check_json(text: object, what: str) -> str:
    """`text` if it is JSON text of at most PAYLOAD_MAX_BYTES, else WaitError; `what` names
    it in the error ("the payload of a message to run r1 on 'payment'").

    >>> check_json('{"ref": "tx-81"}', "the payload")
    '{"ref": "tx-81"}'
    """
    if not isinstance(text, str):
        raise WaitError(f"{what} is stored as JSON text, not {type(text).__name__}")
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise WaitError(f"{what} is not valid Unicode (a lone surrogate)") from None
    if size > PAYLOAD_MAX_BYTES:
        raise WaitError(f"{what} is {size} bytes of JSON; at most {PAYLOAD_MAX_BYTES} are "
                        "stored: keep large data in a file or a table, and send where it is")
    try:
        json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError) as exc:
        raise WaitError(f"{what} is not JSON text: {exc}") from None
    return text


def json_value(text: str | None) -> Any:
    """A stored JSON text (payload, reply, status value) as its value, for display: None as
    None, and text that is not JSON as it is.

    >>> json_value('{"ref": "tx-81"}'), json_value(None)
    ({'ref': 'tx-81'}, None)
    """
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def describe_wait(wait: WaitRecord) -> str:
    """What a run waits for, in words (history entries, `runs ls`).

    >>> describe_wait(WaitRecord("r1", "message", "4", topic="payment"))
    "waiting for a message on 'payment'"
    """
    until = f" until {format_time(wait.wake_at)}" if wait.wake_at is not None else ""
    if wait.kind == "timer":
        return f"sleeping{until}"
    if wait.kind == "retry":
        return f"waiting to retry{until}"
    if wait.kind == "input":
        return f"waiting for input{until}"
    if wait.kind == "child":
        return f"waiting for child run {wait.topic}{until}"
    return f"waiting for a message on {wait.topic!r}{until}"


def format_time(at: float) -> str:
    """A wake time as history shows it: "2026-12-07 10:00:00 UTC"."""
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def after_park(run: RunRecord, state: str) -> None:
    """What `park_run` wrote, on the caller's copy of the run: its new state, no lease, and
    the bumped epoch (so the copy matches the stored run)."""
    run.state = state
    run.lease_expires_at = None
    run.worker_id = None
    run.lease_epoch += 1


# -- input against its form --------------------------------------------------------------
def check_input(schema_json: str, payload_json: str, run_id: str) -> None:
    """Refuse input that does not fit the JSON Schema a run's `wait_for_input` recorded:
    InvalidInput naming the JSON path of the first value that does not fit (`field`, "" for
    the whole input) and why (`reason`). Schemas refer only to themselves ($defs): a
    reference to anything else is refused, never fetched.

    >>> check_input('{"type": "object", "required": ["approver"]}', '{}', "r1")
    Traceback (most recent call last):
    ...
    stead.errors.InvalidInput: input for run r1 does not fit the form: field 'approver': \
'approver' is a required property
    """
    from jsonschema.exceptions import best_match  # ~40 ms to import: only when input comes

    validator = _validator(schema_json, run_id)
    try:
        value = json.loads(payload_json, parse_constant=_refuse_constant)
    except (ValueError, TypeError, RecursionError) as exc:
        raise InvalidInput(f"input for run {run_id} is not JSON text: {exc}", run_id=run_id,
                           field="", reason=f"not JSON text: {exc}") from None
    try:
        error = best_match(validator.iter_errors(value))
    except Exception as exc:  # an unresolvable $ref (referencing's errors), a bad pattern
        raise WaitError(f"the input form recorded for run {run_id} cannot be checked: "
                        f"{exc}") from None
    if error is None:
        return
    path = list(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        missing = [n for n in error.validator_value if n not in error.instance]
        if missing:
            path.append(missing[0])
    field = json_path(path)
    reason = error.message
    where = f"field {field!r}: " if field else ""
    raise InvalidInput(f"input for run {run_id} does not fit the form: {where}{reason}",
                       run_id=run_id, field=field, reason=reason)


def json_path(parts: list[str | int]) -> str:
    """The path of a value inside a JSON document: keys joined by ".", indexes in brackets.

    >>> json_path(["items", 0, "sku"])
    'items[0].sku'
    """
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


@functools.lru_cache(maxsize=128)
def _cached_validator(schema_json: str) -> Any:
    from jsonschema import Draft202012Validator
    from jsonschema.validators import validator_for

    schema = json.loads(schema_json)
    cls = validator_for(schema, default=Draft202012Validator)
    cls.check_schema(schema)
    return cls(schema)


def _validator(schema_json: str, run_id: str) -> Any:
    from jsonschema.exceptions import SchemaError

    try:
        return _cached_validator(schema_json)
    except (ValueError, TypeError, SchemaError) as exc:
        detail = exc.message if isinstance(exc, SchemaError) else str(exc)
        raise WaitError(f"the input form recorded for run {run_id} is not a valid JSON "
                        f"Schema: {detail}") from None

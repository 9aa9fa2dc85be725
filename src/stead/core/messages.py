"""Talking to runs from anywhere: `send` a message, `send_input`, `get_status`, `request`.

These work from any process that reaches the database (or the server, in remote mode): a
script, a web handler, another flow. Inside a flow, `send` is a step of the sending run, so
a resumed sender does not send again.

Example:
    >>> stead.send(run_id, "payment", {"ref": "tx-81"}, idempotency_key="tx-81")
    >>> stead.get_status(run_id, "stage", wait=timedelta(seconds=30))
    'approved'
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

from stead.core.context import current_run
from stead.core.steps import Step
from stead.core.waits import seconds_of, to_json
from stead.errors import RequestRejected, WaitError, WaitTimeout
from stead.store.base import Store
from stead.store.waits import INPUT_TOPIC, MessageRecord, check_topic


def _store(database_url: str | None) -> Store:
    ctx = current_run.get()
    if ctx is not None and database_url is None:
        return ctx.store
    from stead.core.runtime import store_for

    return store_for(database_url)


def _sender() -> str | None:
    ctx = current_run.get()
    return f"run:{ctx.run.id}" if ctx is not None else None


def send(run_id: str, topic: str, payload: Any = None, idempotency_key: str | None = None,
         *, database_url: str | None = None) -> int:
    """Send `payload` (JSON, a dataclass, a pydantic model) to run `run_id` (an id or a
    unique prefix) on `topic`; returns the message's id.

    The run takes it with `stead.receive(topic)`, now or whenever it gets there; a parked
    run waiting for this topic is woken. The same `idempotency_key` sent twice to a run is
    stored once (the second call returns the first message's id). Inside a flow the send is
    a step: a resumed sender does not send it again.

    Example:
        >>> stead.send(run_id, "payment", {"ref": "tx-81"}, idempotency_key="tx-81")
        17
    """
    check_topic(run_id, topic)
    text = to_json(payload, f"the payload for topic {topic!r}")
    ctx = current_run.get()
    if ctx is None:
        return _deliver(_store(database_url), run_id, topic, text, idempotency_key).id
    step = Step(ctx, "stead.send", "send", json.dumps({"run": run_id, "topic": topic}))
    if step.replayed:
        return step.replay()  # type: ignore[no-any-return]
    step.start_attempt()
    key = idempotency_key or f"{ctx.run.id}/{step.key}"  # a crash before the step: sent once
    try:
        msg = _deliver(_store(database_url), run_id, topic, text, key)
    except BaseException:
        step.abandoned()
        raise
    return step.succeeded(msg.id)  # type: ignore[no-any-return]


def _deliver(store: Store, run_id: str, topic: str, text: str, key: str | None,
             expects_reply: bool = False) -> MessageRecord:
    run_id = store.resolve_run_id(run_id)
    msg, _ = store.send_message(run_id, topic, text, key, time.time(), _sender(),
                                expects_reply)
    return msg


def send_input(run_id: str, value: Any, *, database_url: str | None = None) -> int:
    """Give a run waiting in `stead.wait_for_input` its input (a dict, or an instance of the
    model). Input that does not fit the recorded form raises InvalidInput (with the field
    and the reason) and the run keeps waiting; a run that waits for no input: WaitError.

    Example:
        >>> stead.send_input(run_id, {"approved": True, "approver": "ana"})
    """
    text = to_json(value, "the input")
    return _deliver(_store(database_url), run_id, INPUT_TOPIC, text, None).id


def get_status(run_id: str, key: str | None = None,
               wait: float | dt.timedelta | None = None, *,
               database_url: str | None = None) -> Any:
    """What run `run_id` published with `stead.set_status`: the value of `key` (None if it
    is not set), or a dict of every key. With `wait`, wait up to that long for `key` to be
    set (WaitTimeout if it is not). Works while no process executes the run.

    Example:
        >>> stead.get_status(run_id, "stage", wait=timedelta(seconds=30))
        'approved'
    """
    store = _store(database_url)
    run_id = store.resolve_run_id(run_id)
    limit = None if wait is None else time.monotonic() + seconds_of(wait, "get_status")
    if key is None and limit is not None:
        raise WaitError("get_status(wait=...) waits for one key: name it")
    delay = 0.001
    while True:
        found = store.get_status(run_id, key)
        if key is None:
            return {s.key: json.loads(s.value) for s in found}
        if found:
            return json.loads(found[0].value)
        if limit is None:
            return None
        left = limit - time.monotonic()
        if left <= 0:
            raise WaitTimeout(f"run {run_id} did not publish status {key!r} within "
                              f"{seconds_of(wait, 'get_status'):g} s")
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.1)


def request(run_id: str, topic: str, payload: Any = None,
            timeout: float | dt.timedelta = 60.0, *, idempotency_key: str | None = None,
            database_url: str | None = None) -> Any:
    """Send a message and wait for the flow's reply (`msg.reply(value)` after
    `stead.receive(topic)`); returns the reply's value. RequestRejected if the flow's
    `validate=` refused it; WaitTimeout if no reply came within `timeout` (the message stays
    stored: the flow may still take it).

    Example:
        >>> stead.request(run_id, "discount", {"percent": 10}, timeout=5)
        {'accepted': True}
    """
    check_topic(run_id, topic)
    text = to_json(payload, f"the payload for topic {topic!r}")
    store = _store(database_url)
    seconds = seconds_of(timeout, "stead.request")
    msg = _deliver(store, run_id, topic, text, idempotency_key, expects_reply=True)
    limit = time.monotonic() + seconds
    delay = 0.0002
    while True:
        msg = store.get_message(msg.id)
        if msg.state == "rejected":
            raise RequestRejected(f"run {msg.run_id} refused the request on {topic!r}: "
                                  f"{msg.reply_error}")
        if msg.replied_at is not None:
            if msg.reply_error is not None:
                raise RequestRejected(f"run {msg.run_id} failed the request on {topic!r}: "
                                      f"{msg.reply_error}")
            return None if msg.reply is None else json.loads(msg.reply)
        left = limit - time.monotonic()
        if left <= 0:
            raise WaitTimeout(f"run {msg.run_id} did not reply on {topic!r} within "
                              f"{seconds:g} s (message {msg.id} stays stored)")
        time.sleep(min(delay, left))
        delay = min(delay * 1.2, 0.05)

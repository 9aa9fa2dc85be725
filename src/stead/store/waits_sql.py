"""Waits, messages and published status (store/waits.py): the SQL both backends share, each
function running inside the backend's transaction (conventions in store/leases.py); the
verbs over it are `WaitVerbs` in store/verbs.py.

Locks, on PostgreSQL (SQLite's one write lock covers everything): a verb that changes
whether a run is parked or woken locks the run's row first, then touches its wait row, so
sends, parks and wakes of one run take their turns in one order. A message sent while its
run parks is either seen by the park (the run goes straight to Pending) or sees the parked
wait (and wakes it): no wake-up is lost. A run parked on a child locks the child's row
(shared) while it checks whether the child finished, for the same reason.

On PostgreSQL a sent message, a reply and a published status also notify channel
`stead_waits` (payload "message:RUN_ID", "reply:MESSAGE_ID", "status:RUN_ID") at commit, so
a process waiting for one need not poll.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from stead.errors import RunConflict, RunNotFound, WaitError
from stead.store.base import Fence, RunRecord, StepRecord
from stead.store.sql import (
    POSTGRES,
    RUN_UPDATE_COLUMNS,
    SQLITE,
    Dialect,
    check_fence,
    run_update_values,
    statements,
    step_values,
)
from stead.store.waits import (
    FINISHED_STATES,
    INPUT_TOPIC,
    WAIT_KINDS,
    MessageRecord,
    StatusRecord,
    WaitRecord,
    check_input,
    check_json,
    check_key,
    check_topic,
    describe_wait,
)

CHANNEL = "stead_waits"
CHUNK = 500  # ids per IN (...) list
MESSAGE_COLUMNS = ("id, run_id, topic, payload, sent_at, idempotency_key, sender, "
                   "expects_reply, state, step_key, consumed_at, reply, reply_error, replied_at")
WAIT_COLUMNS = "run_id, kind, step_key, topic, wake_at, detail, since, parked"
STATUS_COLUMNS = "run_id, key, value, updated_at, step_key"
_STEP_UPSERT = {d: statements(d).step_upsert for d in (SQLITE, POSTGRES)}
_HISTORY = "INSERT INTO run_history (run_id, state, at, message) VALUES ({m})"


def _message(row: Any) -> MessageRecord:
    (mid, run_id, topic, payload, sent_at, key, sender, expects, state, step_key, consumed_at,
     reply, reply_error, replied_at) = row
    return MessageRecord(int(mid), run_id, topic, payload, float(sent_at), key, sender,
                         bool(expects), state, step_key, consumed_at, reply, reply_error,
                         replied_at)


def _wait(row: Any) -> WaitRecord:
    run_id, kind, step_key, topic, wake_at, detail, since, parked = row
    return WaitRecord(run_id, kind, step_key, topic, wake_at, detail, float(since),
                      bool(parked))


def _notify(conn: Any, d: Dialect, payload: str) -> None:
    if d == POSTGRES:  # delivered at commit; SQLite's waiters poll
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))


def _history(conn: Any, d: Dialect, run_id: str, state: str, at: float, message: str) -> None:
    conn.execute(_HISTORY.format(m=d.marks(4)), (run_id, state, at, message))


def _run_state(conn: Any, d: Dialect, run_id: str, lock: str = "") -> tuple[str, Any]:
    """The run's (state, lease_expires_at); RunNotFound if there is no such run."""
    row = conn.execute(f"SELECT state, lease_expires_at FROM runs WHERE id = {d.p}{lock}",
                       (run_id,)).fetchone()
    if row is None:
        raise RunNotFound(f"no run with id {run_id!r}; `stead runs ls` lists the runs")
    return row[0], row[1]


def _write_step(conn: Any, d: Dialect, step: StepRecord) -> None:
    row = conn.execute(f"SELECT seq FROM runs WHERE id = {d.p}", (step.run_id,)).fetchone()
    if row is None:
        raise RunNotFound(f"no run with id {step.run_id!r} to record step {step.key} of")
    # SQLite keeps top-level keys as integers (store/sqlite.py).
    key: int | str = int(step.key) if d == SQLITE and step.key.isdigit() else step.key
    conn.execute(_STEP_UPSERT[d], step_values(row[0], key, step))


def _checked_wait(wait: WaitRecord) -> WaitRecord:
    """`wait` as stored (an input wait's topic is INPUT_TOPIC), or WaitError."""
    if wait.kind not in WAIT_KINDS:
        raise WaitError(f"run {wait.run_id} cannot wait for {wait.kind!r}: a wait is one of "
                        f"{', '.join(WAIT_KINDS)}")
    if wait.kind == "input" and wait.topic in (None, INPUT_TOPIC):
        wait = replace(wait, topic=INPUT_TOPIC)
    elif wait.kind == "input":
        raise WaitError(f"run {wait.run_id} waits for input on {INPUT_TOPIC!r}, not on "
                        f"{wait.topic!r}")
    if wait.kind in ("message", "child"):
        check_topic(wait.run_id, wait.topic)
    elif wait.kind in ("timer", "retry") and wait.wake_at is None:
        raise WaitError(f"a {wait.kind} wait of run {wait.run_id} needs its wake time")
    check_json(wait.detail, f"the detail of run {wait.run_id}'s wait")
    return wait


def _upsert_wait(conn: Any, d: Dialect, wait: WaitRecord, parked: bool) -> None:
    conn.execute(
        f"INSERT INTO waits ({WAIT_COLUMNS}) VALUES ({d.marks(8)}) ON CONFLICT (run_id) DO "
        "UPDATE SET kind = excluded.kind, step_key = excluded.step_key, topic = "
        "excluded.topic, wake_at = excluded.wake_at, detail = excluded.detail, since = "
        "excluded.since, parked = excluded.parked",
        (wait.run_id, wait.kind, wait.step_key, wait.topic, wait.wake_at, wait.detail,
         wait.since, parked))


def _wake(conn: Any, d: Dialect, run_id: str, now: float, message: str) -> bool:
    """Wake the run if it is parked (Paused, no lease, its wait parked): Pending, with a
    history entry, its wait no longer parked. Locks the run's row first."""
    state, lease = _run_state(conn, d, run_id, d.for_update)
    parked = conn.execute(f"SELECT 1 FROM waits WHERE run_id = {d.p} AND parked = TRUE",
                          (run_id,)).fetchone()
    if parked is None:
        return False
    conn.execute(f"UPDATE waits SET parked = FALSE WHERE run_id = {d.p}", (run_id,))
    if state != "Paused" or lease is not None:
        return False  # moved meanwhile by hand (requeued, resumed): nothing to wake
    conn.execute(f"UPDATE runs SET state = 'Pending' WHERE id = {d.p}", (run_id,))
    _history(conn, d, run_id, "Pending", now, message)
    return True


# -- messages ------------------------------------------------------------------------------
def send_message(conn: Any, d: Dialect, run_id: str, topic: str, payload: str,
                 idempotency_key: str | None, now: float, sender: str | None,
                 expects_reply: bool) -> tuple[MessageRecord, bool]:
    check_topic(run_id, topic)
    what = f"the payload of a message to run {run_id} on {topic!r}"
    check_json(payload, what)
    key = check_key(run_id, idempotency_key)
    state, _ = _run_state(conn, d, run_id, d.for_update)
    if key is not None:  # sent before (perhaps a retry whose answer was lost): as it is
        row = conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE run_id = {d.p} AND "
                           f"idempotency_key = {d.p}", (run_id, key)).fetchone()
        if row is not None:
            return _message(row), False
    if state in FINISHED_STATES and state != "Crashed":  # a Crashed run is resumed
        raise WaitError(f"run {run_id} is {state}: it receives no more messages")
    wait = get_wait(conn, d, run_id)
    if topic == INPUT_TOPIC:
        if wait is None or wait.kind != "input":
            doing = f"; it is {describe_wait(wait)}" if wait is not None else ""
            raise WaitError(f"run {run_id} does not wait for input (it is {state}{doing}): "
                            "input is sent to a run paused in stead.wait_for_input")
        schema = _detail(wait).get("schema")
        if schema is not None:
            check_input(json.dumps(schema), payload, run_id)
    mid = conn.execute(
        f"INSERT INTO messages (run_id, topic, payload, sent_at, idempotency_key, sender, "
        f"expects_reply, state) VALUES ({d.marks(7)}, 'pending') RETURNING id",
        (run_id, topic, payload, now, key, sender, expects_reply)).fetchone()[0]
    if wait is not None and wait.parked and wait.topic == topic and (
            wait.kind == "message" or (wait.kind == "input" and topic == INPUT_TOPIC)):
        _wake(conn, d, run_id, now, "woken: input arrived" if topic == INPUT_TOPIC
              else f"woken: a message on {topic!r} arrived")
    _notify(conn, d, f"message:{run_id}")
    return MessageRecord(int(mid), run_id, topic, payload, now, key, sender,
                         expects_reply), True


def _detail(wait: WaitRecord) -> dict[str, Any]:
    try:
        detail = json.loads(wait.detail)
    except ValueError:
        return {}
    return detail if isinstance(detail, dict) else {}


def next_message(conn: Any, d: Dialect, run_id: str, topic: str) -> MessageRecord | None:
    row = conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE run_id = {d.p} AND "
                       f"topic = {d.p} AND state = 'pending' ORDER BY id LIMIT 1",
                       (run_id, topic)).fetchone()
    return None if row is None else _message(row)


def _locked_message(conn: Any, d: Dialect, message_id: int) -> MessageRecord:
    row = conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = {d.p}"
                       f"{d.for_update}", (message_id,)).fetchone()
    if row is None:
        raise WaitError(f"no message {message_id}: it was never sent, or its run was pruned")
    return _message(row)


def consume_message(conn: Any, d: Dialect, message_id: int, step: StepRecord,
                    fence: Fence | None) -> MessageRecord:
    if fence is not None:
        check_fence(conn, d, fence)
    msg = _locked_message(conn, d, message_id)
    if msg.run_id != step.run_id:
        raise WaitError(f"message {message_id} was sent to run {msg.run_id}, not to run "
                        f"{step.run_id}: a run receives only its own messages")
    if msg.state == "consumed" and msg.step_key == step.key:
        return msg  # this very receive, again (a retried call): it stands as it is
    if msg.state != "pending":
        by = f" by step {msg.step_key}" if msg.step_key else ""
        raise RunConflict(f"message {message_id} to run {msg.run_id} on {msg.topic!r} was "
                          f"{msg.state}{by} already: another receive took it")
    at = step.ended_at if step.ended_at is not None else step.started_at
    if at is None:
        at = float(conn.execute(f"SELECT {d.clock}").fetchone()[0])
    conn.execute(f"UPDATE messages SET state = 'consumed', step_key = {d.p}, consumed_at = "
                 f"{d.p} WHERE id = {d.p}", (step.key, at, message_id))
    _write_step(conn, d, step)
    msg.state, msg.step_key, msg.consumed_at = "consumed", step.key, at
    return msg


def reject_message(conn: Any, d: Dialect, message_id: int, reason: str, now: float,
                   fence: Fence | None) -> None:
    if fence is not None:
        check_fence(conn, d, fence)
    msg = _locked_message(conn, d, message_id)
    if msg.state == "rejected":
        return
    if msg.state != "pending":
        raise RunConflict(f"message {message_id} to run {msg.run_id} was {msg.state} by step "
                          f"{msg.step_key}: only a message not yet received can be rejected")
    conn.execute(f"UPDATE messages SET state = 'rejected', reply_error = {d.p}, replied_at = "
                 f"{d.p} WHERE id = {d.p}", (reason, now, message_id))
    _notify(conn, d, f"reply:{message_id}")


def reply_message(conn: Any, d: Dialect, message_id: int, reply: str | None,
                  error: str | None, now: float, fence: Fence | None) -> None:
    if fence is not None:
        check_fence(conn, d, fence)
    msg = _locked_message(conn, d, message_id)
    if msg.replied_at is not None:
        return  # the first reply stands (a resumed flow replying again changes nothing)
    if msg.state != "consumed":
        raise WaitError(f"message {message_id} to run {msg.run_id} is {msg.state}: a reply "
                        "answers a request the flow received")
    if reply is not None:
        check_json(reply, f"the reply to message {message_id}")
    conn.execute(f"UPDATE messages SET reply = {d.p}, reply_error = {d.p}, replied_at = {d.p} "
                 f"WHERE id = {d.p}", (reply, error, now, message_id))
    _notify(conn, d, f"reply:{message_id}")


def get_message(conn: Any, d: Dialect, message_id: int) -> MessageRecord:
    row = conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = {d.p}",
                       (message_id,)).fetchone()
    if row is None:
        raise WaitError(f"no message {message_id}: it was never sent, or its run was pruned")
    return _message(row)


def list_messages(conn: Any, d: Dialect, run_id: str, topic: str | None,
                  limit: int) -> list[MessageRecord]:
    where, args = f"run_id = {d.p}", [run_id]
    if topic is not None:
        where += f" AND topic = {d.p}"
        args.append(topic)
    rows = conn.execute(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE {where} ORDER BY id "
                        f"LIMIT {d.p}", (*args, max(0, limit))).fetchall()
    return [_message(row) for row in rows]


# -- waits ---------------------------------------------------------------------------------
def record_wait(conn: Any, d: Dialect, wait: WaitRecord, fence: Fence | None) -> None:
    if fence is not None:
        check_fence(conn, d, fence)
    wait = _checked_wait(wait)
    _run_state(conn, d, wait.run_id)
    _upsert_wait(conn, d, wait, parked=False)


def clear_wait(conn: Any, d: Dialect, run_id: str, fence: Fence | None) -> None:
    if fence is not None:
        check_fence(conn, d, fence)
    conn.execute(f"DELETE FROM waits WHERE run_id = {d.p}", (run_id,))


def get_wait(conn: Any, d: Dialect, run_id: str) -> WaitRecord | None:
    row = conn.execute(f"SELECT {WAIT_COLUMNS} FROM waits WHERE run_id = {d.p}",
                       (run_id,)).fetchone()
    return None if row is None else _wait(row)


def list_waits(conn: Any, d: Dialect, run_ids: list[str]) -> dict[str, WaitRecord]:
    found: dict[str, WaitRecord] = {}
    ids = list(dict.fromkeys(run_ids))
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        rows = conn.execute(f"SELECT {WAIT_COLUMNS} FROM waits WHERE run_id IN "
                            f"({d.marks(len(chunk))})", chunk).fetchall()
        found.update((row[0], _wait(row)) for row in rows)
    return found


def _satisfied(conn: Any, d: Dialect, wait: WaitRecord, now: float) -> str | None:
    """Why `wait` needs no waiting at `now` (a history message), or None."""
    if wait.kind == "child":
        row = conn.execute(f"SELECT state FROM runs WHERE id = {d.p}{d.for_share}",
                           (wait.topic,)).fetchone()
        if row is None:
            raise RunNotFound(f"run {wait.run_id} cannot wait for child run {wait.topic!r}: "
                              "there is no such run")
        if row[0] in FINISHED_STATES:
            return f"child run {wait.topic} is {row[0]} already"
    elif wait.kind in ("message", "input") and next_message(
            conn, d, wait.run_id, wait.topic or "") is not None:
        return ("input is waiting already" if wait.kind == "input"
                else f"a message on {wait.topic!r} is waiting already")
    if wait.wake_at is not None and wait.wake_at <= now:
        return "its wake time has come"
    return None


def park_run(conn: Any, d: Dialect, run: RunRecord, wait: WaitRecord, now: float,
             fence: Fence | None) -> str:
    state, _ = _run_state(conn, d, run.id, d.for_update)  # first: see the module docstring
    if fence is not None:
        check_fence(conn, d, fence)
    if wait.run_id != run.id:
        raise WaitError(f"the wait of run {wait.run_id} cannot park run {run.id}")
    if state not in ("Running", "Retrying", "Paused"):
        raise RunConflict(f"run {run.id} is {state}: only a run being executed can be parked")
    wait = _checked_wait(wait)
    reason = _satisfied(conn, d, wait, now)
    target = "Pending" if reason is not None else "Paused"
    moved = replace(run, state=target)
    conn.execute(f"UPDATE runs SET {', '.join(f'{c} = {d.p}' for c in RUN_UPDATE_COLUMNS)}, "
                 "lease_epoch = lease_epoch + 1, lease_expires_at = NULL, worker_id = NULL "
                 f"WHERE id = {d.p}", run_update_values(moved))
    _history(conn, d, run.id, target, now, f"parked: {describe_wait(wait)}" if reason is None
             else f"not parked ({describe_wait(wait)}): {reason}")
    conn.execute(f"DELETE FROM slots WHERE holder LIKE {d.p} OR holder LIKE {d.p}",
                 (f"{run.id}/%", f"{run.id}:%"))
    _upsert_wait(conn, d, replace(wait, since=wait.since or now), parked=reason is None)
    return target


def wake_due_runs(conn: Any, d: Dialect, now: float, limit: int) -> tuple[int, float | None]:
    due = f"parked = TRUE AND wake_at <= {d.p}"
    ids = sorted(r[0] for r in conn.execute(
        f"SELECT run_id FROM waits WHERE {due} ORDER BY wake_at LIMIT {d.p}",
        (now, max(0, limit))).fetchall())
    woken = 0
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start:start + CHUNK]
        # The runs first (the order every verb locks in), skipping those another
        # transaction holds (a send waking it, a cancel): the next call sees them again.
        runs = dict((r[0], r[1:]) for r in conn.execute(
            f"SELECT id, state, lease_expires_at FROM runs WHERE id IN "
            f"({d.marks(len(chunk))}) ORDER BY id{d.skip_locked}", chunk).fetchall())
        if not runs:
            continue
        marks = d.marks(len(runs))
        # Read again under the runs' locks: a run woken and parked anew meanwhile waits for
        # its new wake time.
        waits = [_wait(r) for r in conn.execute(
            f"SELECT {WAIT_COLUMNS} FROM waits WHERE run_id IN ({marks}) AND {due}",
            (*runs, now)).fetchall()]
        wake = [w for w in waits if runs[w.run_id] == ("Paused", None)]
        if waits:
            conn.execute(f"UPDATE waits SET parked = FALSE WHERE run_id IN "
                         f"({d.marks(len(waits))})", [w.run_id for w in waits])
        if wake:
            conn.execute(f"UPDATE runs SET state = 'Pending' WHERE id IN "
                         f"({d.marks(len(wake))})", [w.run_id for w in wake])
            for w in wake:
                _history(conn, d, w.run_id, "Pending", now, _due_message(w))
        woken += len(wake)
    row = conn.execute("SELECT min(wake_at) FROM waits WHERE parked = TRUE AND wake_at IS NOT "
                       "NULL").fetchone()
    return woken, None if row is None or row[0] is None else float(row[0])


def _due_message(wait: WaitRecord) -> str:
    if wait.kind == "timer":
        return "woken: slept until its wake time"
    if wait.kind == "retry":
        return "woken: its retry delay is over"
    return f"woken: timed out {describe_wait(replace(wait, wake_at=None))}"


def notify_finished(conn: Any, d: Dialect, run_id: str, now: float) -> int:
    row = conn.execute(f"SELECT state FROM runs WHERE id = {d.p}", (run_id,)).fetchone()
    if row is None or row[0] not in FINISHED_STATES:
        return 0  # only a finished child wakes its parent
    waiters = [r[0] for r in conn.execute(
        f"SELECT run_id FROM waits WHERE kind = 'child' AND topic = {d.p} AND parked = TRUE",
        (run_id,)).fetchall()]
    return sum(_wake(conn, d, waiter, now, f"woken: child run {run_id} is {row[0]}")
               for waiter in waiters)


# -- status ----------------------------------------------------------------------------------
def set_status(conn: Any, d: Dialect, status: StatusRecord, step: StepRecord | None,
               fence: Fence | None) -> None:
    if fence is not None:
        check_fence(conn, d, fence)
    check_key(status.run_id, status.key, "status key")
    check_json(status.value, f"the value of status {status.key!r} of run {status.run_id}")
    _run_state(conn, d, status.run_id)
    conn.execute(
        f"INSERT INTO run_status ({STATUS_COLUMNS}) VALUES ({d.marks(5)}) ON CONFLICT "
        "(run_id, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, "
        "step_key = excluded.step_key",
        (status.run_id, status.key, status.value, status.updated_at, status.step_key))
    if step is not None:
        _write_step(conn, d, step)
    _notify(conn, d, f"status:{status.run_id}")


def get_status(conn: Any, d: Dialect, run_id: str, key: str | None) -> list[StatusRecord]:
    _run_state(conn, d, run_id)
    where, args = f"run_id = {d.p}", [run_id]
    if key is not None:
        where += f" AND key = {d.p}"
        args.append(key)
    rows = conn.execute(f"SELECT {STATUS_COLUMNS} FROM run_status WHERE {where} ORDER BY key",
                        args).fetchall()
    return [StatusRecord(r[0], r[1], r[2], float(r[3]), r[4]) for r in rows]


# -- removing what belongs to deleted runs ------------------------------------------------------
def delete_for_runs(conn: Any, d: Dialect, run_ids: list[str]) -> None:
    """Delete the messages, waits and status of these runs (which are being deleted)."""
    for start in range(0, len(run_ids), CHUNK):
        chunk = run_ids[start:start + CHUNK]
        for table in ("messages", "waits", "run_status"):
            conn.execute(f"DELETE FROM {table} WHERE run_id IN ({d.marks(len(chunk))})", chunk)


"""The storage contract of waits, messages and published status (store/waits.py), on every
backend: SQLite, PostgreSQL, and remote mode through a real server. Runs are made with the
store's own verbs (enqueued, claimed by a worker), times are the ones the tests pass."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stead.errors import InvalidInput, LeaseLost, RunConflict, RunNotFound, WaitError
from stead.store.base import (
    Fence,
    Limit,
    MessageRecord,
    RunRecord,
    StatusRecord,
    StepRecord,
    Store,
    WaitRecord,
    WorkerRecord,
)
from stead.store.waits import INPUT_TOPIC, check_input

LEASE = 30.0
DAY = 86_400.0
T0 = 1_800_000_000.0  # the tests' "now": 2027-01-15 08:00:00 UTC
APPROVAL = {"type": "object", "title": "Approval",
            "properties": {"approved": {"type": "boolean"}, "approver": {"type": "string"},
                           "note": {"type": "string", "default": ""}},
            "required": ["approved", "approver"]}
WORKER = WorkerRecord(id="w1", name="alpha", host="host-a", pid=4242, queues='["q"]',
                      concurrency=4, state="running", started_at=T0, heartbeat_at=T0)


def leased(store: Store, run_id: str | None = None) -> RunRecord:
    """A run enqueued on a queue of its own and claimed by a worker: Running, leased."""
    run_id = run_id or f"run-{uuid.uuid4().hex[:12]}"
    store.create_run(RunRecord(id=run_id, flow_name="refund", state="Pending",
                               created_at=T0, queue=f"q-{run_id}"), "enqueued")
    [claimed] = store.claim_runs([f"q-{run_id}"], WORKER, "host-a|1|1", 10, T0, LEASE)
    return claimed


def fence(run: RunRecord) -> Fence:
    return Fence(run.id, run.lease_epoch)


def receive_step(run_id: str, key: str, msg: MessageRecord | None = None) -> StepRecord:
    outcome = json.dumps({"message": msg.id if msg else None})
    return StepRecord(run_id, key, "receive", "receive", "Completed", 1, T0, T0 + 1,
                      result=outcome)


def history(store: Store, run_id: str) -> list[tuple[str, str | None]]:
    return [(c.state, c.message) for c in store.run_history(run_id)]


def park(store: Store, run: RunRecord, kind: str, *, topic: str | None = None,
         wake_at: float | None = None, detail: str = "{}", now: float = T0) -> str:
    wait = WaitRecord(run.id, kind, "3", topic=topic, wake_at=wake_at, detail=detail)
    return store.park_run(run, wait, now, fence(run))


def complete(store: Store, run_id: str) -> None:
    run = store.get_run(run_id)
    run.ended_at = T0 + 5
    store.transition_run(run, "Completed", T0 + 5)


# -- messages ----------------------------------------------------------------------------------


def test_messages_are_received_once_each_in_send_order_per_topic(store: Store) -> None:
    run = leased(store)
    sent = [store.send_message(run.id, topic, json.dumps({"n": i}), None, T0 + i,
                               sender="cli")[0]
            for i, topic in enumerate(["payment", "other", "payment", "payment"])]
    assert [m.id for m in sent] == sorted(m.id for m in sent)
    assert sent[0].state == "pending" and sent[0].sender == "cli"
    assert store.next_message(run.id, "payment") == sent[0]
    took = store.consume_message(sent[0].id, receive_step(run.id, "4", sent[0]), fence(run))
    assert (took.state, took.step_key, took.consumed_at) == ("consumed", "4", T0 + 1)
    assert store.get_step(run.id, "4").result == json.dumps({"message": sent[0].id})
    assert store.next_message(run.id, "payment") == sent[2]
    store.consume_message(sent[2].id, receive_step(run.id, "5", sent[2]), fence(run))
    assert store.next_message(run.id, "payment") == sent[3]
    assert store.next_message(run.id, "other") == sent[1]
    assert store.next_message(run.id, "nothing") is None
    assert [m.id for m in store.list_messages(run.id)] == [m.id for m in sent]
    assert [m.state for m in store.list_messages(run.id, "payment")] == [
        "consumed", "consumed", "pending"]
    assert len(store.list_messages(run.id, limit=2)) == 2
    assert store.get_message(sent[1].id) == sent[1]
    with pytest.raises(WaitError, match="no message"):
        store.get_message(sent[-1].id + 1000)


def test_100_sends_with_20_duplicate_keys_store_exactly_80_in_order(store: Store) -> None:
    run = leased(store)
    keys = [f"tx-{i}" for i in range(80)]
    order = keys[:]
    for i in range(20):  # each duplicate sent again, later, with another payload
        order.insert(4 * i + 10, keys[3 * i])
    created = {}
    for n, key in enumerate(order):
        msg, new = store.send_message(run.id, "payment", json.dumps({"n": n}), key, T0 + n)
        if new:
            created[key] = msg
        else:  # returned as stored by the first send
            assert msg == created[key]
    assert len(order) == 100 and len(created) == 80
    stored = store.list_messages(run.id, "payment", limit=1000)
    assert [m.idempotency_key for m in stored] == keys
    assert [json.loads(m.payload)["n"] for m in stored] == [order.index(k) for k in keys]
    # The same key on another run is another message.
    other = leased(store)
    assert store.send_message(other.id, "payment", "{}", "tx-0", T0)[1] is True


def test_a_consumed_message_cannot_be_consumed_again_and_nothing_is_written(
        store: Store) -> None:
    run = leased(store)
    msg, _ = store.send_message(run.id, "payment", '{"ref": "tx-81"}', None, T0)
    store.consume_message(msg.id, receive_step(run.id, "2", msg), fence(run))
    with pytest.raises(RunConflict, match="consumed by step 2"):
        store.consume_message(msg.id, receive_step(run.id, "3", msg), fence(run))
    with pytest.raises(RunNotFound):
        store.get_step(run.id, "3")
    assert store.get_message(msg.id).step_key == "2"
    # The same receive again (a retried call) stands as it is.
    assert store.consume_message(msg.id, receive_step(run.id, "2", msg), fence(run)).step_key \
        == "2"
    other = leased(store)
    with pytest.raises(WaitError, match="not to run"):
        store.consume_message(msg.id, receive_step(other.id, "1", msg), fence(other))


def test_a_lost_fence_writes_nothing(store: Store) -> None:
    run = leased(store)
    stale = Fence(run.id, run.lease_epoch - 1)
    msg, _ = store.send_message(run.id, "payment", "{}", None, T0)
    with pytest.raises(LeaseLost):
        store.consume_message(msg.id, receive_step(run.id, "2", msg), stale)
    assert store.get_message(msg.id).state == "pending"
    with pytest.raises(RunNotFound):
        store.get_step(run.id, "2")
    with pytest.raises(LeaseLost):
        store.record_wait(WaitRecord(run.id, "timer", "2", wake_at=T0 + 60), stale)
    with pytest.raises(LeaseLost):
        store.park_run(run, WaitRecord(run.id, "timer", "2", wake_at=T0 + 60), T0, stale)
    with pytest.raises(LeaseLost):
        store.set_status(StatusRecord(run.id, "stage", '"x"', T0), None, stale)
    with pytest.raises(LeaseLost):
        store.reject_message(msg.id, "no", T0, stale)
    assert store.get_wait(run.id) is None and store.get_status(run.id) == []
    stored = store.get_run(run.id)
    assert (stored.state, stored.lease_epoch) == ("Running", run.lease_epoch)
    assert store.get_message(msg.id).state == "pending"


# -- parking -----------------------------------------------------------------------------------


def test_a_parked_run_has_no_lease_no_slots_and_says_what_it_waits_for(store: Store) -> None:
    store.set_limit(Limit("db", concurrency=1))
    run = leased(store)
    epoch = run.lease_epoch
    assert store.take_slots(["db"], f"{run.id}/2", T0, LEASE).granted
    assert not store.take_slots(["db"], "someone-else/1", T0, LEASE).granted
    wake = T0 + 3 * DAY  # 2027-01-18 08:00:00 UTC
    assert park(store, run, "timer", wake_at=wake) == "Paused"
    stored = store.get_run(run.id)
    for r in (stored, run):  # the caller's copy says what the store wrote
        assert (r.state, r.lease_expires_at, r.worker_id, r.lease_epoch) == (
            "Paused", None, None, epoch + 1)
    assert history(store, run.id)[-1] == ("Paused",
                                          "parked: sleeping until 2027-01-18 08:00:00 UTC")
    assert store.take_slots(["db"], "someone-else/1", T0, LEASE).granted  # its slot is free
    wait = store.get_wait(run.id)
    assert wait is not None
    assert (wait.kind, wait.step_key, wait.wake_at, wait.parked, wait.since) == (
        "timer", "3", wake, True, T0)
    # Its former executor can write nothing more.
    with pytest.raises(LeaseLost):
        store.record_step(receive_step(run.id, "4"), fence=Fence(run.id, epoch))
    assert store.list_waits([run.id, "nobody"]) == {run.id: wait}
    # A parked run is no one's to claim until it is woken.
    assert store.claim_runs([run.queue or ""], WORKER, "o", 10, T0, LEASE) == []


def test_a_wait_already_satisfied_does_not_park(store: Store) -> None:
    due, waiting = leased(store), leased(store)
    assert park(store, due, "timer", wake_at=T0) == "Pending"
    assert history(store, due.id)[-1] == (
        "Pending", "not parked (sleeping until 2027-01-15 08:00:00 UTC): its wake time has come")
    store.send_message(waiting.id, "payment", "{}", None, T0)
    assert park(store, waiting, "message", topic="payment", wake_at=T0 + 60) == "Pending"
    assert "a message on 'payment' is waiting" in (history(store, waiting.id)[-1][1] or "")
    for run in (due, waiting):
        stored = store.get_run(run.id)
        assert (stored.state, stored.lease_expires_at) == ("Pending", None)
        wait = store.get_wait(run.id)
        assert wait is not None and wait.parked is False
    again = store.claim_runs([due.queue or "", waiting.queue or ""], WORKER, "o", 10,
                             T0 + 1, LEASE)
    assert {r.id for r in again} == {due.id, waiting.id}


def test_only_a_run_being_executed_can_be_parked(store: Store) -> None:
    run = leased(store)
    complete(store, run.id)
    with pytest.raises(RunConflict, match="Completed"):
        park(store, store.get_run(run.id), "timer", wake_at=T0 + 60)
    other = leased(store)
    with pytest.raises(WaitError, match="cannot wait for 'nap'"):
        park(store, other, "nap", wake_at=T0 + 60)
    with pytest.raises(WaitError, match="needs its wake time"):
        park(store, other, "timer")
    assert store.get_run(other.id).state == "Running" and store.get_wait(other.id) is None


def test_wake_due_runs_wakes_what_is_due_and_says_when_to_come_back(store: Store) -> None:
    assert store.wake_due_runs(T0) == (0, None)
    runs = [leased(store) for _ in range(4)]
    park(store, runs[0], "timer", wake_at=T0 + 100)
    park(store, runs[1], "retry", wake_at=T0 + 200)
    park(store, runs[2], "message", topic="payment", wake_at=T0 + 300)  # a timeout
    park(store, runs[3], "message", topic="payment")  # no timeout: only a message wakes it
    assert store.wake_due_runs(T0 + 50) == (0, T0 + 100)
    assert store.wake_due_runs(T0 + 150) == (1, T0 + 200)
    assert store.get_run(runs[0].id).state == "Pending"
    assert history(store, runs[0].id)[-1] == ("Pending", "woken: slept until its wake time")
    assert store.wake_due_runs(T0 + 150) == (0, T0 + 200)  # woken once
    assert store.wake_due_runs(T0 + 1000, limit=1) == (1, T0 + 300)
    assert history(store, runs[1].id)[-1] == ("Pending", "woken: its retry delay is over")
    assert store.wake_due_runs(T0 + 1000) == (1, None)
    assert history(store, runs[2].id)[-1] == (
        "Pending", "woken: timed out waiting for a message on 'payment'")
    assert [store.get_run(r.id).state for r in runs] == ["Pending"] * 3 + ["Paused"]
    assert store.wake_due_runs(T0 + 10 * DAY) == (0, None)


def test_a_message_on_its_topic_wakes_a_parked_run(store: Store) -> None:
    run = leased(store)
    park(store, run, "message", topic="payment", wake_at=T0 + DAY)
    store.send_message(run.id, "other", "{}", None, T0 + 1)
    assert store.get_run(run.id).state == "Paused"
    msg, _ = store.send_message(run.id, "payment", '{"ref": "tx-81"}', "tx-81", T0 + 2)
    assert store.get_run(run.id).state == "Pending"
    assert history(store, run.id)[-1] == ("Pending", "woken: a message on 'payment' arrived")
    wait = store.get_wait(run.id)
    assert wait is not None and not wait.parked
    assert store.wake_due_runs(T0 + 2 * DAY) == (0, None)  # not woken a second time
    [again] = store.claim_runs([run.queue or ""], WORKER, "o", 10, T0 + 3, LEASE)
    assert again.id == run.id and store.next_message(run.id, "payment") == msg
    store.clear_wait(run.id, fence(again))
    assert store.get_wait(run.id) is None


def test_a_finished_child_wakes_its_parked_parent(store: Store) -> None:
    parent = leased(store)
    child = RunRecord(id=f"{parent.id}:4", flow_name="charge", state="Running",
                      created_at=T0, parent_id=parent.id, parent_step="4")
    store.create_run(child, "started", fence(parent))
    assert park(store, parent, "child", topic=child.id) == "Paused"
    assert history(store, parent.id)[-1] == ("Paused",
                                             f"parked: waiting for child run {child.id}")
    assert store.notify_finished(child.id, T0 + 1) == 0  # it has not finished
    assert store.get_run(parent.id).state == "Paused"
    complete(store, child.id)
    assert store.notify_finished(child.id, T0 + 6) == 1
    assert store.get_run(parent.id).state == "Pending"
    assert history(store, parent.id)[-1] == ("Pending",
                                             f"woken: child run {child.id} is Completed")
    assert store.notify_finished(child.id, T0 + 7) == 0
    assert store.notify_finished("no-such-run", T0 + 7) == 0
    # A parent that parks on a child that finished already is not parked.
    [parent] = store.claim_runs([parent.queue or ""], WORKER, "o", 10, T0 + 8, LEASE)
    assert park(store, parent, "child", topic=child.id) == "Pending"
    other = leased(store)
    with pytest.raises(RunNotFound):
        park(store, other, "child", topic="no-such-run")


# -- human input -------------------------------------------------------------------------------


def test_input_is_checked_against_the_form_and_refused_input_changes_nothing(
        store: Store) -> None:
    run = leased(store)
    detail = json.dumps({"schema": APPROVAL, "description": "refund 20 for A-7?"})
    assert park(store, run, "input", detail=detail, wake_at=T0 + 2 * DAY) == "Paused"
    assert history(store, run.id)[-1] == (
        "Paused", "parked: waiting for input until 2027-01-17 08:00:00 UTC")
    wait = store.get_wait(run.id)
    assert wait is not None and wait.topic == INPUT_TOPIC
    for payload, field, reason in [
            ('{"approved": "yes", "approver": "ana"}', "approved",
             "'yes' is not of type 'boolean'"),
            ('{"approved": true}', "approver", "'approver' is a required property"),
            ('[1]', "", "[1] is not of type 'object'")]:
        with pytest.raises(InvalidInput) as caught:
            store.send_message(run.id, INPUT_TOPIC, payload, None, T0 + 1)
        assert (caught.value.run_id, caught.value.field, caught.value.reason) == (
            run.id, field, reason)
        assert f"input for run {run.id} does not fit the form" in str(caught.value)
    assert store.get_run(run.id).state == "Paused" and store.list_messages(run.id) == []
    msg, created = store.send_message(run.id, INPUT_TOPIC,
                                      '{"approved": true, "approver": "ana"}', "form-1", T0 + 2)
    assert created and store.get_run(run.id).state == "Pending"
    assert history(store, run.id)[-1] == ("Pending", "woken: input arrived")
    # Sent again (a retried request): the stored input, though the run waits no more.
    assert store.send_message(run.id, INPUT_TOPIC, '{"approved": false}', "form-1",
                              T0 + 3) == (msg, False)
    # Input for a run that does not wait for it.
    busy = leased(store)
    with pytest.raises(WaitError, match=f"run {busy.id} does not wait for input"):
        store.send_message(busy.id, INPUT_TOPIC, '{"approved": true}', None, T0)


def test_check_input_names_nested_fields_and_refuses_what_is_not_a_form() -> None:
    schema = json.dumps({"type": "object", "properties": {"items": {"type": "array", "items": {
        "type": "object", "properties": {"qty": {"type": "integer", "minimum": 1}}}}}})
    with pytest.raises(InvalidInput) as caught:
        check_input(schema, '{"items": [{"qty": 2}, {"qty": 0}]}', "r1")
    assert (caught.value.field, caught.value.reason) == (
        "items[1].qty", "0 is less than the minimum of 1")
    check_input(schema, '{"items": [{"qty": 2}]}', "r1")
    with pytest.raises(InvalidInput, match="not JSON text"):
        check_input(schema, "{nope", "r1")
    with pytest.raises(WaitError, match="not a valid JSON Schema"):
        check_input('{"type": 7}', "{}", "r1")
    with pytest.raises(WaitError, match="cannot be checked"):  # never fetched
        check_input('{"$ref": "https://example.com/schema.json"}', "{}", "r1")


# -- bad input ---------------------------------------------------------------------------------


def test_a_message_that_cannot_be_sent_is_one_clear_error_and_stores_nothing(
        store: Store) -> None:
    run = leased(store)
    with pytest.raises(RunNotFound, match="no-such-run"):
        store.send_message("no-such-run", "payment", "{}", None, T0)
    for topic, payload, match in [
            ("payment", "{nope", f"message to run {run.id} on 'payment' is not JSON"),
            ("payment", "NaN", "not JSON"),
            ("", "{}", f"a message to run {run.id} needs a topic"),
            ("t" * 300, "{}", "at most 255 characters")]:
        with pytest.raises(WaitError, match=match):
            store.send_message(run.id, topic, payload, None, T0)
    with pytest.raises(WaitError, match="idempotency key"):
        store.send_message(run.id, "payment", "{}", "", T0)
    assert store.list_messages(run.id) == []
    complete(store, run.id)
    with pytest.raises(WaitError, match=f"run {run.id} is Completed: it receives no more "
                                        "messages"):
        store.send_message(run.id, "payment", "{}", None, T0)
    assert store.list_messages(run.id) == []
    crashed = leased(store)  # resumable: it receives what is sent meanwhile
    crashed.ended_at = T0
    store.transition_run(crashed, "Crashed", T0)
    assert store.send_message(crashed.id, "payment", "{}", None, T0)[1] is True


def test_rejected_and_answered_requests(store: Store) -> None:
    run = leased(store)
    refused, _ = store.send_message(run.id, "resize", '{"n": -1}', None, T0,
                                    expects_reply=True)
    asked, _ = store.send_message(run.id, "resize", '{"n": 3}', None, T0 + 1,
                                  expects_reply=True)
    assert asked.expects_reply is True
    store.reject_message(refused.id, "n must be positive", T0 + 2, fence(run))
    store.reject_message(refused.id, "again", T0 + 3, fence(run))  # once is enough
    got = store.get_message(refused.id)
    assert (got.state, got.reply_error, got.replied_at) == ("rejected", "n must be positive",
                                                            T0 + 2)
    assert store.next_message(run.id, "resize") == asked  # a rejected one is never received
    with pytest.raises(WaitError, match="a reply answers a request the flow received"):
        store.reply_message(asked.id, '"ok"', None, T0 + 3, fence(run))
    store.consume_message(asked.id, receive_step(run.id, "6", asked), fence(run))
    with pytest.raises(RunConflict):
        store.reject_message(asked.id, "too late", T0 + 4, fence(run))
    store.reply_message(asked.id, '{"size": 3}', None, T0 + 5, fence(run))
    store.reply_message(asked.id, '{"size": 4}', None, T0 + 6, fence(run))  # the first stands
    got = store.get_message(asked.id)
    assert (got.reply, got.reply_error, got.replied_at) == ('{"size": 3}', None, T0 + 5)


# -- status ------------------------------------------------------------------------------------


def test_published_status_replaces_per_key_and_is_read_in_key_order(store: Store) -> None:
    run = leased(store)
    step = StepRecord(run.id, "2", "set_status", "status", "Completed", 1, T0, T0,
                      result='"checked"')
    store.set_status(StatusRecord(run.id, "stage", '"checked"', T0, "2"), step, fence(run))
    store.set_status(StatusRecord(run.id, "progress", "0.5", T0 + 1), None, fence(run))
    store.set_status(StatusRecord(run.id, "stage", '"approved"', T0 + 2, "5"), None, fence(run))
    assert store.get_status(run.id) == [StatusRecord(run.id, "progress", "0.5", T0 + 1, None),
                                        StatusRecord(run.id, "stage", '"approved"', T0 + 2, "5")]
    assert store.get_status(run.id, "stage")[0].value == '"approved"'
    assert store.get_status(run.id, "missing") == []
    assert store.get_step(run.id, "2").result == '"checked"'
    with pytest.raises(RunNotFound):
        store.get_status("no-such-run")
    with pytest.raises(WaitError, match="not JSON"):
        store.set_status(StatusRecord(run.id, "stage", "approved", T0), None, fence(run))
    with pytest.raises(WaitError, match="status key"):
        store.set_status(StatusRecord(run.id, "", '"x"', T0), None, fence(run))


def test_a_wait_in_place_is_recorded_replaced_and_cleared(store: Store) -> None:
    run = leased(store)
    store.record_wait(WaitRecord(run.id, "message", "3", topic="payment", wake_at=T0 + 5,
                                 since=T0, parked=True), fence(run))
    wait = store.get_wait(run.id)
    assert wait == WaitRecord(run.id, "message", "3", "payment", T0 + 5, "{}", T0, False)
    store.record_wait(WaitRecord(run.id, "timer", "4", wake_at=T0 + 9, since=T0 + 1),
                      fence(run))
    assert store.get_wait(run.id).kind == "timer"  # type: ignore[union-attr]
    assert store.wake_due_runs(T0 + 100) == (0, None)  # a process holds it: not parked
    assert store.get_run(run.id).state == "Running"
    store.clear_wait(run.id, fence(run))
    assert store.get_wait(run.id) is None and store.list_waits([run.id]) == {}
    with pytest.raises(RunNotFound):
        store.record_wait(WaitRecord("no-such-run", "timer", "1", wake_at=T0))


# -- cancelling --------------------------------------------------------------------------------


def test_cancelling_a_parked_run_is_immediate(store: Store) -> None:
    parked = leased(store)
    park(store, parked, "message", topic="payment")
    child = RunRecord(id=f"{parked.id}:2", flow_name="sub", state="Paused", created_at=T0,
                      parent_id=parked.id)
    store.create_run(child, "made")
    assert store.cancel_run(parked.id, T0 + 1, "no longer needed") == "Cancelled"
    assert store.get_run(parked.id).state == "Cancelled"
    assert store.get_run(parked.id).ended_at == T0 + 1
    assert store.get_wait(parked.id) is None
    assert store.get_run(child.id).state == "Cancelling"  # not parked: its process stops it
    with pytest.raises(WaitError, match="is Cancelled"):
        store.send_message(parked.id, "payment", "{}", None, T0 + 2)
    running = leased(store)  # waiting in its process: its worker stops it, as before
    store.record_wait(WaitRecord(running.id, "timer", "1", wake_at=T0 + 60), fence(running))
    assert store.cancel_run(running.id, T0, "stop") == "Cancelling"
    assert store.finish_cancel(running.id, T0 + 1, "stopped") is True
    assert store.get_wait(running.id) is None


# -- retention and notifications -----------------------------------------------------------------


def test_pruning_a_run_deletes_its_messages_waits_and_status(store: Store,
                                                              backend: str) -> None:
    if backend == "http":
        pytest.skip("pruning is done where the database is (store/wire.py LOCAL_ONLY)")
    run = leased(store)
    store.send_message(run.id, "payment", "{}", "k1", T0)
    store.set_status(StatusRecord(run.id, "stage", '"x"', T0), None, fence(run))
    store.record_wait(WaitRecord(run.id, "timer", "1", wake_at=T0 + 60), fence(run))
    kept = leased(store)
    store.send_message(kept.id, "payment", "{}", "k1", T0)
    complete(store, run.id)
    assert store.prune_runs(T0 + 10, ("Completed",), 100).runs == 1
    assert store.list_messages(run.id) == [] and store.get_wait(run.id) is None
    assert len(store.list_messages(kept.id)) == 1
    # A new run of the same id starts with nothing.
    again = leased(store, run.id)
    assert store.send_message(again.id, "payment", "{}", "k1", T0)[1] is True
    assert store.get_status(again.id) == []


def test_waking_a_parked_run_notifies_workers_on_postgres(store: Store, backend: str) -> None:
    if backend != "postgres":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's (migration 0015)")
    import psycopg

    runs = [leased(store) for _ in range(3)]
    park(store, runs[0], "message", topic="payment")
    park(store, runs[1], "timer", wake_at=T0 + 60)
    park(store, runs[2], "child", topic=runs[0].id)
    with psycopg.connect(os.environ["STEAD_DATABASE_URL"], autocommit=True) as conn:
        conn.execute("LISTEN stead_runs")
        conn.execute("LISTEN stead_waits")

        def heard() -> list[tuple[str, str]]:
            return [(n.channel, n.payload) for n in conn.notifies(timeout=2.0, stop_after=2)]

        store.send_message(runs[0].id, "payment", "{}", None, T0)
        assert sorted(heard()) == [("stead_runs", runs[0].queue),
                                   ("stead_waits", f"message:{runs[0].id}")]
        store.wake_due_runs(T0 + 60)
        assert heard() == [("stead_runs", runs[1].queue)]
        complete(store, runs[0].id)
        store.notify_finished(runs[0].id, T0 + 61)
        assert heard() == [("stead_runs", runs[2].queue)]


# -- concurrent parks, sends and wakes ------------------------------------------------------------


def _together(*calls: Callable[[], object]) -> None:
    """Run the calls in threads released at once; re-raise the first error."""
    start, errors = threading.Barrier(len(calls)), []

    def run(call: Callable[[], object]) -> None:
        try:
            start.wait()
            call()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if errors:
        raise errors[0]


def test_a_message_sent_while_its_run_parks_always_wakes_it(store: Store) -> None:
    for _ in range(15):
        run = leased(store)
        _together(lambda: park(store, run, "message", topic="payment"),  # noqa: B023
                  lambda: store.send_message(run.id, "payment", "{}", None, T0))  # noqa: B023
        assert store.get_run(run.id).state == "Pending", history(store, run.id)


def test_concurrent_wakers_wake_each_due_run_once(store: Store) -> None:
    runs = [leased(store) for _ in range(30)]
    for i, run in enumerate(runs):
        park(store, run, "timer", wake_at=T0 + 1 + i)
    woken: list[int] = []

    def waker() -> None:
        while True:
            count, _ = store.wake_due_runs(T0 + 100, limit=4)
            woken.append(count)
            if not count and store.wake_due_runs(T0 + 100, limit=0)[1] is None:
                return

    _together(waker, waker, waker)
    assert sum(woken) == 30
    for run in runs:
        assert [s for s, m in history(store, run.id) if m and m.startswith("woken")] == [
            "Pending"]


# -- exactly once, in order, whatever the interleaving --------------------------------------------

ACTIONS = st.lists(st.one_of(
    st.tuples(st.just("send"), st.sampled_from(["a", "b"]),
              st.one_of(st.none(), st.integers(0, 15).map(lambda k: f"k{k}"))),
    st.tuples(st.just("receive"), st.sampled_from(["a", "b"]), st.none())), max_size=40)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(actions=ACTIONS)
def test_interleaved_sends_and_receives_deliver_each_message_once_in_order(
        store: Store, actions: list[tuple[str, str, str | None]]) -> None:
    run = leased(store)
    sent: dict[str, list[int]] = {"a": [], "b": []}  # per topic, ids of messages stored
    by_key: dict[str, int] = {}
    received: dict[str, list[int]] = {"a": [], "b": []}
    step = 0
    for n, (action, topic, key) in enumerate(actions):
        if action == "send":
            msg, created = store.send_message(run.id, topic, json.dumps(n), key, T0 + n)
            assert created == (key is None or key not in by_key)
            if created:
                sent[topic].append(msg.id)
                if key is not None:
                    by_key[key] = msg.id
            else:
                assert msg.id == by_key[key]  # type: ignore[index]
            continue
        msg = store.next_message(run.id, topic)
        if msg is None:
            assert received[topic] == sent[topic]
            continue
        step += 1
        store.consume_message(msg.id, receive_step(run.id, str(step), msg), fence(run))
        received[topic].append(msg.id)
    for topic in ("a", "b"):
        assert received[topic] == sent[topic][:len(received[topic])]  # in order, once each
        rest = [m.id for m in store.list_messages(run.id, topic, 1000) if m.state == "pending"]
        assert received[topic] + rest == sent[topic]

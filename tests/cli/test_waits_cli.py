"""`stead runs send/input/status/messages`, and the waits `runs ls` and `runs show` display,
on every backend (SQLite, PostgreSQL, remote mode through a real server), with runs made to
wait by store verbs (tests/waiting_runs.py)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from stead.cli.main import app
from stead.store.base import Store
from stead.store.waits import INPUT_TOPIC
from tests.waiting_runs import finished, parked, publish, waiting_in_place

Invoke = Callable[..., Any]


def test_send_stores_a_message_and_wakes_a_parked_run(backend: str, invoke: Invoke,
                                                      store: Store) -> None:
    parked(store, "refund-1", "message", topic="payment")
    sent = invoke("runs", "send", "refund-1", "payment", '{"ref": "tx-81"}', "--key", "tx-81")
    assert sent.exit_code == 0, sent.output
    assert "sent to run refund-1 on topic 'payment' (new)" in sent.output
    assert "woke the run (Paused -> Pending)" in sent.output
    assert store.get_run("refund-1").state == "Pending"
    again = invoke("runs", "send", "refund-1", "payment", '{"ref": "tx-81"}', "--key", "tx-81")
    assert again.exit_code == 0, again.output
    assert "duplicate" in again.output and "nothing changed" in again.output
    [message] = store.list_messages("refund-1")  # type: ignore[attr-defined]
    assert json.loads(message.payload) == {"ref": "tx-81"} and message.idempotency_key == "tx-81"


def test_send_to_a_run_not_waiting_for_the_topic_keeps_it_for_its_receive(
        backend: str, invoke: Invoke, store: Store) -> None:
    waiting_in_place(store, "refund-2", "timer", wake_at=time.time() + 3600)
    sent = invoke("runs", "send", "refund", "payment", "[1, 2]")  # a unique prefix
    assert sent.exit_code == 0, sent.output
    assert "stead.receive('payment')" in sent.output
    assert store.get_run("refund-2").state == "Running"
    waiting_in_place(store, "other-3", "message", topic="payment")
    sent = invoke("runs", "send", "other-3", "payment", "7")
    assert "the run waits for it" in sent.output


def test_payload_from_a_file_and_from_stdin(backend: str, store: Store, tmp_path: Path) -> None:
    waiting_in_place(store, "r-file", "message", topic="doc")
    (tmp_path / "body.json").write_text('{"pages": 3}\n')
    runner = CliRunner()
    done = runner.invoke(app, ["runs", "send", "r-file", "doc", f"@{tmp_path / 'body.json'}"])
    assert done.exit_code == 0, done.output
    done = runner.invoke(app, ["runs", "send", "r-file", "doc", "-"], input='"from stdin"')
    assert done.exit_code == 0, done.output
    payloads = [json.loads(m.payload) for m in store.list_messages("r-file")]  # type: ignore[attr-defined]
    assert payloads == [{"pages": 3}, "from stdin"]


def test_bad_payloads_unknown_and_finished_runs_are_one_clear_error(
        backend: str, invoke: Invoke, store: Store, tmp_path: Path) -> None:
    waiting_in_place(store, "r-bad", "message", topic="payment")
    finished(store, "r-done")
    for payload, shown in [("{ref: 1}", "line 1 column 2"), ("NaN", "no NaN"),
                           (f"@{tmp_path / 'missing.json'}", "cannot read")]:
        bad = invoke("runs", "send", "r-bad", "payment", payload)
        assert bad.exit_code == 2, bad.output
        assert "PAYLOAD" in bad.output and shown in bad.output, bad.output
        assert "Traceback" not in bad.output
    assert store.list_messages("r-bad") == []  # type: ignore[attr-defined]
    unknown = invoke("runs", "send", "no-such-run", "payment", "1")
    assert unknown.exit_code == 2 and "no-such-run" in unknown.output
    done = invoke("runs", "send", "r-done", "payment", "1")
    assert done.exit_code == 2 and "r-done" in done.output, done.output
    assert store.list_messages("r-done") == []  # type: ignore[attr-defined]


def test_input_is_checked_against_the_schema_and_resumes_the_run(
        backend: str, invoke: Invoke, store: Store) -> None:
    parked(store, "approve-1", "input")
    bad = invoke("runs", "input", "approve-1", '{"approved": "maybe", "approver": "ana"}')
    assert bad.exit_code == 1, bad.output
    assert "field approved" in bad.output
    # The form of the question: its description and its fields.
    assert "refund 20 for A-1?" in bad.output
    assert "approved: boolean (required)" in bad.output and 'note: string = ""' in bad.output
    assert "keeps waiting" in bad.output
    assert store.get_run("approve-1").state == "Paused"
    missing = invoke("runs", "input", "approve-1", '{"approved": true}')
    assert missing.exit_code == 1 and "approver" in missing.output
    good = invoke("runs", "input", "approve-1", '{"approved": true, "approver": "ana"}')
    assert good.exit_code == 0, good.output
    assert "input accepted for run approve-1" in good.output and "resumes" in good.output
    assert store.get_run("approve-1").state == "Pending"
    [message] = store.list_messages("approve-1", INPUT_TOPIC)  # type: ignore[attr-defined]
    assert json.loads(message.payload) == {"approved": True, "approver": "ana"}


def test_input_for_a_run_not_waiting_for_input(backend: str, invoke: Invoke,
                                               store: Store) -> None:
    parked(store, "sleepy", "timer", wake_at=time.time() + 86400)
    refused = invoke("runs", "input", "sleepy", '{"approved": true}')
    assert refused.exit_code == 2, refused.output
    assert "not waiting for input" in refused.output and "sleep until" in refused.output
    assert store.list_messages("sleepy") == []  # type: ignore[attr-defined]
    bad = invoke("runs", "input", "sleepy", "{")
    assert bad.exit_code == 2 and "JSON is not JSON" in bad.output


def test_status_all_one_json_and_waiting(backend: str, invoke: Invoke, store: Store) -> None:
    waiting_in_place(store, "pub", "timer", wake_at=time.time() + 60)
    publish(store, "pub", "stage", "approved")
    publish(store, "pub", "progress", {"done": 3, "of": 10})
    listed = invoke("runs", "status", "pub")
    assert listed.exit_code == 0, listed.output
    assert "stage" in listed.output and "approved" in listed.output
    assert '{"done": 3, "of": 10}' in listed.output
    one = invoke("runs", "status", "pub", "stage")
    assert one.exit_code == 0 and one.output == "approved\n"
    assert invoke("runs", "status", "pub", "stage", "--json").output == '"approved"\n'
    as_json = json.loads(invoke("runs", "status", "pub", "--json").output)
    assert {r["key"]: r["value"] for r in as_json} == {"progress": {"done": 3, "of": 10},
                                                        "stage": "approved"}
    missing = invoke("runs", "status", "pub", "eta")
    assert missing.exit_code == 1 and "no status 'eta'" in missing.output
    assert "progress, stage" in missing.output
    late = invoke("runs", "status", "pub", "eta", "--wait", "0.3")
    assert late.exit_code == 1 and "did not set status 'eta' within 0.3 s" in late.output
    setter = threading.Timer(0.3, publish, (store, "pub", "eta", "10:00"))
    setter.start()
    try:
        waited = invoke("runs", "status", "pub", "eta", "--wait", "20")
    finally:
        setter.join()
    assert waited.exit_code == 0 and waited.output == "10:00\n", waited.output
    needs_key = invoke("runs", "status", "pub", "--wait", "1")
    assert needs_key.exit_code == 2 and "needs a KEY" in needs_key.output


def test_status_wait_stops_when_the_run_has_ended(backend: str, invoke: Invoke,
                                                  store: Store) -> None:
    finished(store, "over")
    started = time.monotonic()
    done = invoke("runs", "status", "over", "stage", "--wait", "30")
    assert done.exit_code == 1 and "has no status 'stage'" in done.output
    assert time.monotonic() - started < 10


def test_messages_in_order_with_their_state(backend: str, invoke: Invoke,
                                            store: Store) -> None:
    waiting_in_place(store, "inbox", "message", topic="a")
    for topic, payload in [("a", "1"), ("b", '{"x": 2}'), ("a", "3")]:
        assert invoke("runs", "send", "inbox", topic, payload).exit_code == 0
    listed = invoke("runs", "messages", "inbox")
    assert listed.exit_code == 0, listed.output
    lines = [line for line in listed.output.splitlines() if "pending" in line]
    assert len(lines) == 3 and '{"x": 2}' in lines[1]
    only_a = json.loads(invoke("runs", "messages", "inbox", "--topic", "a", "--json").output)
    assert [(m["topic"], m["payload"], m["state"]) for m in only_a] == [
        ("a", 1, "pending"), ("a", 3, "pending")]
    assert only_a[0]["id"] < only_a[1]["id"]
    empty = invoke("runs", "messages", "inbox", "--topic", "nothing")
    assert empty.exit_code == 0 and "No messages on topic 'nothing'" in empty.output


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_ls_and_show_say_what_each_run_waits_for(backend: str, invoke: Invoke,
                                                 store: Store) -> None:
    soon = time.time() + 3 * 86400
    parked(store, "t-sleep", "timer", wake_at=soon)
    parked(store, "t-pay", "message", topic="payment", wake_at=time.time() + 3600)
    parked(store, "t-ask", "input")
    waiting_in_place(store, "t-kid", "child", topic="t-kid:3")
    waiting_in_place(store, "t-retry", "retry", wake_at=time.time() + 5)
    finished(store, "t-done")
    listed = invoke("runs", "ls")
    assert listed.exit_code == 0, listed.output
    assert "Wait" in listed.output
    expect = {"t-sleep": f"sleep until {time.strftime('%m-%d %H:%M', time.localtime(soon))}",
              "t-pay": "message 'payment' (until", "t-ask": "input: refund 20 for A-1?",
              "t-kid": "child t-kid:3", "t-retry": "retry at "}
    rows = {line.split()[0]: line for line in listed.output.splitlines() if line.strip()}
    for run_id, text in expect.items():
        assert text in rows[run_id], (run_id, rows[run_id])
    paused = invoke("runs", "ls", "--state", "Paused")
    assert {"t-sleep", "t-pay", "t-ask"} <= set(paused.output.split())
    assert "t-kid" not in paused.output
    shown = invoke("runs", "show", "t-ask")
    assert shown.exit_code == 0, shown.output
    assert "Waiting for" in shown.output and "input: refund 20 for A-1?" in shown.output
    assert "approved: boolean (required)" in shown.output
    assert "stead runs input t-ask JSON" in shown.output and "parked" in shown.output
    pay = invoke("runs", "show", "t-pay")
    assert "message 'payment'" in pay.output and "stead runs send t-pay payment" in pay.output
    assert "Waiting for" not in invoke("runs", "show", "t-done").output


APPROVAL_FLOW = '''
import sys
from pydantic import BaseModel
import stead

class Approval(BaseModel):
    approved: bool
    approver: str

@stead.flow
def refund(order_id: str) -> str:
    stead.set_status("stage", "asking")
    answer = stead.wait_for_input(Approval, timeout=60, description=f"refund {order_id}?")
    stead.set_status("stage", "approved" if answer.approved else "rejected")
    return answer.approver

print("result:", refund.with_options(run_id=sys.argv[1])("A-1"), flush=True)
'''


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_a_flow_waiting_for_input_is_answered_from_the_command_line(
        backend: str, invoke: Invoke, store: Store, stead_home: Path, tmp_path: Path) -> None:
    """With the engine: a flow in another process waits in wait_for_input; `runs ls` and
    `runs show` say so, bad input is refused, good input resumes it."""
    import subprocess
    import sys

    from tests.conftest import script_env

    script = tmp_path / "approval_flow.py"
    script.write_text(APPROVAL_FLOW)
    process = subprocess.Popen([sys.executable, str(script), "appr-1"], text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=script_env(stead_home, STEAD_CONSOLE="0"))
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                wait = store.get_wait("appr-1")  # type: ignore[attr-defined]
            except Exception:  # the database or the run is not there yet
                wait = None
            if wait is not None and wait.kind == "input":
                break
            assert time.monotonic() < deadline and process.poll() is None, "no input wait"
            time.sleep(0.05)
        assert "input: refund A-1?" in invoke("runs", "ls").output
        shown = invoke("runs", "show", "appr-1").output
        assert "approver: string (required)" in shown and "process waits in place" in shown
        assert invoke("runs", "status", "appr-1", "stage").output == "asking\n"
        bad = invoke("runs", "input", "appr-1", '{"approved": 1, "approver": "ana"}')
        assert bad.exit_code == 1 and "field approved" in bad.output, bad.output
        good = invoke("runs", "input", "appr-1", '{"approved": true, "approver": "ana"}')
        assert good.exit_code == 0, good.output
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0 and "result: ana" in out, out
    assert invoke("runs", "status", "appr-1", "stage", "--wait", "5").output == "approved\n"
    messages = json.loads(invoke("runs", "messages", "appr-1", "--json").output)
    assert [(m["topic"], m["state"]) for m in messages] == [(INPUT_TOPIC, "consumed")]
    assert "input: refund A-1?" not in invoke("runs", "ls").output  # it waits no more

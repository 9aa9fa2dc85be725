"""/api/v1/runs/{id}/messages, /input and /status against a real `stead server start`
(SQLite and PostgreSQL), runs with their `wait`, permissions per role, and the Python client."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stead.client import ApiError, Client
from stead.server.apikeys import new_api_key
from stead.store.base import Store
from stead.store.waits import INPUT_TOPIC
from tests.server.conftest import Server
from tests.waiting_runs import finished, parked, publish, waiting_in_place

# API keys are made where the database is, not through a server: SQLite and PostgreSQL only.
pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


def runs_path(run_id: str, rest: str = "") -> str:
    return f"/api/v1/runs/{run_id}{rest}"


def error_of(answer: object, status: int) -> dict[str, str]:
    assert answer.status_code == status, answer.text  # type: ignore[attr-defined]
    return answer.json()["error"]  # type: ignore[attr-defined,no-any-return]


def test_send_a_message_duplicate_wake_and_read_it(server: Server, db: Store) -> None:
    parked(db, "pay-1", "message", topic="payment")
    with server.client() as http:
        sent = http.post(runs_path("pay-1", "/messages"), json={
            "topic": "payment", "payload": {"ref": "tx-81"}, "idempotency_key": "tx-81"})
        assert sent.status_code == 201, sent.text
        message = sent.json()
        assert message["payload"] == {"ref": "tx-81"} and message["state"] == "pending"
        assert message["sender"] == "api" and message["run_id"] == "pay-1"
        assert db.get_run("pay-1").state == "Pending"  # the message woke it
        again = http.post(runs_path("pay-1", "/messages"), json={
            "topic": "payment", "payload": {"ref": "other"}, "idempotency_key": "tx-81"})
        assert again.status_code == 200 and again.json()["id"] == message["id"]
        assert again.json()["payload"] == {"ref": "tx-81"}  # the first one stands
        http.post(runs_path("pay-1", "/messages"), json={"topic": "note", "payload": None})
        listed = http.get(runs_path("pay-1", "/messages")).json()["items"]
        assert [(m["topic"], m["payload"]) for m in listed] == [
            ("payment", {"ref": "tx-81"}), ("note", None)]
        only = http.get(runs_path("pay-1", "/messages"), params={"topic": "note"}).json()
        assert [m["topic"] for m in only["items"]] == ["note"]
        got = http.get(runs_path("pay-1", f"/messages/{message['id']}"))
        assert got.status_code == 200 and got.json() == message
        assert error_of(http.get(runs_path("pay-1", "/messages/999999")), 404)["type"] == \
            "MessageNotFound"


def test_bad_sends_unknown_finished_and_invalid_bodies(server: Server, db: Store) -> None:
    finished(db, "done-1")
    waiting_in_place(db, "live-1", "message", topic="payment")
    other = waiting_in_place(db, "live-2", "message", topic="payment")
    with server.client() as http:
        unknown = error_of(http.post(runs_path("nope", "/messages"),
                                     json={"topic": "t", "payload": 1}), 404)
        assert unknown["type"] == "RunNotFound" and "nope" in unknown["message"]
        ended = error_of(http.post(runs_path("done-1", "/messages"),
                                   json={"topic": "t", "payload": 1}), 409)
        assert "done-1" in ended["message"]
        assert db.list_messages("done-1") == []  # type: ignore[attr-defined]
        for body, field in [({"payload": 1}, "'topic'"), ({"topic": "", "payload": 1}, "'topic'"),
                            ({"topic": "t", "payload": 1, "idempotency_key": ""},
                             "'idempotency_key'"),
                            ({"topic": "t", "payload": 1, "extra": 2}, "'extra'"),
                            ({"topic": "t", "payload": "a\u0000b"}, "'payload'"),
                            ({"topic": "x" * 256, "payload": 1}, "'topic'")]:
            error = error_of(http.post(runs_path("live-1", "/messages"), json=body), 422)
            assert error["type"] == "ValidationError" and field in error["message"], body
        not_json = http.post(runs_path("live-1", "/messages"), content=b"{topic",
                             headers={"Content-Type": "application/json"})
        assert not_json.status_code == 422
        assert db.list_messages("live-1") == []  # type: ignore[attr-defined]
        # A message id of another run is not found under this one.
        sent = http.post(runs_path(other.id, "/messages"), json={"topic": "t", "payload": 1})
        assert error_of(http.get(runs_path("live-1", f"/messages/{sent.json()['id']}")),
                        404)["type"] == "MessageNotFound"


def test_input_is_checked_and_refused_with_the_field(server: Server, db: Store) -> None:
    parked(db, "ask-1", "input")
    parked(db, "sleep-1", "timer", wake_at=time.time() + 3600)
    with server.client() as http:
        shown = http.get(runs_path("ask-1")).json()["wait"]
        assert shown["kind"] == "input" and shown["description"] == "refund 20 for A-1?"
        assert shown["parked"] is True and "approved" in shown["schema"]["properties"]
        bad = error_of(http.post(runs_path("ask-1", "/input"),
                                 json={"value": {"approved": "maybe", "approver": "ana"}}), 422)
        assert bad["type"] == "InvalidInput" and bad["field"] == "approved" and bad["reason"]
        assert db.get_run("ask-1").state == "Paused"
        assert db.list_messages("ask-1") == []  # type: ignore[attr-defined]
        refused = error_of(http.post(runs_path("sleep-1", "/input"),
                                     json={"value": {"approved": True}}), 409)
        assert "not waiting for input" in refused["message"]
        assert error_of(http.post(runs_path("nope", "/input"), json={"value": {}}), 404)
        good = http.post(runs_path("ask-1", "/input"),
                         json={"value": {"approved": True, "approver": "ana"}})
        assert good.status_code == 201, good.text
        assert good.json()["topic"] == INPUT_TOPIC
        assert db.get_run("ask-1").state == "Pending"


def test_status_values_and_runs_with_their_wait(server: Server, db: Store) -> None:
    waiting_in_place(db, "pub-1", "message", topic="payment", wake_at=time.time() + 60)
    parked(db, "nap-1", "timer", wake_at=time.time() + 600)
    finished(db, "done-2")
    publish(db, "pub-1", "stage", "checked")
    publish(db, "pub-1", "progress", 0.5)
    with server.client() as http:
        items = http.get(runs_path("pub-1", "/status")).json()["items"]
        assert {(i["key"], i["value"]) for i in items} == {("stage", "checked"),
                                                           ("progress", 0.5)}
        one = http.get(runs_path("pub-1", "/status/stage"))
        assert one.status_code == 200 and one.json()["value"] == "checked"
        assert error_of(http.get(runs_path("pub-1", "/status/eta")), 404)["type"] == \
            "StatusNotSet"
        assert error_of(http.get(runs_path("nope", "/status")), 404)["type"] == "RunNotFound"
        assert http.get(runs_path("done-2", "/status")).json()["items"] == []
        page = {r["id"]: r for r in http.get("/api/v1/runs").json()["items"]}
        assert page["pub-1"]["wait"]["kind"] == "message"
        assert page["pub-1"]["wait"]["topic"] == "payment"
        assert page["pub-1"]["wait"]["parked"] is False
        assert page["nap-1"]["wait"]["kind"] == "timer" and page["nap-1"]["wait"]["parked"]
        assert page["nap-1"]["state"] == "Paused"
        assert page["done-2"]["wait"] is None
        assert http.get(runs_path("done-2")).json()["wait"] is None


@pytest.fixture
def keys(db: Store) -> dict[str, str]:
    made = {}
    for name, role, spaces in [("operator", "operator", ("team-a",)),
                               ("reader", "reader", ("team-a",)),
                               ("worker", "worker", ("team-a",)),
                               ("webhook", "webhook", ("team-a",)),
                               ("operator-b", "operator", ("team-b",))]:
        key, record = new_api_key(name, time.time(), role=role, namespaces=spaces)
        db.create_api_key(record)
        made[name] = key
    return made


def test_permissions_per_role(serve: Callable[..., Server], db: Store,
                              keys: dict[str, str]) -> None:
    server = serve("--require-auth")
    waiting_in_place(db, "a-1", "message", topic="payment", namespace="team-a")
    parked(db, "a-ask", "input", namespace="team-a")
    publish(db, "a-1", "stage", "x")
    message = {"topic": "payment", "payload": {"n": 1}}
    answer = {"value": {"approved": True, "approver": "ana"}}
    expect = {
        "operator": {("POST", "/messages"): 201, ("GET", "/messages"): 200,
                     ("GET", "/status"): 200, ("GET", "/status/stage"): 200},
        "reader": {("POST", "/messages"): 403, ("GET", "/messages"): 200,
                   ("GET", "/status"): 200, ("GET", "/status/stage"): 200},
        # A worker's flows send messages and read any run's published status; messages
        # it reads only of the runs it executes.
        "worker": {("POST", "/messages"): 201, ("GET", "/messages"): 403,
                   ("GET", "/status"): 200},
        "webhook": {("POST", "/messages"): 201, ("GET", "/messages"): 403,
                    ("GET", "/status"): 403},
        "operator-b": {("POST", "/messages"): 404, ("GET", "/messages"): 404,
                       ("GET", "/status"): 404},
    }
    for who, routes in expect.items():
        with server.client(keys[who]) as http:
            for (method, rest), status in routes.items():
                got = http.request(method, runs_path("a-1", rest),
                                   **({"json": message} if method == "POST" else {}))
                assert got.status_code == status, (who, method, rest, got.text)
                if status == 404:
                    assert "team-" not in got.text
            if who == "operator":
                continue
            # Input is a person's answer: operators only (not webhooks, readers, workers).
            refused = http.post(runs_path("a-ask", "/input"), json=answer)
            assert refused.status_code == (404 if who == "operator-b" else 403), (who,
                                                                                  refused.text)
    senders = {m.sender for m in db.list_messages("a-1")}  # type: ignore[attr-defined]
    ids = {k.name: k.id for k in db.list_api_keys()}
    assert senders == {f"operator:{ids['operator']}", f"webhook:{ids['webhook']}",
                       f"worker:{ids['worker']}"}
    assert db.get_run("a-ask").state == "Paused"
    with server.client(keys["operator"]) as http:
        assert http.post(runs_path("a-ask", "/input"), json=answer).status_code == 201
    assert db.get_run("a-ask").state == "Pending"


def test_the_python_client(server: Server, db: Store) -> None:
    parked(db, "c-ask", "input")
    waiting_in_place(db, "c-1", "message", topic="payment")
    publish(db, "c-1", "stage", "checked")
    with Client(server.url) as api:
        sent = api.send_message("c-1", "payment", {"ref": "tx-1"}, idempotency_key="tx-1")
        assert api.send_message("c-1", "payment", {"ref": "tx-1"}, "tx-1")["id"] == sent["id"]
        assert [m["id"] for m in api.list_messages("c-1")] == [sent["id"]]
        assert api.list_messages("c-1", topic="other") == []
        assert api.get_message("c-1", sent["id"])["payload"] == {"ref": "tx-1"}
        assert api.get_status("c-1", "stage") == "checked"
        assert api.get_status("c-1") == {"stage": "checked"}
        with pytest.raises(ApiError) as missing:
            api.get_status("c-1", "no/such key")
        assert missing.value.status == 404 and missing.value.type == "StatusNotSet"
        with pytest.raises(ApiError) as invalid:
            api.send_input("c-ask", {"approved": "maybe", "approver": "ana"})
        assert invalid.value.status == 422 and invalid.value.type == "InvalidInput"
        assert "approved" in str(invalid.value)
        answered = api.send_input("c-ask", {"approved": False, "approver": "bo"})
        assert json.loads(db.get_message(answered["id"]).payload)["approver"] == "bo"  # type: ignore[attr-defined]
        with pytest.raises(ApiError) as ended:
            finished(db, "c-done")
            api.send_message("c-done", "payment", 1)
        assert ended.value.status == 409


DESK_FLOW = '''
import sys
from pydantic import BaseModel
import stead

class Approval(BaseModel):
    approved: bool
    approver: str

def positive(n: int) -> bool:
    if n <= 0:
        raise ValueError("only positive numbers")
    return True

@stead.flow
def desk() -> str:
    stead.set_status("stage", "counting")
    msg = stead.receive("add", validate=positive, timeout=60)
    msg.reply(msg.payload * 10)
    stead.set_status("stage", "asking")
    answer = stead.wait_for_input(Approval, timeout=60, description="ship it?")
    return answer.approver

print("result:", desk.with_options(run_id=sys.argv[1])(), flush=True)
'''


def test_a_live_flow_through_the_api(server: Server, db: Store, stead_home: Path,
                                     tmp_path: Path) -> None:
    """With the engine: a flow in another process takes a request and replies (a rejected
    one first), publishes its status, and is answered with input, all over REST."""
    import subprocess
    import sys

    from stead.settings import get_settings
    from tests.conftest import script_env

    script = tmp_path / "desk_flow.py"
    script.write_text(DESK_FLOW)
    process = subprocess.Popen([sys.executable, str(script), "desk-1"], text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               env=script_env(stead_home, STEAD_CONSOLE="0",
                                              STEAD_DATABASE_URL=get_settings().database_url))
    try:
        with server.client() as http:
            def until(check: Callable[[], object]) -> object:
                deadline = time.monotonic() + 60
                while not (found := check()):
                    assert time.monotonic() < deadline and process.poll() is None, \
                        process.stdout.read() if process.stdout else ""
                    time.sleep(0.05)
                return found

            until(lambda: http.get(runs_path("desk-1", "/status/stage")).status_code == 200)
            ask = {"topic": "add", "payload": -1, "expects_reply": True}
            refused = http.post(runs_path("desk-1", "/messages"), json=ask).json()
            rejected = until(lambda: (m := http.get(runs_path(
                "desk-1", f"/messages/{refused['id']}")).json())["state"] == "rejected" and m)
            assert "only positive numbers" in rejected["reply_error"]  # type: ignore[index]
            sent = http.post(runs_path("desk-1", "/messages"),
                             json={**ask, "payload": 4}).json()
            replied = until(lambda: (m := http.get(runs_path(
                "desk-1", f"/messages/{sent['id']}")).json())["replied_at"] and m)
            assert replied["reply"] == 40 and replied["state"] == "consumed"  # type: ignore[index]
            until(lambda: (http.get(runs_path("desk-1")).json()["wait"] or {}).get("kind")
                  == "input")
            run = http.get(runs_path("desk-1")).json()
            assert run["wait"]["description"] == "ship it?" and not run["wait"]["parked"]
            assert http.get(runs_path("desk-1", "/status/stage")).json()["value"] == "asking"
            bad = http.post(runs_path("desk-1", "/input"), json={"value": {"approved": True}})
            assert bad.status_code == 422 and bad.json()["error"]["field"] == "approver"
            good = http.post(runs_path("desk-1", "/input"),
                             json={"value": {"approved": True, "approver": "ana"}})
            assert good.status_code == 201, good.text
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0 and "result: ana" in out, out

"""Roles and namespaces, against a real server on loopback (SQLite and PostgreSQL): the role
by store-verb matrix, the REST routes by role and namespace, and the attacks that worked
before keys had roles (a worker key enqueueing a file, rewriting runs, changing limits)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stead.errors import AccessDenied, DeploymentNotFound, FlowNotLoadable, RunNotFound
from stead.server.apikeys import new_api_key
from stead.server.policy import VERB_PERMISSION
from stead.store import wire
from stead.store.base import (
    DeploymentRecord,
    Fence,
    Limit,
    RunFilter,
    RunRecord,
    StatusRecord,
    Store,
    WaitRecord,
    WorkerRecord,
)
from stead.store.http import HttpStore
from stead.store.waits import INPUT_TOPIC
from stead.worker.entrypoints import check_entrypoint
from tests.server.conftest import Server

# What each role may call, written out by hand (not derived from server/policy.py), so a
# change of the policy has to change this table too.
READER = {"get_run", "list_runs", "resolve_run_id", "run_history", "load_steps", "get_step",
          "count_steps", "read_logs", "read_cache", "list_queues", "list_workers",
          "list_limits", "get_deployment", "list_deployments", "list_schedules",
          "list_secrets", "get_variable", "list_variables",
          # runs' messages, waits and published status
          "get_message", "list_messages", "get_wait", "list_waits", "get_status"}
WORKER = {"claim_runs", "heartbeat", "register_worker", "record_step", "record_steps",
          "mark_steps_running", "append_logs", "transition_run", "write_cache", "take_slots",
          "renew_slots", "release_slots", "finish_cancel", "recover_run", "expired_runs",
          "runs_to_cancel", "create_run", "reveal_secret",
          # reads of the runs it executes, and the deployment it checks an entrypoint against
          "get_run", "load_steps", "get_step", "read_cache", "get_deployment", "list_limits",
          "run_history", "list_runs",
          # the variables of its namespaces: configuration of the flows it executes
          "get_variable", "list_variables",
          # durable waits: messages, replies, waits, parking, wake-ups, published status
          "send_message", "next_message", "consume_message", "reject_message",
          "reply_message", "get_message", "list_messages", "record_wait", "clear_wait",
          "get_wait", "park_run", "wake_due_runs", "notify_finished", "set_status",
          "get_status"}
# A webhook key may send messages to runs (an inbound event for a flow's receive).
ALLOWED = {"admin": set(wire.VERBS), "operator": set(wire.VERBS), "worker": WORKER,
           "reader": READER, "webhook": {"send_message"}}


# API keys are made where the database is, not through a server: SQLite and PostgreSQL only.
pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)


@pytest.fixture
def keys(db: Store) -> dict[str, str]:
    """A key per role in namespace team-a (the worker's only for queue etl), and an operator
    and a worker of team-b."""
    made = {}
    for name, role, spaces, queues in [
            ("admin", "admin", ("*",), None), ("operator", "operator", ("team-a",), None),
            ("worker", "worker", ("team-a",), ("etl",)), ("reader", "reader", ("team-a",), None),
            ("webhook", "webhook", ("team-a",), None),
            ("operator-b", "operator", ("team-b",), None),
            ("worker-b", "worker", ("team-b",), ("etl",))]:
        key, record = new_api_key(name, time.time(), role=role, namespaces=spaces,
                                  queues=queues)
        db.create_api_key(record)
        made[name] = key
    return made


@pytest.fixture
def runs(db: Store, tmp_path: Path) -> dict[str, str]:
    """A Pending run on queue etl in each namespace, and a Completed one in team-a."""
    now = time.time()
    ids = {}
    for name, ns, state in [("a", "team-a", "Pending"), ("b", "team-b", "Pending"),
                            ("done", "team-a", "Completed")]:
        run = RunRecord(id=f"run-{name}", flow_name="twenty", state=state,
                        entrypoint="queued_flows:twenty", params=json.dumps(
                            {"out": str(tmp_path / "out.txt")}),
                        created_at=now, queue="etl", namespace=ns)
        db.create_run(run, "made by the test")
        ids[name] = run.id
    return ids


@pytest.fixture
def remote(serve: Callable[..., Server], keys: dict[str, str]
           ) -> Iterator[Callable[[str], HttpStore]]:
    server = serve("--require-auth")
    made: list[HttpStore] = []

    def store(who: str) -> HttpStore:
        made.append(HttpStore(server.url, api_key=keys[who], timeout=30))
        return made[-1]

    store.server = server  # type: ignore[attr-defined]
    yield store
    for s in made:
        s.close()


def test_every_store_verb_has_a_decided_permission(backend: str) -> None:
    assert set(VERB_PERMISSION) == set(wire.VERBS)


def test_each_role_reaches_exactly_its_store_verbs(serve: Callable[..., Server],
                                                   keys: dict[str, str]) -> None:
    server = serve("--require-auth")
    for role, allowed in ALLOWED.items():
        with server.client(keys[role]) as http:
            for verb in sorted(wire.VERBS):
                # No arguments: an allowed verb answers 400 (they are missing; 200 for a verb
                # whose arguments all have defaults), a refused one 403 before its arguments
                # are even read.
                answer = http.post(f"/api/v1/store/{verb}", content=b'{"args": []}',
                                   headers={"Content-Type": "application/json"})
                if verb in allowed:
                    assert answer.status_code in (200, 400), (role, verb, answer.text)
                else:
                    assert answer.status_code == 403, (role, verb, answer.text)
                    assert answer.json()["error"]["type"] == "AccessDenied"


def test_rest_routes_by_role_and_namespace(serve: Callable[..., Server], db: Store,
                                           keys: dict[str, str], runs: dict[str, str]) -> None:
    server = serve("--require-auth")
    db.save_deployment(DeploymentRecord(
        name="dep-a", version=0, flow_name="twenty", entrypoint="queued_flows:twenty",
        script_path=None, params="{}", param_schema='{"type": "object"}', queue="etl",
        namespace="team-a"))
    expect: dict[str, dict[tuple[str, str], int]] = {
        "reader": {("GET", "/api/v1/runs/run-a"): 200, ("GET", "/api/v1/runs/run-b"): 404,
                   ("GET", "/api/v1/runs/run-a/steps"): 200,
                   ("GET", "/api/v1/runs/run-a/history"): 200,
                   ("POST", "/api/v1/runs/run-a/cancel"): 403,
                   ("POST", "/api/v1/deployments/dep-a/runs"): 403,
                   ("GET", "/api/v1/deployments/dep-a"): 200},
        "operator": {("GET", "/api/v1/runs/run-b"): 404,
                     ("POST", "/api/v1/runs/run-b/cancel"): 404,
                     ("POST", "/api/v1/deployments/dep-a/runs"): 201,
                     ("POST", "/api/v1/runs/run-a/cancel"): 200},
        "operator-b": {("GET", "/api/v1/runs/run-a"): 404,
                       ("POST", "/api/v1/runs/run-a/cancel"): 404,
                       ("GET", "/api/v1/deployments/dep-a"): 404,
                       ("POST", "/api/v1/deployments/dep-a/runs"): 404,
                       ("GET", "/api/v1/runs/run-b"): 200},
        # (A worker lists only the enqueued runs of its queues and namespaces: see below.)
        "worker": {("GET", "/api/v1/runs"): 200, ("GET", "/api/v1/runs/run-a"): 403,
                   ("POST", "/api/v1/runs/run-a/cancel"): 403,
                   ("POST", "/api/v1/deployments/dep-a/runs"): 403},
        "webhook": {("GET", "/api/v1/runs"): 403, ("GET", "/api/v1/runs/run-a"): 403,
                    ("GET", "/api/v1/deployments"): 403, ("GET", "/api/v1/queues"): 403},
    }
    for who, routes in expect.items():
        with server.client(keys[who]) as http:
            for (method, path), status in routes.items():
                kwargs: dict[str, Any] = {"json": {}} if method == "POST" else {}
                answer = http.request(method, path, **kwargs)
                assert answer.status_code == status, (who, method, path, answer.text)
                if status == 404:  # another namespace's: not found, nothing leaks
                    assert "team-" not in answer.text
    # Listings hold only the key's namespaces.
    for who, visible in [("reader", {"run-a", "run-done"}), ("operator-b", {"run-b"}),
                         ("worker", {"run-a", "run-done"}),
                         ("admin", {"run-a", "run-b", "run-done"})]:
        with server.client(keys[who]) as http:
            listed = {r["id"] for r in http.get("/api/v1/runs").json()["items"]}
            # (The operator's deployment run above is team-a's too.)
            assert listed & {"run-a", "run-b", "run-done"} == visible, who
    with server.client(keys["operator-b"]) as http:
        assert http.get("/api/v1/deployments").json()["items"] == []


def test_a_worker_key_cannot_enqueue_code_rewrite_runs_or_change_limits(
        remote: Callable[[str], HttpStore], db: Store, runs: dict[str, str],
        tmp_path: Path) -> None:
    worker = remote("worker")
    evil = tmp_path / "evil.py"
    evil.write_text("open(__file__ + '.ran', 'w').close()\n")
    planted = RunRecord(id="evil", flow_name="evil", state="Pending", entrypoint="__main__:f",
                        script_path=str(evil), created_at=time.time(), queue="etl",
                        namespace="team-a")
    with pytest.raises(AccessDenied, match="operator key"):
        worker.create_run(planted, "planted")
    with pytest.raises(RunNotFound):
        db.get_run("evil")
    done = db.get_run(runs["done"])
    done.state = "Failed"
    with pytest.raises(AccessDenied, match="holds the lease"):
        worker.transition_run(done, "Failed", time.time(), "rewritten")
    with pytest.raises(AccessDenied, match="does not hold the lease"):  # a forged fence
        worker.transition_run(done, "Failed", time.time(), "rewritten",
                              fence=Fence(done.id, done.lease_epoch))
    assert db.get_run(runs["done"]).state == "Completed"
    with pytest.raises(AccessDenied):
        worker.set_limit(Limit("db", concurrency=0))
    with pytest.raises(AccessDenied):
        worker.cancel_run(runs["a"], time.time(), "no")
    me = WorkerRecord("w1", "w1", "host", 1, '["etl"]', 1, "running", time.time(), time.time())
    worker.register_worker(me)
    with pytest.raises(AccessDenied, match="queue 'other'"):
        worker.claim_runs(["other"], me, "owner", 5, time.time(), 30.0)
    # It claims from its queue only its namespace's runs, and then writes those.
    claimed = worker.claim_runs(["etl"], me, "owner", 5, time.time(), 30.0)
    assert [r.id for r in claimed] == [runs["a"]]
    assert db.get_run(runs["b"]).state == "Pending"
    mine = claimed[0]
    assert worker.get_run(mine.id).id == mine.id
    mine.state = "Completed"
    worker.transition_run(mine, "Completed", time.time(), "done",
                          fence=Fence(mine.id, mine.lease_epoch))
    # The run it held cannot be pointed at other code by its transition.
    assert db.get_run(mine.id).entrypoint == "queued_flows:twenty"
    # Another key's worker cannot take over this worker's row, nor renew its leases.
    other = remote("worker-b")
    other.register_worker(WorkerRecord("w1", "w1", "h", 2, '["etl"]', 1, "running",
                                       time.time(), time.time()))
    holder = {k.id: k.name for k in db.list_api_keys()}
    assert holder[db.lease_holder_key(mine.id, mine.lease_epoch)] == "worker"
    with pytest.raises(RunNotFound):  # another namespace's run: not found
        other.transition_run(mine, "Failed", time.time(), "x",
                             fence=Fence(mine.id, mine.lease_epoch))


def test_namespaces_hold_for_nested_ids(remote: Callable[[str], HttpStore], db: Store,
                                        runs: dict[str, str]) -> None:
    b = remote("operator-b")
    child = RunRecord(id="run-a:1", flow_name="child", state="Running", parent_id=runs["a"],
                      created_at=time.time(), namespace="team-b")
    with pytest.raises(RunNotFound):  # the parent is another namespace's
        b.create_run(child, "nested")
    with pytest.raises(AccessDenied, match="namespace 'team-a'"):
        b.create_run(RunRecord(id="x", flow_name="f", state="Pending", queue="etl",
                               created_at=time.time(), namespace="team-a"))
    with pytest.raises(RunNotFound):
        b.count_steps([runs["b"], runs["a"]])
    with pytest.raises(RunNotFound):
        b.resolve_run_id("run-a")
    db.save_deployment(DeploymentRecord(
        name="shared", version=0, flow_name="f", entrypoint="m:f", script_path=None,
        params="{}", param_schema="{}", queue="q", namespace="team-a"))
    with pytest.raises(Exception, match="taken in another namespace"):
        b.save_deployment(DeploymentRecord(
            name="shared", version=0, flow_name="f", entrypoint="m:f", script_path=None,
            params="{}", param_schema="{}", queue="q", namespace="team-b"))
    assert [r.id for r in b.list_runs(RunFilter())] == [runs["b"]]
    with pytest.raises(DeploymentNotFound):  # its schedules are team-a's too
        b.set_schedules("shared", [])
    with pytest.raises(AccessDenied, match="needs a key of all namespaces"):
        b.set_queue("etl", 1)  # queues are shared by every namespace


def test_a_run_is_stamped_with_the_key_that_created_it(
        remote: Callable[[str], HttpStore], db: Store, keys: dict[str, str]) -> None:
    op = remote("operator")
    forged = RunRecord(id="made", flow_name="f", state="Pending", queue="etl",
                       created_at=time.time(), namespace="team-a", created_by=None)
    op.create_run(forged, "by an operator")
    [record] = [k for k in db.list_api_keys() if k.name == "operator"]
    assert db.get_run("made").created_by == f"operator:{record.id}"


def test_workers_import_only_deployed_or_operator_enqueued_code(db: Store) -> None:
    now = time.time()
    by_worker = RunRecord(id="w", flow_name="f", state="Pending", entrypoint="m:f",
                          created_at=now, queue="q", created_by="worker:abc")
    with pytest.raises(FlowNotLoadable, match="worker API key"):
        check_entrypoint(db, by_worker)
    check_entrypoint(db, RunRecord(id="o", flow_name="f", state="Pending", entrypoint="m:f",
                                   created_at=now, created_by="operator:abc"))
    check_entrypoint(db, RunRecord(id="l", flow_name="f", state="Pending", entrypoint="m:f",
                                   created_at=now))
    dep = db.save_deployment(DeploymentRecord(
        name="d", version=0, flow_name="f", entrypoint="m:f", script_path=None, params="{}",
        param_schema="{}", queue="q"))
    ok = RunRecord(id="d1", flow_name="f", state="Pending", entrypoint="m:f", created_at=now,
                   deployment="d", deployment_version=dep.version, created_by="worker:x")
    check_entrypoint(db, ok)
    ok.script_path = "/tmp/elsewhere.py"
    with pytest.raises(FlowNotLoadable, match="not at the entrypoint of deployment d"):
        check_entrypoint(db, ok)


def test_a_key_sent_to_a_keyless_loopback_server_is_checked(
        serve: Callable[..., Server], keys: dict[str, str], runs: dict[str, str]) -> None:
    server = serve()  # loopback: no key needed
    with server.client("stead_not-a-key-of-this-server") as http:
        assert http.get("/api/v1/runs").status_code == 401
    with server.client(keys["reader"]) as http:
        assert http.get("/api/v1/runs/run-a").status_code == 200
        assert http.post("/api/v1/runs/run-a/cancel", json={}).status_code == 403
    assert httpx.get(f"{server.url}/api/v1/runs/run-b").status_code == 200  # the local user


def test_waits_and_messages_by_role_and_lease(remote: Callable[[str], HttpStore], db: Store,
                                              runs: dict[str, str]) -> None:
    worker, reader, operator = remote("worker"), remote("reader"), remote("operator")
    ids = {k.name: k.id for k in db.list_api_keys()}
    me = WorkerRecord("w1", "w1", "host", 1, '["etl"]', 1, "running", time.time(), time.time())
    worker.register_worker(me)
    [mine] = worker.claim_runs(["etl"], me, "owner", 5, time.time(), 30.0)
    # A flow on the worker sends to runs of its namespaces; who sent it is the server's word.
    msg, _ = worker.send_message(mine.id, "payment", "{}", None, time.time(), sender="forged")
    assert msg.sender == f"worker:{ids['worker']}"
    with pytest.raises(RunNotFound):  # another namespace's run
        worker.send_message(runs["b"], "payment", "{}", None, time.time())
    with pytest.raises(AccessDenied, match="operator key"):  # a person's answer, not a flow's
        worker.send_message(mine.id, INPUT_TOPIC, "{}", None, time.time())
    assert worker.get_message(msg.id) == msg  # its own request's reply, later
    assert worker.get_status(runs["done"]) == []  # published: any run of its namespaces
    with pytest.raises(AccessDenied, match="does not hold the lease"):  # not its run
        worker.get_wait(runs["done"])
    done = db.get_run(runs["done"])
    with pytest.raises(AccessDenied, match="does not hold the lease"):  # a forged fence
        worker.park_run(done, WaitRecord(done.id, "timer", "1", wake_at=time.time() + 60),
                        time.time(), Fence(done.id, done.lease_epoch))
    with pytest.raises(AccessDenied, match="no fence"):
        worker.set_status(StatusRecord(mine.id, "stage", '"x"', time.time()))
    wait = WaitRecord(mine.id, "message", "2", topic="resize")
    assert worker.park_run(mine, wait, time.time(), Fence(mine.id, mine.lease_epoch)) == "Paused"
    assert db.get_run(mine.id).lease_expires_at is None
    # Readers read messages, waits and status; operators send, and are named as the sender.
    assert reader.get_wait(mine.id).parked is True  # type: ignore[union-attr]
    assert [m.id for m in reader.list_messages(mine.id)] == [msg.id]
    assert set(reader.list_waits([mine.id])) == {mine.id}
    with pytest.raises(AccessDenied):
        reader.send_message(mine.id, "resize", "{}", None, time.time())
    sent, _ = operator.send_message(mine.id, "resize", "{}", None, time.time(), sender="x")
    assert sent.sender == f"operator:{ids['operator']}"
    assert db.get_run(mine.id).state == "Pending"  # woken
    with pytest.raises(RunNotFound):
        remote("operator-b").get_status(mine.id)

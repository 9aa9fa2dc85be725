"""/api/v1/variables against a real `stead server start` (SQLite and PostgreSQL): roles and
namespaces, 404/409/422 answers, the audit log, and the store verbs of remote processes."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from stead.errors import AccessDenied, InvalidVariable, VariableExists
from stead.server.apikeys import new_api_key
from stead.store.audit import AuditFilter
from stead.store.base import Store
from stead.store.http import HttpStore
from tests.server.conftest import Server

# API keys are made where the database is, not through a server: SQLite and PostgreSQL only.
pytestmark = pytest.mark.parametrize("backend", ["sqlite", "postgres"], indirect=True)
PATH = "/api/v1/variables"
# Every change carries Content-Type: application/json (server/guard.py), a DELETE too.
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def keys(db: Store) -> dict[str, str]:
    made = {}
    for name, role, spaces in [("admin", "admin", ("*",)), ("operator", "operator", ("team-a",)),
                               ("reader", "reader", ("team-a",)),
                               ("worker", "worker", ("team-a",)),
                               ("webhook", "webhook", ("team-a",)),
                               ("operator-b", "operator", ("team-b",))]:
        key, record = new_api_key(name, time.time(), role=role, namespaces=spaces)
        db.create_api_key(record)
        made[name] = key
    return made


@pytest.fixture
def server(serve: Callable[..., Server]) -> Server:
    return serve("--require-auth")


def test_operators_write_readers_and_workers_read(server: Server, keys: dict[str, str],
                                                  db: Store) -> None:
    team_a = {"namespace": "team-a"}
    with server.client(keys["operator"]) as http:
        made = http.put(f"{PATH}/batch_size", params=team_a,
                        json={"value": {"size": 500}, "tags": ["etl"]})
        assert made.status_code == 201, made.text
        assert made.json()["value"] == {"size": 500} and made.json()["tags"] == ["etl"]
        again = http.put(f"{PATH}/batch_size", params=team_a, json={"value": 1000})
        assert again.status_code == 200 and again.json()["tags"] == ["etl"]
        assert again.json()["created_at"] == made.json()["created_at"]
    for who in ("reader", "worker", "operator", "admin"):
        with server.client(keys[who]) as http:
            got = http.get(f"{PATH}/batch_size", params=team_a)
            assert got.status_code == 200, (who, got.text)
            assert got.json()["value"] == 1000
            assert [v["name"] for v in http.get(PATH).json()["items"]] == ["batch_size"]
    for who, status in (("reader", 403), ("worker", 403), ("webhook", 403)):
        with server.client(keys[who]) as http:
            for answer in (http.put(f"{PATH}/batch_size", params=team_a, json={"value": 1}),
                           http.delete(f"{PATH}/batch_size", params=team_a, headers=JSON)):
                assert answer.status_code == status, (who, answer.text)
                assert answer.json()["error"]["type"] == "AccessDenied"
    with server.client(keys["webhook"]) as http:
        assert http.get(f"{PATH}/batch_size", params=team_a).status_code == 403
    assert db.get_variable("batch_size", "team-a").value == 1000  # type: ignore[attr-defined]
    with server.client(keys["operator"]) as http:
        assert http.delete(f"{PATH}/batch_size", params=team_a, headers=JSON).status_code == 204
        assert http.get(f"{PATH}/batch_size", params=team_a).status_code == 404


def test_a_key_reaches_only_its_namespaces(server: Server, keys: dict[str, str],
                                           db: Store) -> None:
    db.set_variable("mode", "team-a", '"a"', None, 1.0)  # type: ignore[attr-defined]
    db.set_variable("mode", "team-b", '"b"', None, 1.0)  # type: ignore[attr-defined]
    with server.client(keys["operator-b"]) as http:
        listed = http.get(PATH).json()["items"]
        assert [(v["namespace"], v["value"]) for v in listed] == [("team-b", "b")]
        for answer in (http.get(f"{PATH}/mode", params={"namespace": "team-a"}),
                       http.put(f"{PATH}/mode", params={"namespace": "team-a"},
                                json={"value": "hijacked"}),
                       http.get(PATH, params={"namespace": "team-a"})):
            assert answer.status_code == 403, answer.text
    with server.client(keys["admin"]) as http:
        every = http.get(PATH).json()["items"]
        assert [v["namespace"] for v in every] == ["team-a", "team-b"]
        assert http.get(PATH, params={"namespace": "team-a"}).json()["items"][0]["value"] == "a"
    assert db.get_variable("mode", "team-a").value == "a"  # type: ignore[attr-defined]


def test_not_found_conflict_and_invalid_answers(server: Server, keys: dict[str, str]) -> None:
    with server.client(keys["admin"]) as http:
        missing = http.get(f"{PATH}/nope")
        assert missing.status_code == 404
        assert missing.json()["error"]["type"] == "VariableNotFound"
        assert "no variable 'nope'" in missing.json()["error"]["message"]
        assert http.delete(f"{PATH}/nope", headers=JSON).status_code == 404
        assert http.put(f"{PATH}/once", json={"value": 1, "overwrite": False}
                        ).status_code == 201
        conflict = http.put(f"{PATH}/once", json={"value": 2, "overwrite": False})
        assert conflict.status_code == 409
        assert conflict.json()["error"]["type"] == "VariableExists"
        assert http.get(f"{PATH}/once").json()["value"] == 1
        for name in ("Upper", "has space", "x" * 256, "dot.ted"):
            bad = http.put(f"{PATH}/{name}", json={"value": 1})
            assert bad.status_code == 422, (name, bad.text)
            assert "lowercase letters" in bad.json()["error"]["message"]
            assert http.get(f"{PATH}/{name}").status_code == 422
        for body in ({"value": "x" * 70_000}, {"tags": ["a"]}, {"value": 1, "extra": True},
                     {"value": 1, "tags": [""]}, {"value": 1, "tags": "etl"}):
            answer = http.put(f"{PATH}/ok", json=body)
            assert answer.status_code == 422, (body, answer.text)
        assert http.get(f"{PATH}/ok").status_code == 404  # nothing was stored
        # JSON null is a value like any other.
        assert http.put(f"{PATH}/nothing", json={"value": None}).status_code == 201
        assert http.get(f"{PATH}/nothing").json()["value"] is None


def test_writes_are_in_the_audit_log(server: Server, keys: dict[str, str], db: Store) -> None:
    with server.client(keys["operator"]) as http:
        http.put(f"{PATH}/flag", params={"namespace": "team-a"}, json={"value": True})
        http.get(f"{PATH}/flag", params={"namespace": "team-a"})  # a read: not recorded
        http.delete(f"{PATH}/flag", params={"namespace": "team-a"}, headers=JSON)
    with server.client(keys["reader"]) as http:
        http.put(f"{PATH}/flag", params={"namespace": "team-a"}, json={"value": False})
    deadline = time.monotonic() + 30  # rows are written in batches
    while time.monotonic() < deadline:
        rows = db.list_audit(AuditFilter(action="/api/v1/variables"))  # type: ignore
        if len(rows) >= 3:
            break
        time.sleep(0.05)
    assert sorted((r.action, r.target, r.key_name, r.outcome) for r in rows) == [
        ("DELETE /api/v1/variables/flag", "flag", "operator", 204),
        ("PUT /api/v1/variables/flag", "flag", "operator", 201),
        ("PUT /api/v1/variables/flag", "flag", "reader", 403)]


def test_remote_processes_use_the_store_verbs_by_role(server: Server, keys: dict[str, str],
                                                      db: Store) -> None:
    """A flow on a worker reads variables through the server with its worker key, and may
    not change them; an operator key may."""
    operator = HttpStore(server.url, api_key=keys["operator"], timeout=30)
    worker = HttpStore(server.url, api_key=keys["worker"], timeout=30)
    try:
        made = operator.set_variable("retries", "team-a", "3", ["etl"], time.time())
        assert made.value == 3
        with pytest.raises(VariableExists):
            operator.set_variable("retries", "team-a", "4", None, time.time())
        with pytest.raises(InvalidVariable):
            operator.set_variable("retries", "team-a", "NaN", None, time.time(), True)
        assert worker.get_variable("retries", "team-a").value == 3
        assert [v.name for v in worker.list_variables(None)] == ["retries"]
        with pytest.raises(AccessDenied):
            worker.set_variable("retries", "team-a", "9", None, time.time(), True)
        with pytest.raises(AccessDenied):
            worker.delete_variable("retries", "team-a")
        with pytest.raises(AccessDenied):
            worker.get_variable("retries", "team-b")
        assert db.get_variable("retries", "team-a").value == 3  # type: ignore[attr-defined]
    finally:
        operator.close()
        worker.close()

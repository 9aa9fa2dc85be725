"""The audit log of the HTTP API: a real `stead server start` (SQLite and PostgreSQL) records
every state-changing and every refused request with who, where and how it ended; reads and
(by default) the execution traffic of workers are left out; rows written in batches survive
the server's shutdown; GET /api/v1/audit lists them, for admins only."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import deployed_flows  # tests/scripts, put on sys.path by tests/server/conftest.py
import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from stead.deployments.registry import deploy
from stead.server import audit
from stead.server.apikeys import new_api_key
from stead.server.policy import Principal
from stead.store import wire
from stead.store.audit import AuditFilter, AuditRecord
from stead.store.base import RunRecord, Store
from tests.server.conftest import Server, free_port, stop_server


@pytest.fixture(autouse=True)
def _audit_is_local(request: pytest.FixtureRequest) -> None:
    if "backend" in request.fixturenames and request.getfixturevalue("backend") == "http":
        pytest.skip("the audit log is kept where the database is, not through a server")

JSON = {"Content-Type": "application/json"}  # the server refuses other changes (415)

def call(verb: str, *args: Any) -> bytes:
    return wire.dumps({"args": list(args), "kwargs": {}})


def admin_key(db: Store, name: str = "ci") -> tuple[str, str]:
    key, record = new_api_key(name, time.time())
    db.create_api_key(record)
    return key, record.id


def rows(db: Store, **filters: Any) -> list[AuditRecord]:
    return db.list_audit(AuditFilter(limit=1000, **filters))  # type: ignore[attr-defined]


def wait_for_rows(db: Store, n: int, timeout: float = 10.0) -> list[AuditRecord]:
    deadline = time.monotonic() + timeout
    while len(found := rows(db)) < n and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


def test_every_state_changing_request_is_recorded_with_who_where_and_outcome(
        db: Store, serve: Callable[..., Server]) -> None:
    key, key_id = admin_key(db)
    deploy(db, deployed_flows.tidy, name="tidy", now=1.0, queue="etl")
    for run_id in ("r1", "r2"):
        db.create_run(RunRecord(id=run_id, flow_name="tidy", state="Pending",
                                created_at=time.time(), queue="etl"))
    server = serve("--require-auth")
    with server.client(key, headers=JSON) as http:
        assert http.post("/api/v1/deployments/tidy/runs", json={}).status_code == 201
        assert http.post("/api/v1/runs/r1/cancel", json={}).status_code == 200
        assert http.post("/api/v1/runs/nope/cancel", json={}).status_code == 404
        assert http.post("/api/v1/store/set_queue", content=call("set_queue", "etl", 2)
                         ).status_code == 200
        assert http.post("/api/v1/store/cancel_run", content=call(
            "cancel_run", "r2", time.time(), "by a test")).status_code == 200
        # reads: never recorded
        assert http.get("/api/v1/runs").status_code == 200
        assert http.get("/api/v1/deployments/tidy").status_code == 200
        assert http.post("/api/v1/store/get_run", content=call("get_run", "r1")
                         ).status_code == 200
        assert http.post("/api/v1/store/list_queues", content=call("list_queues")
                         ).status_code == 200
        # execution traffic: recorded only when it fails
        assert http.post("/api/v1/store/append_logs", content=call("append_logs", [])
                         ).status_code == 200
        assert http.post("/api/v1/store/heartbeat", content=call("heartbeat", 1)
                         ).status_code == 400
    # refused: a wrong key on a read, no key on a write
    assert httpx.get(f"{server.url}/api/v1/runs",
                     headers={"Authorization": "Bearer stead_wrong"}).status_code == 401
    assert httpx.post(f"{server.url}/api/v1/runs/r1/cancel", json={}).status_code == 401
    stop_server(server)  # what is still buffered is written at shutdown

    found = {(r.action, r.target, r.outcome): r for r in rows(db)}
    assert set(found) == {
        ("POST /api/v1/deployments/tidy/runs", "tidy", 201),
        ("POST /api/v1/runs/r1/cancel", "r1", 200), ("POST /api/v1/runs/nope/cancel", "nope", 404),
        ("store.set_queue", "etl", 200), ("store.cancel_run", "r2", 200),
        ("store.heartbeat", None, 400), ("GET /api/v1/runs", None, 401),
        ("POST /api/v1/runs/r1/cancel", "r1", 401)}
    assert len(rows(db)) == len(found)
    for r in rows(db):
        assert r.address == "127.0.0.1" and r.at <= time.time()
        if r.outcome == 401:
            assert (r.key_id, r.key_name, r.role) == (None, None, None)
            assert r.detail in ("Unauthorized (key refused)", "Unauthorized (no key sent)")
        else:
            assert (r.key_id, r.key_name, r.role) == (key_id, "ci", "admin"), r
    assert found[("POST /api/v1/runs/nope/cancel", "nope", 404)].detail == "RunNotFound"
    assert found[("store.heartbeat", None, 400)].detail == "BadRequest"
    assert key not in repr(rows(db))  # no secret is ever recorded


def test_the_local_user_of_a_keyless_server_and_execution_verbs_when_asked(
        db: Store, serve: Callable[..., Server], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEAD_AUDIT_EXECUTION", "1")
    server = serve()
    with server.client(headers=JSON) as http:
        assert http.post("/api/v1/store/append_logs", content=call("append_logs", [])
                         ).status_code == 200
        assert http.post("/api/v1/store/list_runs", content=b"").status_code in (200, 400)
    [row] = wait_for_rows(db, 1)
    assert (row.action, row.key_id, row.key_name, row.role, row.outcome) == (
        "store.append_logs", None, "local", "admin", 200)
    stop_server(server)
    assert len(rows(db)) == 1


@pytest.fixture
def serve_app() -> Iterator[Callable[[FastAPI], tuple[str, Callable[[], None]]]]:
    """Serve an app with a real uvicorn server on loopback, in a thread: its URL and stop."""
    stops: list[Callable[[], None]] = []

    def start(app: FastAPI) -> tuple[str, Callable[[], None]]:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                               log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.01)

        def stop() -> None:
            server.should_exit = True
            thread.join(10)

        stops.append(stop)
        return f"http://127.0.0.1:{port}", stop

    yield start
    for stop in stops:
        stop()


@pytest.fixture
def tiny_server(db: Store, serve_app: Callable[[FastAPI], tuple[str, Callable[[], None]]]
                ) -> Callable[..., tuple[str, Callable[[], None]]]:
    """A small app behind `AuditRecorder(every_s=...)`, served for real."""

    def start(every_s: float) -> tuple[str, Callable[[], None]]:
        app = FastAPI()

        @app.post("/things/{name}")
        def make(name: str) -> dict[str, str]:
            return {"made": name}

        app.add_middleware(audit.AuditRecorder, store=db, every_s=every_s)
        return serve_app(app)

    return start


def test_requests_do_not_wait_for_their_row_and_rows_survive_shutdown(
        db: Store, tiny_server: Callable[..., tuple[str, Callable[[], None]]]) -> None:
    url, stop = tiny_server(3600.0)  # no periodic flush during the test: only shutdown writes
    for n in range(20):
        assert httpx.post(f"{url}/things/t{n}").status_code == 200
    assert rows(db) == []  # answered before anything was written
    httpx.post(f"{url}/stop-nothing")  # a 404 is a failed write attempt: recorded too
    stop()
    assert sorted(r.target or "" for r in rows(db) if r.outcome == 200) == sorted(
        f"t{n}" for n in range(20))
    assert [r.outcome for r in rows(db) if r.outcome != 200] == [404]


def test_rows_are_written_in_batches_while_the_server_runs(
        db: Store, tiny_server: Callable[..., tuple[str, Callable[[], None]]]) -> None:
    url, _ = tiny_server(0.2)
    with httpx.Client() as http:
        for n in range(5):
            http.post(f"{url}/things/t{n}")
    assert len(wait_for_rows(db, 5, timeout=5)) == 5


def test_listing_the_audit_log_over_rest_filters_and_pages(
        db: Store, serve: Callable[..., Server]) -> None:
    now = time.time()
    db.record_audit([  # type: ignore[attr-defined]
        AuditRecord(at=now - 100 + n, key_id="k1" if n % 2 else "k2",
                    key_name="ci" if n % 2 else "ops", role="admin", address="10.0.0.1",
                    method="POST", action="store.cancel_run" if n < 3 else "store.set_queue",
                    target=f"t{n}", outcome=403 if n == 4 else 200)
        for n in range(6)])
    key, _ = admin_key(db, "auditor")
    server = serve("--require-auth")
    with server.client(key, headers=JSON) as http:
        first = http.get("/api/v1/audit", params={"limit": 4}).json()
        assert [e["target"] for e in first["items"]] == ["t5", "t4", "t3", "t2"]
        second = http.get("/api/v1/audit", params={"limit": 4,
                                                   "cursor": first["next_cursor"]}).json()
        assert [e["target"] for e in second["items"]] == ["t1", "t0"]
        assert second["next_cursor"] is None

        def targets(**params: Any) -> list[str]:
            answer = http.get("/api/v1/audit", params=params)
            assert answer.status_code == 200, answer.text
            return [e["target"] for e in answer.json()["items"]]

        assert targets(key="ci") == ["t5", "t3", "t1"]
        assert targets(key="k2") == ["t4", "t2", "t0"]
        assert targets(action="CANCEL") == ["t2", "t1", "t0"]
        assert targets(outcome="denied") == ["t4"]
        assert targets(outcome="failed") == ["t4"]
        assert targets(since=now - 98, until=now - 96) == ["t3", "t2"]
        assert targets(target="t1") == ["t1"]
        bad = http.get("/api/v1/audit", params={"cursor": "x"})
        assert bad.status_code == 422 and bad.json()["error"]["type"] == "InvalidCursor"
        assert http.get("/api/v1/audit", params={"outcome": "maybe"}).status_code == 422
    refused = httpx.get(f"{server.url}/api/v1/audit")
    assert refused.status_code == 401


def test_only_admins_read_the_audit_log(
        db: Store, serve_app: Callable[[FastAPI], tuple[str, Callable[[], None]]]) -> None:
    app = FastAPI()
    app.state.store = db
    role = {"now": "reader"}

    @app.middleware("http")
    async def as_key(request: Request, call_next: Any) -> Any:  # stands in for auth.py
        request.state.principal = Principal("k9", "someone", role["now"])
        return await call_next(request)

    from stead.server.errors import install_error_handlers

    install_error_handlers(app)
    app.include_router(audit.router, prefix="/api/v1")
    url, _ = serve_app(app)
    with httpx.Client(base_url=url) as http:
        for refused in ("reader", "operator", "worker", "webhook"):
            role["now"] = refused
            answer = http.get("/api/v1/audit")
            assert answer.status_code == 403, refused
            assert answer.json()["error"]["type"] == "Forbidden"
        role["now"] = "admin"
        assert http.get("/api/v1/audit").json() == {"items": [], "next_cursor": None}


def test_audit_verbs_are_not_remote_store_verbs() -> None:
    assert {"record_audit", "list_audit", "prune_audit"} <= wire.LOCAL_ONLY
    assert not {"record_audit", "list_audit", "prune_audit"} & wire.VERBS
    assert "set_queue" not in audit.EXECUTION_VERBS and "create_run" not in audit.EXECUTION_VERBS
    assert {"record_step", "record_steps", "append_logs", "heartbeat", "claim_runs",
            "take_slots", "renew_slots", "release_slots", "mark_steps_running"
            } <= audit.EXECUTION_VERBS


def test_rows_that_cannot_be_written_are_kept_and_written_later(store: Store) -> None:
    import sqlite3

    path = store.url.removeprefix("sqlite:///")
    writer = audit.AuditWriter(store, every_s=3600)
    with sqlite3.connect(path) as conn:  # the table is gone for a while
        conn.execute("ALTER TABLE audit_log RENAME TO audit_log_away")
    writer.add(AuditRecord(at=1.0, key_id="k", key_name="ci", role="admin", address="::1",
                           method="POST", action="store.set_queue", outcome=200),
               body=call("set_queue", "etl", 1))
    assert writer.flush() == 0
    with sqlite3.connect(path) as conn:
        conn.execute("ALTER TABLE audit_log_away RENAME TO audit_log")
    writer.close()
    [kept] = rows(store)
    assert (kept.action, kept.target, kept.address) == ("store.set_queue", "etl", "::1")

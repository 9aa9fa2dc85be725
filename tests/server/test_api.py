"""The HTTP API of a real `stead server start` process, on SQLite and PostgreSQL: every
endpoint, its filters, pages and errors, with the database filled through the store's verbs,
real flow runs and `deploy`."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import deployed_flows  # tests/scripts, put on sys.path by tests/server/conftest.py
import httpx

from stead import flow, get_logger, task
from stead.deployments.registry import deploy
from stead.deployments.schedules import Schedule
from stead.store.base import (
    DeploymentRecord,
    Limit,
    LogRecord,
    RunFilter,
    RunRecord,
    Store,
    WorkerRecord,
)
from tests.server import api_flows
from tests.server.conftest import Server

T0 = 1_800_000_000.0  # a fixed time for the runs the tests create


def error_of(response: httpx.Response, status: int) -> dict[str, str]:
    """The error of a response that must be `status` with the one error body."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}, body
    assert "Traceback" not in response.text
    return body["error"]  # type: ignore[no-any-return]


def make_run(store: Store, run_id: str, at: float, **fields: Any) -> RunRecord:
    run = RunRecord(id=run_id, flow_name=fields.pop("flow_name", "etl"),
                    state=fields.pop("state", "Completed"), created_at=at, **fields)
    store.create_run(run)
    return run


@task
def double(x: int) -> int:
    get_logger().info("doubling %d", x)
    return 2 * x


@flow
def add_doubles(n: int) -> int:
    get_logger().warning("adding %d doubles", n)
    return sum(double(i) for i in range(n))


# -- health ---------------------------------------------------------------------------------
def test_health_and_ready_answer(server: Server) -> None:
    with server.client() as http:
        assert http.get("/health").json() == {"status": "ok"}
        assert http.get("/ready").json() == {"status": "ready"}


# -- runs -----------------------------------------------------------------------------------
def test_a_recorded_run_its_steps_history_logs_and_result(server: Server, db: Store) -> None:
    assert add_doubles(3) == 6
    [run] = db.list_runs(RunFilter())
    with server.client() as http:
        got = http.get(f"/api/v1/runs/{run.id}").json()
        assert (got["id"], got["flow_name"], got["state"]) == (run.id, "add_doubles",
                                                                "Completed")
        assert got["params"] == {"n": 3} and got["error"] is None

        steps = http.get(f"/api/v1/runs/{run.id}/steps").json()["items"]
        assert [(s["key"], s["name"], s["state"]) for s in steps] == [
            ("1", "double", "Completed"), ("2", "double", "Completed"),
            ("3", "double", "Completed")]
        assert steps[2]["params"] == {"x": 2} and steps[2]["result_size"] == 1

        history = http.get(f"/api/v1/runs/{run.id}/history").json()["items"]
        assert [h["state"] for h in history][-2:] == ["Running", "Completed"]

        logs = http.get(f"/api/v1/runs/{run.id}/logs").json()
        assert [(g["step_key"], g["level_name"], g["message"]) for g in logs["items"]] == [
            (None, "WARNING", "adding 3 doubles"), ("1", "INFO", "doubling 0"),
            ("2", "INFO", "doubling 1"), ("3", "INFO", "doubling 2")]
        first = logs["items"][0]["id"]
        page = http.get(f"/api/v1/runs/{run.id}/logs", params={"after_id": first,
                                                                "limit": 2}).json()
        assert [g["message"] for g in page["items"]] == ["doubling 0", "doubling 1"]
        rest = http.get(f"/api/v1/runs/{run.id}/logs",
                        params={"after_id": page["next_after_id"]}).json()
        assert [g["message"] for g in rest["items"]] == ["doubling 2"]

        assert http.get(f"/api/v1/runs/{run.id}/result").json() == {
            "run_id": run.id, "state": "Completed", "storage": "inline", "size": 1,
            "ref": None}


def test_result_metadata_names_a_result_file_or_no_result(server: Server, db: Store) -> None:
    make_run(db, "big", T0, result_ref="ab/abcdef.json")
    make_run(db, "none", T0, state="Failed", error=json.dumps({"type": "ValueError"}))
    with server.client() as http:
        assert http.get("/api/v1/runs/big/result").json() == {
            "run_id": "big", "state": "Completed", "storage": "file", "size": None,
            "ref": "ab/abcdef.json"}
        assert http.get("/api/v1/runs/none/result").json()["storage"] == "none"
        assert http.get("/api/v1/runs/none").json()["error"] == {"type": "ValueError"}


def test_unknown_runs_are_404_on_every_run_endpoint(server: Server) -> None:
    with server.client() as http:
        for suffix in ("", "/steps", "/history", "/logs", "/logs?follow=true", "/result"):
            error = error_of(http.get(f"/api/v1/runs/nope{suffix}"), 404)
            assert error["type"] == "RunNotFound" and "nope" in error["message"]


def test_runs_are_filtered(server: Server, db: Store) -> None:
    make_run(db, "a", T0 + 1, flow_name="etl", state="Completed", queue="q1",
             tags='["nightly", "eu"]', deployment="daily")
    make_run(db, "b", T0 + 2, flow_name="etl", state="Failed", queue="q2", tags='["EU"]')
    make_run(db, "c", T0 + 3, flow_name="report", state="Pending", queue="q1",
             tags='["eu"]', deployment="daily")
    make_run(db, "d", T0 + 4, flow_name="report", state="Running")

    def ids(**params: Any) -> list[str]:
        response = http.get("/api/v1/runs", params=params)
        assert response.status_code == 200, response.text
        return [r["id"] for r in response.json()["items"]]

    with server.client() as http:
        assert ids() == ["d", "c", "b", "a"]  # newest first
        assert ids(state="Failed") == ["b"]
        assert ids(state=["Completed", "Pending"]) == ["c", "a"]
        assert ids(flow="report") == ["d", "c"]
        assert ids(deployment="daily") == ["c", "a"]
        assert ids(queue="q1") == ["c", "a"]
        assert ids(tag="eu") == ["c", "a"]  # tags match exactly: "EU" is another tag
        assert ids(tag="e") == []
        assert ids(created_after=T0 + 2) == ["d", "c", "b"]  # at or after
        assert ids(created_before=T0 + 2) == ["a"]  # strictly before
        assert ids(created_after=T0 + 2, created_before=T0 + 4, queue="q1") == ["c"]
        assert ids(limit=2) == ["d", "c"]
        for params in ({"limit": 0}, {"limit": 501}, {"created_after": "soon"},
                       {"created_before": "nan"}):
            error = error_of(http.get("/api/v1/runs", params=params), 422)
            assert error["type"] == "ValidationError"
            assert repr(next(iter(params))) in error["message"]  # names the parameter
        error = error_of(http.get("/api/v1/runs", params={"cursor": "not-a-cursor"}), 422)
        assert error["type"] == "InvalidCursor"


def test_pages_neither_repeat_nor_skip_runs_while_runs_are_created(server: Server,
                                                                  db: Store) -> None:
    # 60 runs, in groups of 3 created at the same instant: the cursor's id breaks the ties.
    for i in range(60):
        make_run(db, f"old-{i:03d}", T0 + i // 3, state="Failed" if i % 4 else "Completed")
    expected = [r.id for r in sorted(db.list_runs(RunFilter(
        limit=1000)), key=lambda r: (r.created_at, r.id), reverse=True)]
    assert len(expected) == 60
    created = 0
    with server.client() as http:
        seen: list[str] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": 7, **({"cursor": cursor} if cursor else {})}
            page = http.get("/api/v1/runs", params=params).json()
            seen += [r["id"] for r in page["items"] if not r["id"].startswith("new-")]
            # Runs created between pages (now, and at an instant equal to a run's already
            # listed) do not shift the pages still to come.
            make_run(db, f"new-{created}", time.time())
            make_run(db, f"new-{created}-tie", T0 + 19)
            created += 1
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == len(set(seen)) == 60
        # The ties created at T0 + 19 sort after "old-" ids, so only the first page, read
        # before any of them, could contain them, and it did not reach them: none appear.
        assert seen == expected

        failed: list[str] = []
        cursor = None
        while True:
            params = {"limit": 4, "state": "Failed", **({"cursor": cursor} if cursor else {})}
            page = http.get("/api/v1/runs", params=params).json()
            failed += [r["id"] for r in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert failed == [r for r in expected if int(r[4:]) % 4]


# -- logs, followed -------------------------------------------------------------------------
def read_events(response: httpx.Response) -> list[tuple[str, str | None, Any]]:
    """(event, id, data) of a server-sent event stream, until it closes."""
    events: list[tuple[str, str | None, Any]] = []
    fields: dict[str, str] = {}
    for line in response.iter_lines():
        if line.startswith(":"):
            continue
        if not line:
            if fields:
                events.append((fields.get("event", "message"), fields.get("id"),
                               json.loads(fields["data"])))
            fields = {}
            continue
        name, _, value = line.partition(": ")
        fields[name] = value
    return events


def test_following_logs_streams_new_lines_until_the_run_ends(server: Server,
                                                             db: Store) -> None:
    run = make_run(db, "live", T0, state="Running", started_at=T0)
    db.append_logs([LogRecord("live", None, T0, 20, "line 1")])
    events: list[tuple[str, str | None, Any]] = []

    def follow() -> None:
        with server.client() as http, http.stream(
                "GET", "/api/v1/runs/live/logs", params={"follow": "true"}) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            events.extend(read_events(response))

    reader = threading.Thread(target=follow)
    reader.start()
    time.sleep(1.0)
    db.append_logs([LogRecord("live", "1", T0 + 1, 30, "line 2")])
    time.sleep(0.7)
    db.append_logs([LogRecord("live", "2", T0 + 2, 40, "line 3")])
    db.transition_run(run, "Completed", T0 + 3)
    reader.join(30)
    assert not reader.is_alive()
    assert [(e, data["message"]) for e, _, data in events[:-1]] == [
        ("log", "line 1"), ("log", "line 2"), ("log", "line 3")]
    assert [int(i or 0) for _, i, _ in events[:-1]] == [d["id"] for _, _, d in events[:-1]]
    assert events[-1] == ("end", None, {"state": "Completed"})

    # A reconnecting client resumes after the last event it saw.
    second = int(events[1][1] or 0)
    with server.client() as http, http.stream(
            "GET", "/api/v1/runs/live/logs", params={"follow": "true"},
            headers={"Last-Event-ID": str(second)}) as response:
        again = read_events(response)
    assert [d.get("message") for _, _, d in again] == ["line 3", None]


# -- deployments ----------------------------------------------------------------------------
def test_deployments_their_schedules_and_runs(server: Server, db: Store) -> None:
    deploy(db, deployed_flows.report, name="daily", now=T0, queue="etl",
           params={"day": "2026-11-21", "limit": 5}, tags=["nightly"],
           schedules=[Schedule.cron("0 2 * * *", "Europe/Berlin")])
    deploy(db, deployed_flows.tidy, name="tidy", now=T0)
    with server.client() as http:
        listed = http.get("/api/v1/deployments").json()["items"]
        assert [(d["name"], d["version"], d["queue"]) for d in listed] == [
            ("daily", 1, "etl"), ("tidy", 1, "default")]
        daily = http.get("/api/v1/deployments/daily").json()
        assert daily["params"] == {"day": "2026-11-21", "limit": 5}
        assert daily["tags"] == ["nightly"] and daily["flow_name"] == "report"
        assert daily["param_schema"]["required"] == ["day"]
        [schedule] = http.get("/api/v1/deployments/daily/schedules").json()["items"]
        assert schedule["active"] and schedule["missed"] == "latest"
        assert "0 2 * * *" in json.dumps(schedule["schedule"])
        assert http.get("/api/v1/deployments/tidy/schedules").json() == {"items": []}

        created = http.post("/api/v1/deployments/daily/runs",
                            json={"parameters": {"region": "us"}, "run_id": "daily-1"})
        assert created.status_code == 201, created.text
        run = created.json()
        assert (run["id"], run["state"], run["queue"], run["deployment"]) == (
            "daily-1", "Pending", "etl", "daily")
        assert run["params"]["region"] == "us" and run["params"]["limit"] == 5
        assert db.get_run("daily-1").deployment_version == 1

        again = http.post("/api/v1/deployments/daily/runs",
                          json={"parameters": {"region": "us"}, "run_id": "daily-1"})
        assert again.status_code == 200 and again.json()["id"] == "daily-1"

        fresh = http.post("/api/v1/deployments/tidy/runs", json={})
        assert fresh.status_code == 201 and fresh.json()["flow_name"] == "tidy"
        assert {r["id"] for r in http.get("/api/v1/runs", params={
            "deployment": "daily"}).json()["items"]} == {"daily-1"}


def test_run_parameters_that_do_not_fit_are_422_naming_the_parameter(server: Server,
                                                                     db: Store) -> None:
    deploy(db, deployed_flows.report, name="adhoc", now=T0, queue="etl")
    with server.client() as http:
        def refused(body: Any) -> str:
            error = error_of(http.post("/api/v1/deployments/adhoc/runs", json=body), 422)
            return f"{error['type']}: {error['message']}"

        assert refused({"parameters": {"limit": 3}}).startswith("ParameterError")
        assert "'day'" in refused({"parameters": {"limit": 3}})  # required, no default
        assert "'limit'" in refused({"parameters": {"day": "2026-11-21", "limit": "many"}})
        assert "'colour'" in refused({"parameters": {"day": "2026-11-21", "colour": 1}})
        assert "'region'" in refused({"parameters": {"day": "2026-11-21", "region": "mars"}})
        assert "'parameters'" in refused({"parameters": [1, 2]})
        assert "'run_id'" in refused({"parameters": {"day": "2026-11-21"}, "run_id": "a/b"})
        deploy(db, api_flows.greet, name="greet", now=T0)
        # JSON may carry a lone surrogate; no database can store one.
        error = error_of(http.post("/api/v1/deployments/greet/runs", content=(
            b'{"parameters": {"name": "\\ud800"}}'), headers={
                "content-type": "application/json"}), 422)
        assert error["type"] == "ValidationError" and "parameters" in error["message"]
        error = error_of(http.post("/api/v1/deployments/adhoc/runs", content=b"{not json",
                                   headers={"content-type": "application/json"}), 422)
        assert error["type"] == "ValidationError"
        assert db.list_runs(RunFilter()) == []


def test_unknown_deployments_are_404(server: Server) -> None:
    with server.client() as http:
        for response in (http.get("/api/v1/deployments/nope"),
                         http.get("/api/v1/deployments/nope/schedules"),
                         http.post("/api/v1/deployments/nope/runs", json={"parameters": {}})):
            error = error_of(response, 404)
            assert error["type"] == "DeploymentNotFound" and "nope" in error["message"]


# -- queues, workers, limits ----------------------------------------------------------------
def test_queues_workers_and_limits(server: Server, db: Store) -> None:
    db.set_queue("etl", 4)
    make_run(db, "waiting", T0, state="Pending", queue="etl")
    make_run(db, "elsewhere", T0 + 1, state="Pending", queue="adhoc")
    db.register_worker(WorkerRecord("w1", "box-1", "box", 42, '["etl", "adhoc"]', 8,
                                    "running", T0, T0 + 5, running=2, lease_s=10.0))
    db.set_limit(Limit("db", concurrency=5))
    db.set_limit(Limit("api", rate=10, period=1.0))
    with server.client() as http:
        assert http.get("/api/v1/queues").json()["items"] == [
            {"name": "adhoc", "concurrency_limit": None, "pending": 1, "running": 0,
             "oldest_pending_at": T0 + 1},
            {"name": "etl", "concurrency_limit": 4, "pending": 1, "running": 0,
             "oldest_pending_at": T0}]
        assert http.get("/api/v1/workers").json()["items"] == [
            {"id": "w1", "name": "box-1", "host": "box", "pid": 42, "queues": ["etl", "adhoc"],
             "concurrency": 8, "state": "running", "started_at": T0, "heartbeat_at": T0 + 5,
             "running": 2, "lease_s": 10.0, "lost": False}]  # T0 is in 2027
        assert http.get("/api/v1/limits").json()["items"] == [
            {"name": "api", "concurrency": None, "rate": 10, "period": 1.0},
            {"name": "db", "concurrency": 5, "rate": None, "period": None}]


# -- errors ---------------------------------------------------------------------------------
def test_every_error_has_the_one_error_body(server: Server, db: Store) -> None:
    with server.client() as http:
        assert error_of(http.get("/api/v1/nothing-here"), 404)["type"] == "NotFound"
        assert error_of(http.delete("/api/v1/runs", headers={  # JSON: see server/guard.py
            "content-type": "application/json"}), 405)["type"] == "MethodNotAllowed"
        assert error_of(http.get("/api/v1/runs/a%00b"), 422)["type"] == "ValidationError"
        # An unexpected failure (here a deployment whose stored schema is broken) is a 500
        # that says so, without a traceback.
        db.save_deployment(DeploymentRecord("broken", 0, "tidy", "deployed_flows:tidy", None,
                                            "{}", '{"type": 5}', "default"))
        error = error_of(http.post("/api/v1/deployments/broken/runs", json={}), 500)
        assert error == {"type": "InternalError",
                         "message": "an unexpected error occurred; the server's log has the "
                                    "details"}
    assert "Traceback" in server.output()  # the details are in the server's log


def test_bodies_over_the_limit_are_413(server: Server) -> None:
    big = b'{"parameters": {"x": "' + b"y" * 1_000_000 + b'"}}'
    with server.client() as http:
        error = error_of(http.post("/api/v1/deployments/any/runs", content=big,
                                   headers={"content-type": "application/json"}), 413)
        assert error["type"] == "BodyTooLarge" and "1000000" in error["message"]

        def chunks() -> Any:  # no Content-Length: the server counts what it receives
            for _ in range(20):
                yield b" " * 100_000

        error = error_of(http.post("/api/v1/deployments/any/runs", content=chunks(),
                                   headers={"content-type": "application/json"}), 413)
        assert error["type"] == "BodyTooLarge"
        # The connection stays usable, and a body under the limit gets through the guard.
        assert error_of(http.post("/api/v1/deployments/any/runs", json={}), 404)
        # The store verbs of remote workers carry batches of steps: a limit of their own.
        batch = http.post("/api/v1/store/read_logs",  # (a call has no room for padding)
                          json={"args": ["x" * 2_000_000], "kwargs": {}})
        assert batch.status_code == 200, batch.text

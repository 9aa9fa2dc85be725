"""What a web page can do to a keyless loopback server (server/guard.py), over real HTTP to
a real `stead server start`: cross-site requests and DNS rebinding are refused, programs that
send JSON (the Python client, remote workers) work as before, no CORS is granted, and a
misspelt body field is named instead of ignored."""

from __future__ import annotations

import json
from collections.abc import Callable
from urllib.parse import urlsplit

import httpx
import pytest

from stead.client import Client
from stead.deployments.registry import deploy
from stead.server.guard import host_name, server_hosts
from stead.server.openapi import openapi_text
from stead.settings import Settings
from stead.store.base import RunFilter, Store
from stead.store.http import HttpStore
from tests.server import api_flows
from tests.server.conftest import Server

EVIL = "http://evil.example"


def error_of(response: httpx.Response, status: int) -> dict[str, str]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"type", "message"}, body
    return body["error"]  # type: ignore[no-any-return]


def no_cors(response: httpx.Response) -> None:
    granted = [h for h in response.headers if h.lower().startswith("access-control-")]
    assert granted == [], granted


def port_of(server: Server) -> int:
    return int(urlsplit(server.url).port or 0)


def test_the_reported_attack_is_refused(server: Server, db: Store) -> None:
    """The finding: text/plain, a foreign Origin and Host to a store verb succeeded (200)."""
    attack = {"Content-Type": "text/plain", "Origin": EVIL, "Host": "evil.example"}
    body = b'{"args": ["pwned", 1]}'
    with server.client() as http:
        error = error_of(http.post("/api/v1/store/set_queue", content=body, headers=attack),
                         421)
        assert "evil.example" in error["message"] and "--allowed-host" in error["message"]
        # Each rule on its own: with the server's own Host, the foreign Origin is refused...
        own = {"Host": f"127.0.0.1:{port_of(server)}"}
        error = error_of(http.post("/api/v1/store/set_queue", content=body, headers={
            **own, "Content-Type": "application/json", "Origin": EVIL}), 403)
        assert EVIL in error["message"]
        # ... and so is a "simple" (never preflighted) content type, with no Origin at all.
        for content_type in ("text/plain", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=x"):
            error = error_of(http.post("/api/v1/store/set_queue", content=body, headers={
                **own, "Content-Type": content_type}), 415)
            assert "application/json" in error["message"]
        error_of(http.post("/api/v1/store/set_queue", content=body, headers=own), 415)
    assert "pwned" not in {q.name for q in db.list_queues()}


def test_a_page_of_the_servers_own_origin_may_change_things(server: Server, db: Store) -> None:
    with server.client() as http:
        for origin in (server.url, server.url.replace("127.0.0.1", "localhost")):
            host = urlsplit(origin).netloc
            answer = http.post("/api/v1/store/set_queue", json={"args": ["mine", 2]},
                               headers={"Origin": origin, "Host": host})
            assert answer.status_code == 200, answer.text
            no_cors(answer)
        # The same page's origin on another port is another origin.
        error_of(http.post("/api/v1/store/set_queue", json={"args": ["mine", 2]},
                           headers={"Origin": "http://127.0.0.1:1"}), 403)
        error_of(http.post("/api/v1/store/set_queue", json={"args": ["mine", 2]},
                           headers={"Origin": "null"}), 403)  # a sandboxed page
    assert {q.name: q.concurrency_limit for q in db.list_queues()}["mine"] == 2


def test_dns_rebinding_hosts_are_refused(server: Server) -> None:
    port = port_of(server)
    with server.client() as http:
        for host in ("evil.example", f"evil.example:{port}", "127.0.0.1.evil.example",
                     "localhost.evil", "10.0.0.1"):
            error = error_of(http.get("/api/v1/runs", headers={"Host": host}), 421)
            assert error["type"] == "MisdirectedRequest"
            assert "127.0.0.1, [::1], localhost" in error["message"]
            assert "STEAD_ALLOWED_HOSTS" in error["message"]
        for host in ("127.0.0.1", f"127.0.0.1:{port}", f"localhost:{port}", "LOCALHOST",
                     f"[::1]:{port}"):
            assert http.get("/api/v1/runs", headers={"Host": host}).status_code == 200, host
        # Load balancers probe /health by address; it tells nothing.
        assert http.get("/health", headers={"Host": "10.0.0.1"}).status_code == 200


def test_allowed_hosts_add_names(serve: Callable[..., Server]) -> None:
    server = serve("--allowed-host", "stead.internal", "--allowed-host", "Other.Example.")
    with server.client() as http:
        for host in ("stead.internal", f"stead.internal:{port_of(server)}", "other.example"):
            assert http.get("/api/v1/runs", headers={"Host": host}).status_code == 200, host
        error_of(http.get("/api/v1/runs", headers={"Host": "evil.example"}), 421)
    assert "stead.internal" in server.output()  # the start-up line says what it answers to


def test_no_cors_is_ever_granted(server: Server) -> None:
    with server.client() as http:
        preflight = http.options("/api/v1/store/set_queue", headers={
            "Origin": EVIL, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type"})
        assert error_of(preflight, 403)["type"] == "Forbidden"
        no_cors(preflight)
        plain = http.options("/api/v1/runs")
        assert plain.status_code == 405
        no_cors(plain)
        read = http.get("/api/v1/runs", headers={"Origin": EVIL})
        assert read.status_code == 200  # a page may send it; without CORS it cannot read it
        no_cors(read)


def test_programs_sending_json_still_work(server: Server, db: Store) -> None:
    deploy(db, api_flows.greet, name="greet", now=1.0)
    with Client(server.url) as api:
        run = api.run_deployment("greet", {"name": "Ada"}, run_id="greet-1")
        assert run["state"] == "Pending"
        assert api.cancel("greet-1")["state"] == "Cancelled"  # a POST without a body
    remote = HttpStore(server.url)
    try:
        remote.set_queue("from-a-worker", 3)
        assert [r.id for r in remote.list_runs(RunFilter())] == ["greet-1"]
    finally:
        remote.close()
    assert {q.name for q in db.list_queues()} >= {"from-a-worker"}


def test_a_misspelt_body_field_is_named(server: Server, db: Store) -> None:
    """The finding: {"paramters": ...} created a run with the default parameters."""
    deploy(db, api_flows.greet, name="greet", now=1.0)
    with server.client() as http:
        error = error_of(http.post("/api/v1/deployments/greet/runs",
                                   json={"paramters": {"name": "Ada"}}), 422)
        assert error["type"] == "ValidationError" and "'paramters'" in error["message"]
        assert "not a field" in error["message"]
    assert db.list_runs(RunFilter()) == []


def test_every_request_body_refuses_unknown_fields() -> None:
    """Every body an operation takes (by the OpenAPI document) forbids other fields."""
    doc = json.loads(openapi_text())
    bodies = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            if "requestBody" in op:
                ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
                schema = doc["components"]["schemas"][ref.rsplit("/", 1)[1]]
                bodies.append(ref)
                assert schema.get("additionalProperties") is False, (method, path, ref)
    assert bodies, "no operation takes a body: the test no longer looks in the right place"


def test_host_names_and_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    assert host_name("[::1]:4300") == ("[::1]", "4300")
    assert host_name("Example.COM.:80") == ("example.com", "80")
    assert host_name("::1") == ("[::1]", "")
    assert server_hosts("::1") == ("[::1]", "localhost", "127.0.0.1")
    assert server_hosts("10.1.2.3", ["a.example"]) == ("10.1.2.3", "a.example")
    everywhere = server_hosts("0.0.0.0")
    assert "0.0.0.0" not in everywhere and {"localhost", "127.0.0.1"} <= set(everywhere)
    monkeypatch.setenv("STEAD_ALLOWED_HOSTS", " a.example, b.example:8080 ,,")
    assert Settings.from_env().allowed_hosts == ("a.example", "b.example:8080")
    assert server_hosts("127.0.0.1", Settings.from_env().allowed_hosts)[-2:] == (
        "a.example", "b.example")

"""The OpenAPI document: the committed docs/openapi.json is the app's, it is what the server
serves, it describes every operation, and schemathesis's generated requests (valid and
invalid) never make the server fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import deployed_flows  # tests/scripts, put on sys.path by tests/server/conftest.py
import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, given
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from stead.deployments.registry import deploy
from stead.server.apikeys import new_api_key
from stead.server.openapi import openapi_text
from stead.store.base import LogRecord, RunRecord, Store
from tests.server.conftest import Server

DOC = Path(__file__).parents[2] / "docs" / "openapi.json"
REGENERATE = "python -m stead.server.openapi > docs/openapi.json"
EXAMPLES = 20  # per operation and generation mode: the whole run stays well under a minute
EXAMPLES_PER_ROLE = 8  # the same with a key of each role


def test_the_committed_document_is_the_apps() -> None:
    assert DOC.exists(), f"docs/openapi.json is missing: run `{REGENERATE}`"
    assert DOC.read_text() == openapi_text(), (
        f"docs/openapi.json differs from the app's OpenAPI document: run `{REGENERATE}` "
        "and commit the result")


def test_every_operation_is_described() -> None:
    doc = json.loads(openapi_text())
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            assert op.get("summary") and op.get("description"), f"{method.upper()} {path}"
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):  # every error has the one error body
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (path, status)
    assert doc["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_the_server_serves_the_committed_document(server: Server) -> None:
    with server.client() as http:
        assert http.get("/openapi.json").json() == json.loads(DOC.read_text())


def fill(store: Store) -> None:
    """Something for the generated requests to find: a deployment and a finished run."""
    deploy(store, deployed_flows.report, name="daily", now=1.0, queue="etl",
           params={"day": "2026-11-21"})
    store.create_run(RunRecord(id="done", flow_name="report", state="Completed",
                               created_at=2.0, result="1"))
    store.append_logs([LogRecord("done", None, 2.0, 20, "hello")])


def test_generated_requests_never_make_the_server_fail(server: Server, db: Store) -> None:
    fill(db)
    fuzz(server, {}, EXAMPLES)


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
@pytest.mark.parametrize("role", ["operator", "worker", "reader", "webhook"])
def test_generated_requests_with_each_role_never_make_the_server_fail(
        server: Server, db: Store, role: str) -> None:
    """The same with a key of each role (the keyless loopback server still checks a key it
    is sent): refusals are documented 403s or 404s, never a server error."""
    fill(db)
    key, record = new_api_key(role, 1.0, role=role, namespaces=("default",))
    db.create_api_key(record)
    fuzz(server, {"Authorization": f"Bearer {key}"}, EXAMPLES_PER_ROLE)


def fuzz(server: Server, headers: dict[str, str], examples: int) -> None:
    """Schemathesis's generated requests (valid and invalid) to every operation, sent with
    `headers`: no server error, and every answer as the document says."""
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", headers=headers)
    checks = [not_a_server_error, status_code_conformance, content_type_conformance,
              response_schema_conformance]
    known = {"run_id": "done", "name": "daily", "message_id": 1, "key": "stage"}
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        names = {p.name for p in operation.path_parameters}
        fixed = [None] + ([{n: known[n] for n in names}] if names else [])
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            for path_parameters in fixed:
                strategy = operation.as_strategy(mode, path_parameters=path_parameters)

                @given(case=strategy)
                @hypothesis.settings(max_examples=examples, deadline=None, database=None,
                                     suppress_health_check=list(HealthCheck),
                                     phases=[hypothesis.Phase.generate])
                def check(case: Any) -> None:
                    response = case.call(base_url=server.url, timeout=20,
                                         headers=headers or None)
                    case.validate_response(response, checks=checks)

                try:
                    check()
                except hypothesis.errors.Unsatisfiable:
                    pass  # nothing to make invalid: an operation without parameters
                except Exception as exc:  # collect every operation's failure, then report
                    failures.append(f"{operation.label} ({mode.value}, {path_parameters}): "
                                    f"{exc}")
    assert not failures, "\n\n".join(failures) + "\n\nserver log:\n" + server.output()[-5000:]

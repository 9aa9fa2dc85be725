"""The OpenAPI document: the committed docs/openapi.json is the app's, it is what the server
serves, and it describes every operation."""

from __future__ import annotations

import json
from pathlib import Path

from stead.server.openapi import openapi_text
from tests.server.conftest import Server

DOC = Path(__file__).parents[2] / "docs" / "openapi.json"
REGENERATE = "python -m stead.server.openapi > docs/openapi.json"


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

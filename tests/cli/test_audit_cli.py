"""`stead audit ls` (table, filters, --json, paging hint, errors), the audit rows of
`stead keys create/revoke`, and `stead runs prune` deleting expired audit rows."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from stead.core.runtime import store_for
from stead.store.audit import DAY, AuditFilter, AuditRecord, audit_log, local_user


@pytest.fixture(autouse=True)
def _audit_is_local(backend: str) -> None:
    if backend == "http":
        pytest.skip("the audit log is kept where the database is, not through a server")


def fill() -> float:
    now = time.time()
    audit_log(store_for()).record_audit([
        AuditRecord(at=now - 2 * DAY, key_id="3f2a9c1e4b5d", key_name="ci", role="admin",
                    address="10.0.0.7", method="POST", action="store.set_queue",
                    target="etl", outcome=200),
        AuditRecord(at=now - 3600, key_id=None, key_name=None, role=None,
                    address="10.0.0.9", method="GET", action="GET /api/v1/runs",
                    outcome=401, detail="Unauthorized (key refused)"),
        AuditRecord(at=now - 60, key_id="3f2a9c1e4b5d", key_name="ci", role="admin",
                    address="10.0.0.7", method="POST", action="POST /api/v1/runs/r1/cancel",
                    target="r1", outcome=409, detail="RunConflict"),
    ])
    return now


def lines(result: Any) -> list[str]:
    assert result.exit_code == 0, result.output
    return [" ".join(line.split()) for line in result.stdout.splitlines() if line.strip()]


def test_ls_shows_time_who_address_action_target_outcome(invoke: Callable[..., Any]) -> None:
    fill()
    out = lines(invoke("audit", "ls"))
    assert out[0].split() == ["ID", "Time", "Who", "Address", "Action", "Target", "Outcome",
                              "Detail"]
    rows = out[2:]
    assert len(rows) == 3
    assert "ci (3f2a9c1e4b5d) 10.0.0.7 POST /api/v1/runs/r1/cancel r1 409 RunConflict" in rows[0]
    assert "- 10.0.0.9 GET /api/v1/runs 401 Unauthorized (key refused)" in rows[1]
    assert "ci (3f2a9c1e4b5d) 10.0.0.7 store.set_queue etl 200" in rows[2]


def test_ls_filters(invoke: Callable[..., Any]) -> None:
    fill()

    def actions(*args: str) -> list[str]:
        result = invoke("audit", "ls", "--json", *args)
        assert result.exit_code == 0, result.output
        return [r["action"] for r in json.loads(result.stdout)]

    assert actions() == ["POST /api/v1/runs/r1/cancel", "GET /api/v1/runs", "store.set_queue"]
    assert actions("--since", "1d") == ["POST /api/v1/runs/r1/cancel", "GET /api/v1/runs"]
    assert actions("--since", "30m") == ["POST /api/v1/runs/r1/cancel"]
    assert actions("--key", "ci") == ["POST /api/v1/runs/r1/cancel", "store.set_queue"]
    assert actions("--key", "3f2a9c1e4b5d", "--failed") == ["POST /api/v1/runs/r1/cancel"]
    assert actions("--denied") == ["GET /api/v1/runs"]
    assert actions("--action", "queue") == ["store.set_queue"]
    assert actions("--limit", "1") == ["POST /api/v1/runs/r1/cancel"]
    [first] = json.loads(invoke("audit", "ls", "--json", "--limit", "1").stdout)
    assert set(first) == {"id", "at", "key_id", "key_name", "role", "address", "method",
                          "action", "target", "outcome", "detail"}
    assert actions("--before", str(first["id"])) == ["GET /api/v1/runs", "store.set_queue"]
    hint = invoke("audit", "ls", "--limit", "2")
    assert f"stead audit ls --before {first['id'] - 1}" in hint.stdout


def test_ls_errors_and_nothing_found(invoke: Callable[..., Any]) -> None:
    fill()
    both = invoke("audit", "ls", "--denied", "--failed")
    assert both.exit_code == 2 and "not both" in both.stderr
    bad = invoke("audit", "ls", "--since", "yesterday")
    assert bad.exit_code == 2 and "is not a duration" in " ".join(bad.output.split())
    none = invoke("audit", "ls", "--key", "nobody")
    assert none.exit_code == 0 and "No audit rows" in none.stdout


def test_help_has_an_example(invoke: Callable[..., Any]) -> None:
    result = invoke("audit", "ls", "--help")
    assert result.exit_code == 0
    assert "Example: stead audit ls --since 7d" in " ".join(result.stdout.split())


def test_keys_create_and_revoke_are_recorded_as_local_actions(
        invoke: Callable[..., Any]) -> None:
    created = invoke("keys", "create", "deployer", "--role", "operator")
    assert created.exit_code == 0, created.output
    [key] = store_for().list_api_keys()
    assert invoke("keys", "revoke", key.id).exit_code == 0
    assert invoke("keys", "revoke", key.id).exit_code == 0  # already revoked
    assert invoke("keys", "revoke", "no-such-key").exit_code == 2
    rows = audit_log(store_for()).list_audit(AuditFilter())
    assert [(r.action, r.target, r.outcome, r.detail) for r in reversed(rows)] == [
        ("keys create", key.id, 200, "name 'deployer', role operator"),
        ("keys revoke", key.id, 200, None),
        ("keys revoke", key.id, 200, "already revoked"), ("keys revoke", None, 404,
                                                          "ConfigError")]
    for r in rows:
        assert (r.key_id, r.key_name, r.address, r.method) == (None, local_user(), "local",
                                                               "CLI")
    secret = created.stdout.strip()
    assert secret not in repr(rows) and secret[6:14] not in repr(rows)


def test_runs_prune_deletes_expired_audit_rows_and_says_how_many(
        invoke: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    from stead.settings import reset_settings

    fill()  # rows 2 days, 1 hour and 1 minute old
    monkeypatch.setenv("STEAD_AUDIT_RETENTION_DAYS", "1")
    reset_settings()
    dry = " ".join(invoke("runs", "prune", "--older-than", "30d", "--dry-run").stdout.split())
    assert "Would delete 1 audit row older than 1 day" in dry
    assert len(audit_log(store_for()).list_audit(AuditFilter())) == 3
    result = invoke("runs", "prune", "--older-than", "30d", "--yes")
    out = " ".join(result.stdout.split())
    assert result.exit_code == 0, result.output
    assert "Deleted 1 audit row older than 1 day (STEAD_AUDIT_RETENTION_DAYS)" in out
    assert "Nothing to prune" in out  # no runs to prune
    assert [r.action for r in audit_log(store_for()).list_audit(AuditFilter())] == [
        "POST /api/v1/runs/r1/cancel", "GET /api/v1/runs"]
    again = " ".join(invoke("runs", "prune", "--older-than", "30d", "--yes").stdout.split())
    assert "Deleted 0 audit rows" in again


def test_audit_ls_against_a_server_url_says_where_the_log_is(
        invoke: Callable[..., Any]) -> None:
    result = invoke("audit", "ls", "--db", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "GET /api/v1/audit" in " ".join(result.stderr.split())

"""API keys: `stead keys create/ls/revoke`, the store's key verbs, and a real server that
needs a valid, unrevoked key on every request but /health (on SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from typer.testing import CliRunner

from stead.cli.main import app
from stead.cli.server import is_loopback
from stead.errors import ConfigError
from stead.server.apikeys import new_api_key
from stead.store.base import Store
from tests.server.conftest import Server

PROTECTED = ["/ready", "/openapi.json", "/api/v1/runs", "/api/v1/runs/x", "/api/v1/runs/x/logs",
             "/api/v1/deployments", "/api/v1/deployments/x/schedules", "/api/v1/queues",
             "/api/v1/workers", "/api/v1/limits"]


@pytest.fixture(autouse=True)
def _keys_are_local(request: pytest.FixtureRequest) -> None:
    """API keys are made and checked where the database is: a remote process cannot manage
    them (store/wire.py), so these tests do not run in remote mode."""
    if "backend" in request.fixturenames and request.getfixturevalue("backend") == "http":
        pytest.skip("API keys are managed where the database is, not through a server")


@pytest.fixture
def stead(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Run the `stead` CLI in this process, on the test's database."""
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    return lambda *args: runner.invoke(app, list(args))


def make_key(stead: Callable[..., Any], name: str) -> str:
    result = stead("keys", "create", name, "--role", "admin", "--namespace", "*")
    assert result.exit_code == 0, result.output
    return str(result.stdout.strip())


def test_keys_are_shown_once_stored_as_hashes_listed_by_prefix_and_revoked(
        db: Store, stead: Callable[..., Any]) -> None:
    result = stead("keys", "create", "ci", "--role", "operator")
    key = result.stdout.strip()
    assert key.startswith("stead_") and len(key) == 6 + 43  # 32 random bytes, base64url
    assert "will not be shown again" in result.stderr
    [record] = db.list_api_keys()
    assert record.name == "ci" and record.hash == hashlib.sha256(key.encode()).hexdigest()
    assert record.prefix == key[6:14] and key not in repr(record)
    assert record.last_used_at is None and record.revoked_at is None

    listing = stead("keys", "ls").stdout
    assert record.id in listing and f"stead_{record.prefix}..." in listing
    assert key not in listing

    revoked = stead("keys", "revoke", f"stead_{record.prefix}...")  # as `keys ls` shows it
    assert revoked.exit_code == 0 and f"revoked API key {record.id}" in revoked.stdout
    [record] = db.list_api_keys()
    assert record.revoked_at is not None
    again = stead("keys", "revoke", record.id)
    assert again.exit_code == 0 and "already" in again.stdout
    assert db.list_api_keys()[0].revoked_at == record.revoked_at

    unknown = stead("keys", "revoke", "nope")
    assert unknown.exit_code == 2 and "no API key with id or prefix 'nope'" in unknown.stderr


def test_no_key_starts_with_a_dash_so_its_prefix_never_reads_as_an_option() -> None:
    assert not any(new_api_key("k", 0.0)[1].prefix.startswith("-") for _ in range(2000))


def test_the_key_verbs_find_by_hash_touch_at_most_once_a_minute_and_refuse_ambiguity(
        db: Store) -> None:
    _, record = new_api_key("a", 100.0)
    db.create_api_key(record)
    assert db.find_api_key(record.hash) == record
    assert db.find_api_key(hashlib.sha256(b"other").hexdigest()) is None
    db.touch_api_key(record.id, 200.0)
    db.touch_api_key(record.id, 230.0)  # within a minute of the last: not written
    assert db.list_api_keys()[0].last_used_at == 200.0
    db.touch_api_key(record.id, 261.0)
    assert db.list_api_keys()[0].last_used_at == 261.0

    _, twin = new_api_key("b", 101.0)
    twin.prefix = record.prefix  # 48 random bits each: a collision is rare, not impossible
    db.create_api_key(twin)
    with pytest.raises(ConfigError, match="prefix of 2 keys"):
        db.revoke_api_key(record.prefix, 300.0)
    assert db.revoke_api_key(twin.id, 300.0).revoked_at == 300.0
    assert db.find_api_key(record.hash).revoked_at is None  # type: ignore[union-attr]


def test_a_server_requiring_keys_lets_only_valid_unrevoked_keys_in(
        serve: Callable[..., Server], db: Store, stead: Callable[..., Any]) -> None:
    key, other = make_key(stead, "ci"), make_key(stead, "ui")
    server = serve("--require-auth")
    with server.client() as anonymous:
        assert anonymous.get("/health").json() == {"status": "ok"}  # always open
        assert anonymous.get("/docs").status_code == 404  # a browser could not send a key
        for path in PROTECTED:
            response = anonymous.get(path)
            assert response.status_code == 401, path
            assert response.json()["error"]["type"] == "Unauthorized"
            assert "stead keys create" in response.json()["error"]["message"]
            assert response.headers["www-authenticate"] == "Bearer"
        # Refused before anything else: no 404 or 422 tells an outsider what exists.
        assert anonymous.post("/api/v1/deployments/x/runs", json=[]).status_code == 401
        for wrong in ("Bearer stead_not-a-key", f"Basic {key}", key, "Bearer"):
            response = anonymous.get("/api/v1/runs", headers={"Authorization": wrong})
            assert response.status_code == 401, wrong
    with server.client(key) as http:
        for path in PROTECTED:
            assert http.get(path).status_code in (200, 404), path
        assert http.get("/api/v1/runs").json() == {"items": [], "next_cursor": None}
    used = {k.name: k.last_used_at for k in db.list_api_keys()}
    assert used["ci"] is not None and used["ui"] is None

    assert stead("keys", "revoke", key[6:14]).exit_code == 0
    with server.client(key) as http:
        error = http.get("/api/v1/runs").json()["error"]
        assert error["type"] == "Unauthorized" and "revoked" in error["message"]
    with server.client(other) as http:
        assert http.get("/api/v1/runs").status_code == 200


def test_a_server_beyond_loopback_requires_keys_by_itself(
        serve: Callable[..., Server], stead: Callable[..., Any]) -> None:
    key = make_key(stead, "ci")
    server = serve("--host", "0.0.0.0")  # reached here through 127.0.0.1
    with server.client() as anonymous:
        assert anonymous.get("/health").status_code == 200
        assert anonymous.get("/api/v1/runs").status_code == 401
    with server.client(key) as http:
        assert http.get("/api/v1/runs").status_code == 200
    assert "API keys required" in server.output()


def test_loopback_addresses() -> None:
    for host in ("127.0.0.1", "127.3.2.1", "::1", "[::1]", "localhost", "LOCALHOST"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "::", "10.1.2.3", "192.168.0.5", "example.com", "localhost.evil"):
        assert not is_loopback(host), host

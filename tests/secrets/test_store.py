"""Secrets at rest on every backend: round trip, only ciphertext stored, keys and rotation."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import stead
from stead.core.runtime import close_stores, store_for
from stead.errors import SecretKeyMismatch, SecretKeyMissing, SecretNotFound
from stead.secrets import crypto
from stead.settings import reset_settings
from stead.store.base import Store
from tests.secrets.conftest import database_bytes

PLAIN = "correct-horse-battery-staple-42"


def test_a_secret_round_trips_and_only_its_ciphertext_is_stored(
        backend: str, stead_home: Path, home_store: Store,
        put_secret: Callable[..., None]) -> None:
    put_secret("DB_PASSWORD", PLAIN)
    put_secret("DB_PASSWORD", "other-namespace-value", namespace="etl")
    assert stead.secret("DB_PASSWORD") == PLAIN
    assert stead.secret("DB_PASSWORD", "etl") == "other-namespace-value"
    listed = store_for().list_secrets(None)  # through the server in remote mode
    assert [(r.namespace, r.name) for r in listed] == [("default", "DB_PASSWORD"),
                                                       ("etl", "DB_PASSWORD")]
    assert [r.name for r in store_for().list_secrets("etl")] == ["DB_PASSWORD"]
    ciphertext = home_store.get_secret("DB_PASSWORD", "default")
    assert ciphertext is not None and PLAIN not in ciphertext
    if backend != "postgres":
        home_store.close()  # let the checkpointer settle; the WAL is read too
    assert PLAIN.encode() not in database_bytes(backend, stead_home, home_store)
    assert b"DB_PASSWORD" in database_bytes(backend, stead_home, home_store)


def test_replacing_keeps_created_at_and_deleting_removes(
        backend: str, home_store: Store, put_secret: Callable[..., None]) -> None:
    put_secret("TOKEN", "first-value")
    before = home_store.list_secrets("default")[0]
    time.sleep(0.01)
    put_secret("TOKEN", "second-value")
    after = home_store.list_secrets("default")[0]
    assert after.created_at == before.created_at and after.updated_at > before.updated_at
    assert stead.secret("TOKEN") == "second-value"
    assert home_store.delete_secret("TOKEN", "default") is True
    assert home_store.delete_secret("TOKEN", "default") is False
    with pytest.raises(SecretNotFound) as info:
        stead.secret("TOKEN")
    assert "'TOKEN'" in str(info.value) and "'default'" in str(info.value)
    assert "stead secrets set TOKEN" in str(info.value)
    with pytest.raises(SecretNotFound, match="--namespace etl"):
        stead.secret("TOKEN", "etl")


def test_remote_processes_cannot_reach_ciphertexts_or_change_secrets(
        backend: str, put_secret: Callable[..., None]) -> None:
    if backend != "http":
        pytest.skip("remote mode only")
    put_secret("TOKEN", PLAIN)
    remote = store_for()
    for verb in ("get_secret", "set_secret", "delete_secret", "rotate_secrets"):
        with pytest.raises(AttributeError, match="where the database is"):
            getattr(remote, verb)


def test_no_key_is_a_clear_error(backend: str, home_store: Store) -> None:
    home_store.set_secret("X", "default", "gAAAA-not-a-real-token", time.time())
    with pytest.raises(SecretKeyMissing, match="STEAD_SECRETS_KEY"):
        stead.secret("X")


def _fresh_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def _use_keys(monkeypatch: pytest.MonkeyPatch, *keys: str) -> None:
    monkeypatch.setenv("STEAD_SECRETS_KEY", ",".join(keys))
    reset_settings()


def test_a_wrong_key_says_it_does_not_match_and_how_to_rotate(
        monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    _use_keys(monkeypatch, _fresh_key())
    store.set_secret("API", "default", crypto.encrypt(PLAIN, "API", "default"), time.time())
    _use_keys(monkeypatch, _fresh_key())
    with pytest.raises(SecretKeyMismatch) as info:
        stead.secret("API")
    message = str(info.value)
    assert "do not match the key it was written with" in message
    assert "STEAD_SECRETS_KEY=NEW,OLD" in message and "stead secrets rotate" in message


def test_a_ciphertext_copied_onto_another_secret_is_refused(store: Store) -> None:
    crypto.ensure_key()
    store.set_secret("B", "default", crypto.encrypt(PLAIN, "A", "default"), time.time())
    with pytest.raises(SecretKeyMismatch, match="copied"):
        stead.secret("B")


def test_rotation_re_encrypts_with_the_first_key(backend: str, monkeypatch: pytest.MonkeyPatch,
                                                 home_store: Store) -> None:
    old, new = _fresh_key(), _fresh_key()
    _use_keys(monkeypatch, old)
    home_store.set_secret("API", "default", crypto.encrypt(PLAIN, "API", "default"),
                          time.time())
    before = home_store.get_secret("API", "default")
    _use_keys(monkeypatch, new, old)
    assert stead.secret("API") == PLAIN  # the old key still decrypts before rotation
    assert home_store.rotate_secrets(crypto.reencrypt, time.time()) == 1
    after = home_store.get_secret("API", "default")
    assert after != before
    _use_keys(monkeypatch, new)  # the old key is gone: the rotated secret still reads
    assert stead.secret("API") == PLAIN


def test_the_key_file_is_created_private_and_read_line_by_line(stead_home: Path,
                                                               store: Store) -> None:
    path = crypto.ensure_key()
    assert path == stead_home / "secrets.key"
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert crypto.ensure_key() is None  # a key exists: nothing is created
    old = path.read_text().strip()
    path.write_text(f"# new key first\n{_fresh_key()}\n{old}\n")
    close_stores()
    reset_settings()
    assert crypto.configured_keys()[1] == old


def test_a_malformed_key_names_the_setting(monkeypatch: pytest.MonkeyPatch, store: Store) -> None:
    from stead.errors import ConfigError

    _use_keys(monkeypatch, "not-a-key")
    with pytest.raises(ConfigError, match="key 1 of STEAD_SECRETS_KEY is not a Fernet key"):
        crypto.encrypt("x", "A", "default")


def test_the_migration_makes_the_secrets_table_keyed_by_namespace_and_name(
        store: Store, stead_home: Path) -> None:
    import sqlite3

    conn = sqlite3.connect(stead_home / "stead.db")
    columns = {row[1]: (row[2], row[3], row[5]) for row in
               conn.execute("PRAGMA table_info(secrets)")}  # name: (type, notnull, pk)
    conn.close()
    assert columns == {"namespace": ("TEXT", 1, 1), "name": ("TEXT", 1, 2),
                       "ciphertext": ("TEXT", 1, 0), "created_at": ("FLOAT", 1, 0),
                       "updated_at": ("FLOAT", 1, 0)}

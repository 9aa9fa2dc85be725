"""API keys of the HTTP server: SQL both backends share (conventions in store/leases.py).

Only a key's hash is stored (see the 0005 migration for why a plain SHA-256 suffices), with
the first characters of its secret part so a person can tell keys apart in a listing.
"""

from __future__ import annotations

from typing import Any

from stead.errors import ConfigError
from stead.store.base import ApiKeyRecord
from stead.store.sql import Dialect

API_KEY_COLUMNS = ("id, name, prefix, hash, created_at, last_used_at, revoked_at, role, "
                   "namespaces, queues")
TOUCH_EVERY_S = 60.0  # last_used_at is written at most this often per key


def create_api_key(conn: Any, d: Dialect, key: ApiKeyRecord) -> None:
    conn.execute(f"INSERT INTO api_keys ({API_KEY_COLUMNS}) VALUES ({d.marks(10)})",
                 (key.id, key.name, key.prefix, key.hash, key.created_at, key.last_used_at,
                  key.revoked_at, key.role, key.namespaces, key.queues))


def list_api_keys(conn: Any, d: Dialect) -> list[ApiKeyRecord]:
    rows = conn.execute(f"SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY created_at, id")
    return [ApiKeyRecord(*row) for row in rows.fetchall()]


def find_api_key(conn: Any, d: Dialect, key_hash: str) -> ApiKeyRecord | None:
    row = conn.execute(f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE hash = {d.p}",
                       (key_hash,)).fetchone()
    return ApiKeyRecord(*row) if row else None


def revoke_api_key(conn: Any, d: Dialect, id_or_prefix: str, now: float) -> ApiKeyRecord:
    text = id_or_prefix.strip().removeprefix("stead_").rstrip(".")
    rows = conn.execute(f"SELECT {API_KEY_COLUMNS} FROM api_keys WHERE id = {d.p} OR "
                        f"prefix = {d.p} ORDER BY id{d.for_update}", (text, text)).fetchall()
    exact = [row for row in rows if row[0] == text]
    rows = exact or rows
    if not rows:
        raise ConfigError(f"no API key with id or prefix {id_or_prefix!r}; `stead keys ls` "
                          "lists the keys")
    if len(rows) > 1:
        raise ConfigError(f"{id_or_prefix!r} is the prefix of {len(rows)} keys; give the "
                          "key's id (see `stead keys ls`)")
    key = ApiKeyRecord(*rows[0])
    if key.revoked_at is None:
        key.revoked_at = now
        conn.execute(f"UPDATE api_keys SET revoked_at = {d.p} WHERE id = {d.p}", (now, key.id))
    return key


def touch_api_key(conn: Any, d: Dialect, key_id: str, now: float) -> None:
    conn.execute(f"UPDATE api_keys SET last_used_at = {d.p} WHERE id = {d.p} AND "
                 f"(last_used_at IS NULL OR last_used_at < {d.p})",
                 (now, key_id, now - TOUCH_EVERY_S))


def lease_holder_key(conn: Any, d: Dialect, run_id: str, epoch: int) -> str | None:
    """The API key of the worker that holds run `run_id` at lease `epoch`, or None."""
    row = conn.execute(f"SELECT w.key_id FROM runs AS r JOIN workers AS w ON w.id = r.worker_id "
                       f"WHERE r.id = {d.p} AND r.lease_epoch = {d.p}", (run_id, epoch)
                       ).fetchone()
    return row[0] if row else None

"""The API-keys part of the store interface: the HTTP server's keys (SQL in store/keys.py),
and the record it carries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(slots=True)
class ApiKeyRecord:
    """An API key of the HTTP server. Only its hash is stored; the key itself is shown once."""

    id: str
    name: str
    prefix: str  # the first 8 characters after "stead_", to tell keys apart in listings
    hash: str  # SHA-256 (hex) of the whole key
    created_at: float
    last_used_at: float | None = None  # updated at most once a minute
    revoked_at: float | None = None  # a revoked key is refused
    role: str = "admin"  # admin, operator, worker, reader or webhook (server/policy.py)
    namespaces: str = '["*"]'  # JSON list of the namespaces it may touch; "*": all
    queues: str | None = None  # JSON list of the queues a worker key may claim from; None: any


class KeyStore(Protocol):
    """API keys of the HTTP server, and which key holds a run's lease."""

    def create_api_key(self, key: ApiKeyRecord) -> None:
        """Store a new API key (its hash, never the key itself)."""
        ...

    def list_api_keys(self) -> list[ApiKeyRecord]:
        """Every API key, revoked ones included, oldest first."""
        ...

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The key whose hash is `key_hash` (revoked or not), or None."""
        ...

    def revoke_api_key(self, id_or_prefix: str, now: float) -> ApiKeyRecord:
        """Revoke the key with this id or prefix (ConfigError if none or several match) and
        return it; a key already revoked keeps its time of revocation."""
        ...

    def lease_holder_key(self, run_id: str, epoch: int) -> str | None:
        """The API key id of the worker holding run `run_id` at lease `epoch`, or None (the
        server's check that a worker key writes only runs it holds)."""
        ...

    def touch_api_key(self, key_id: str, now: float) -> None:
        """Record that the key was used at `now` (skipped if recorded within the last minute,
        so a busy client does not cost a write per request)."""
        ...

"""Making and checking API keys (standard library only: `stead keys` needs no web framework).

A key is "stead_" and 43 URL-safe characters: 32 random bytes from `secrets`. The store keeps
its SHA-256 and never the key. A plain hash suffices because the key is random: 2^256
candidates cannot be tried, so the slow, salted hashes built for guessable passwords add
nothing, and a plain hash lets a request's key be found by one indexed lookup.
"""

from __future__ import annotations

import hashlib
import json
import secrets

from stead.store.base import ApiKeyRecord

KEY_PREFIX = "stead_"
PREFIX_CHARS = 8  # characters of the secret part kept in the clear, to tell keys apart


def hash_key(key: str) -> str:
    """The SHA-256 (hex) of a key, as stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key(name: str, now: float, *, role: str = "admin",
                namespaces: tuple[str, ...] = ("*",), queues: tuple[str, ...] | None = None
                ) -> tuple[str, ApiKeyRecord]:
    """A new key and the record to store for it (which does not contain the key).

    Example:
        >>> key, record = new_api_key("etl", time.time(), role="worker", queues=("etl",))
        >>> store.create_api_key(record)
    """
    secret = secrets.token_urlsafe(32)
    while secret.startswith("-"):  # a prefix given on a command line must not look like an option
        secret = secrets.token_urlsafe(32)
    key = KEY_PREFIX + secret
    return key, ApiKeyRecord(id=secrets.token_hex(6), name=name, prefix=secret[:PREFIX_CHARS],
                             hash=hash_key(key), created_at=now, role=role,
                             namespaces=json.dumps(list(namespaces)),
                             queues=json.dumps(list(queues)) if queues is not None else None)


def shown_prefix(record: ApiKeyRecord) -> str:
    """How a listing shows a key: "stead_AbCdEfGh..."."""
    return f"{KEY_PREFIX}{record.prefix}..."

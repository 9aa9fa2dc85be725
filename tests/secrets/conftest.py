"""Fixtures of the secrets tests: the store where secrets are set (the server's database in
remote mode), and a helper that sets one as `stead secrets set` does."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from stead.core import masking
from stead.core.runtime import store_for
from stead.secrets import crypto
from stead.store.base import Store


@pytest.fixture(autouse=True)
def forget_revealed() -> None:
    """Each test starts in a process that has revealed no secret."""
    masking._revealed.clear()
    masking.PATTERNS.clear()


@pytest.fixture
def home_store(backend: str, stead_home: Path) -> Store:
    """The store that holds the secrets: in remote mode, the server's own database."""
    if backend == "http":
        return store_for(f"sqlite:///{stead_home / 'server.db'}")
    return store_for()


@pytest.fixture
def put_secret(home_store: Store) -> Callable[..., None]:
    def put(name: str, value: str, namespace: str = "default") -> None:
        crypto.ensure_key()
        home_store.set_secret(name, namespace, crypto.encrypt(value, name, namespace),
                              time.time())

    return put


def database_bytes(backend: str, stead_home: Path, store: Store) -> bytes:
    """Everything the database holds, as bytes: the SQLite file and its WAL, or every row of
    every table of the PostgreSQL database as text."""
    if backend in ("sqlite", "http"):
        name = "server.db" if backend == "http" else "stead.db"
        return b"".join(p.read_bytes() for p in stead_home.glob(f"{name}*") if p.is_file())
    import psycopg

    with psycopg.connect(store.url) as conn:  # type: ignore[attr-defined]
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        rows = [str(r[0]) for t in tables
                for r in conn.execute(f'SELECT t::text FROM "{t}" t').fetchall()]
    return "\n".join(rows).encode()

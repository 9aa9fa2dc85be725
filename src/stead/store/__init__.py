"""Persistence behind one interface (`Store`); `open_store(url)` picks the backend by URL."""

from __future__ import annotations

from stead.store.base import (
    CacheEntry,
    LogRecord,
    RunFilter,
    RunRecord,
    StateChange,
    StepRecord,
    Store,
)

__all__ = ["CacheEntry", "LogRecord", "RunFilter", "RunRecord", "StateChange", "StepRecord",
           "Store", "open_store"]


def open_store(url: str, *, durability: str = "process", schema: str = "auto",
               connect_wait_s: float | None = None) -> Store:
    """Open the store at `url`: ``sqlite:///relative/path.db`` (relative to the current
    directory), ``sqlite:////absolute/path.db``, a plain file path,
    ``postgresql://user@host:5432/dbname``, or a Stead server ``https://host:4300`` (remote
    mode; the API key comes from STEAD_API_KEY). See store/urls.py for the convention.

    A run's writes follow the run's own durability level; `durability` is the level of writes
    that belong to no run (claims, heartbeats, deployments). `schema` says whether opening may
    create or upgrade the schema: "auto" (the engine, workers, services), "read" (never:
    an out-of-date schema is refused, naming `stead db upgrade`) or "upgrade"
    (store/migrate.py). `connect_wait_s` bounds the wait for an unreachable PostgreSQL server
    as the store opens (None: a service's 30 s; a command passes a few seconds); each verb
    then retries for STEAD_STORE_RETRY_SECONDS.

    >>> store = open_store("sqlite:///data/stead.db")  # doctest: +SKIP
    """
    from stead.store.durability import (
        POSTGRES_SYNCHRONOUS_COMMIT,
        SQLITE_SYNCHRONOUS,
        check_level,
    )
    from stead.store.urls import parse_database_url  # not at import: `import stead` stays lean

    check_level(durability, "open_store")
    where = parse_database_url(url)
    if where.kind == "postgresql":
        from stead.store.postgres import PostgresStore

        return PostgresStore(url, synchronous_commit=POSTGRES_SYNCHRONOUS_COMMIT[durability],
                             schema=schema, connect_wait_s=connect_wait_s)
    if where.kind == "http":
        from stead.settings import get_settings
        from stead.store.http import HttpStore

        return HttpStore(url, api_key=get_settings().api_key)
    from stead.store.sqlite import SQLiteStore

    assert where.path is not None
    return SQLiteStore(where.path, synchronous=SQLITE_SYNCHRONOUS[durability], schema=schema)

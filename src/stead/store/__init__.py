"""Persistence behind one interface (`Store`); `open_store(url)` picks the backend by URL."""

from __future__ import annotations

from stead.errors import ConfigError
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


def open_store(url: str, *, durability: str = "process") -> Store:
    """Open the store at `url`: ``sqlite:///path/to/file.db`` (or a bare file path),
    ``postgresql://user@host:5432/dbname``, or a Stead server ``https://host:4300`` (remote
    mode; the API key comes from STEAD_API_KEY). A run's writes follow the run's own
    durability level; `durability` is the level of writes that belong to no run (claims,
    heartbeats, deployments)."""
    from stead.store.durability import (
        POSTGRES_SYNCHRONOUS_COMMIT,
        SQLITE_SYNCHRONOUS,
        check_level,
    )

    check_level(durability, "open_store")
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
    elif "://" not in url:
        path = url
    elif url.split("://", 1)[0] in ("postgresql", "postgres"):
        from stead.store.postgres import PostgresStore

        return PostgresStore(url, synchronous_commit=POSTGRES_SYNCHRONOUS_COMMIT[durability])
    elif url.split("://", 1)[0] in ("http", "https"):
        from stead.settings import get_settings
        from stead.store.http import HttpStore

        return HttpStore(url, api_key=get_settings().api_key)
    else:
        scheme = url.split("://", 1)[0]
        raise ConfigError(
            f"database URL scheme {scheme!r} is not supported; use sqlite:///PATH, "
            f"postgresql://USER@HOST:PORT/DBNAME or a server's http(s)://HOST:PORT "
            f"(got {url!r})")
    from stead.store.sqlite import SQLiteStore

    return SQLiteStore(path, synchronous=SQLITE_SYNCHRONOUS[durability])

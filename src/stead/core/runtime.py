"""Process-wide handles the engine shares between runs: open stores and result folders."""

from __future__ import annotations

import threading
from pathlib import Path

from stead.core import console
from stead.core.results import ResultFiles
from stead.settings import Settings, get_settings
from stead.store.base import Store

_stores: dict[str, Store] = {}
_lock = threading.Lock()


def store_for(url: str | None = None, *, schema: str = "auto",
              connect_wait_s: float | None = None) -> Store:
    """The process's store for `url` (default: STEAD_DATABASE_URL), opened on first use
    (`schema`, `connect_wait_s`: how, see `stead.store.open_store`)."""
    settings = get_settings()
    url = url or settings.database_url
    store = _stores.get(url)
    if store is None:
        with _lock:
            store = _stores.get(url)
            if store is None:
                from stead.store import open_store

                store = _stores[url] = open_store(url, durability=settings.durability,
                                                     schema=schema, connect_wait_s=connect_wait_s)
    return store


def result_files(database_url: str | None = None) -> ResultFiles:
    """Where large results of the database at `database_url` live (see Settings.results_dir)."""
    settings = get_settings()
    url = database_url or settings.database_url
    root = settings.results_dir
    if root is None:
        path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else url
        root = Path(path).expanduser().parent / "results" if "://" not in path else (
            settings.home / "results")
    return ResultFiles(root, settings.result_inline_max)


def configure_console() -> Settings:
    settings = get_settings()
    console.configure(settings.console)
    return settings


def close_stores() -> None:
    """Close every store this process opened (tests; long-lived processes switching databases)."""
    with _lock:
        for store in _stores.values():
            store.close()
        _stores.clear()

"""Global tag limits seen from a task: take a slot of every limited tag before the body runs,
renew it while the body runs, give it back after.

Limits live in the store (`stead limits set`); slots are leases, so a process that dies
holding one frees it when the lease lapses. Slot expiry is measured on the database's clock
(shared by every process); `time.time()` only stamps when a slot was taken.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from stead.core.context import RunContext
from stead.settings import get_settings
from stead.store.base import Store

MAX_POLL_S = 0.5  # longest wait between two asks for a concurrency slot


@contextmanager
def tag_slots(ctx: RunContext, tags: tuple[str, ...], holder: str) -> Iterator[None]:
    """Hold one slot of every limit among `tags` for the duration of the block."""
    store = ctx.store
    lease = get_settings().lease_seconds
    delay = 0.01
    while True:
        grant = store.take_slots(list(tags), holder, time.time(), lease)
        if grant.granted:
            break
        time.sleep(min(grant.wait, MAX_POLL_S) if grant.wait > 0.05 else delay)
        delay = min(delay * 2, MAX_POLL_S)
    if not grant.ids:
        yield
        return
    _KEEPER.hold(store, grant.ids, lease)
    try:
        yield
    finally:
        _KEEPER.drop(grant.ids)
        store.release_slots(grant.ids)


class _SlotKeeper:
    """One daemon thread per process that renews held concurrency slots every lease/3."""

    def __init__(self) -> None:
        self._held: dict[int, Store] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._lease = 30.0

    def hold(self, store: Store, ids: list[int], lease: float) -> None:
        with self._lock:
            self._lease = lease
            for i in ids:
                self._held[i] = store
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="stead-slots",
                                                daemon=True)
                self._thread.start()

    def drop(self, ids: list[int]) -> None:
        with self._lock:
            for i in ids:
                self._held.pop(i, None)

    def _loop(self) -> None:
        while True:
            time.sleep(self._lease / 3)
            with self._lock:
                by_store: dict[int, tuple[Store, list[int]]] = {}
                for i, store in self._held.items():
                    by_store.setdefault(id(store), (store, []))[1].append(i)
            for store, ids in by_store.values():
                try:
                    store.renew_slots(ids, self._lease)
                except Exception:  # the next round tries again
                    pass


_KEEPER = _SlotKeeper()

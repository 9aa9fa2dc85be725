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
    ids = take_waiting(store, list(tags), holder)
    assert ids is not None  # no deadline: it waits until granted
    if not ids:
        yield
        return
    hold(store, ids)
    try:
        yield
    finally:
        give_back(store, ids)


def take_waiting(store: Store, names: list[str], holder: str, occupy: int = 1,
                 deadline: float | None = None) -> list[int] | None:
    """Take `occupy` slots of every limit among `names` (all or none), asking again until
    granted; the slot ids (empty: none of them is limited), or None once `deadline`
    (`time.monotonic()`) passed first."""
    lease = get_settings().lease_seconds
    delay = 0.01
    while True:
        grant = store.take_slots(names, holder, time.time(), lease, occupy=occupy)
        if grant.granted:
            return grant.ids
        pause = next_pause(grant.wait, delay)
        delay = min(delay * 2, MAX_POLL_S)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            pause = min(pause, left)
        time.sleep(pause)


def next_pause(wait: float, delay: float) -> float:
    """How long to wait before asking again: the store's hint (a rate slot's expiry), else
    a backoff of `delay`, never more than MAX_POLL_S."""
    return min(wait, MAX_POLL_S) if wait > 0.05 else delay


def hold(store: Store, ids: list[int]) -> None:
    """Keep the concurrency slots `ids` renewed (by this process's keeper thread) until
    `give_back`."""
    _KEEPER.hold(store, ids, get_settings().lease_seconds)


def give_back(store: Store, ids: list[int]) -> None:
    """Stop renewing the slots `ids` and release them (rate slots run out by themselves)."""
    _KEEPER.drop(ids)
    store.release_slots(ids)


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

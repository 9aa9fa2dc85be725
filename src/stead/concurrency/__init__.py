"""Global limits around any block of code: `with stead.concurrency("db", occupy=2): ...`.

The limits are Stead's tag limits (`stead limits set NAME --concurrency N [--rate N --per S]`,
core/limits.py): the block holds `occupy` slots of every named limit, taken all at once or
not at all, across every process using the database, inside a flow or outside one. A
concurrency slot is a lease renewed while the block runs and given back when it ends (a
process that dies holding one frees it when its lease lapses); a rate slot runs out one
period after it was taken. `rate_limit(...)` takes rate slots only, and returns at once.

A limit that does not exist limits nothing: as Prefect does, the block runs and a warning
says so (in the run's log inside a flow); `strict=True` raises `LimitNotFound` instead. Asking
for more slots than a limit has can never be granted and is refused at once. The same
functions are importable as `stead.concurrency.sync.concurrency` and, for `async with` and
`await rate_limit(...)`, `stead.concurrency.asyncio` (Prefect's module paths).

Example:
    >>> import stead
    >>> with stead.concurrency("warehouse", occupy=1, timeout_seconds=30):
    ...     load_rows()
"""

from __future__ import annotations

# Not `import asyncio`: the submodule stead.concurrency.asyncio, once imported, is this
# package's attribute `asyncio` and would replace the standard library's module here.
import asyncio as _aio
import os
import sys
import threading
import time
import types
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

from stead.core.context import current_run, step_idempotency_key
from stead.core.limits import give_back, hold, next_pause, take_waiting
from stead.errors import ConcurrencyTimeout, ConfigError, LimitNotFound
from stead.settings import get_settings
from stead.store.base import Limit, Store

__all__ = ["ConcurrencySlots", "concurrency", "rate_limit"]

_ADVICE = "create it with: stead limits set {name} --concurrency N"


class ConcurrencySlots:
    """What `concurrency(...)` returns: a context manager, sync (`with`) or async
    (`async with`), holding the slots for the block. Safe to enter from several threads or
    tasks at once: each entry holds slots of its own.

    Example:
        >>> slots = stead.concurrency(["db", "api"], occupy=2)
        >>> with slots:
        ...     sync_everything()
    """

    def __init__(self, names: str | Sequence[str], occupy: int = 1,
                 timeout_seconds: float | None = None, strict: bool = False,
                 mode: str = "concurrency") -> None:
        listed = [names] if isinstance(names, str) else list(names)
        if not all(isinstance(n, str) and n for n in listed):
            raise ConfigError(f"concurrency(names={names!r}): give a limit's name or a list of "
                              "names, e.g. concurrency('warehouse')")
        if isinstance(occupy, bool) or not isinstance(occupy, int) or occupy < 1:
            raise ConfigError(f"concurrency(occupy={occupy!r}): the slots to hold must be a "
                              "whole number >= 1")
        if timeout_seconds is not None and (isinstance(timeout_seconds, bool) or not
                                            isinstance(timeout_seconds, int | float) or
                                            not timeout_seconds >= 0):
            raise ConfigError(f"concurrency(timeout_seconds={timeout_seconds!r}): seconds >= 0,"
                              " or None to wait as long as it takes")
        self.names = list(dict.fromkeys(listed))
        self.occupy = occupy
        self.timeout_seconds = timeout_seconds
        self.strict = strict
        self.mode = mode
        # What each `with` holds, per thread and per asyncio task (each has its own
        # context), so one object shared by threads gives back only its own block's slots.
        self._held: ContextVar[tuple[tuple[Store, list[int]], ...]] = ContextVar(
            "stead_concurrency_held", default=())

    def __repr__(self) -> str:
        return f"<stead.concurrency {self.names} occupy={self.occupy}>"

    # -- sync ------------------------------------------------------------------------------
    def __enter__(self) -> ConcurrencySlots:
        store = _store()
        names = self._limited(store.list_limits())
        ids: list[int] = []
        if names:
            found = take_waiting(store, names, _holder(), self.occupy, self._deadline())
            if found is None:
                raise self._timeout()
            ids = found
        self._push(store, ids)
        return self

    def __exit__(self, *exc: Any) -> None:
        store, ids = self._pop()
        if ids:
            give_back(store, ids)

    # -- async: the store's calls run in a thread, the waits on the event loop -------------
    async def __aenter__(self) -> ConcurrencySlots:
        store = _store()
        names = self._limited(await _aio.to_thread(store.list_limits))
        ids: list[int] = []
        if names:
            deadline, holder = self._deadline(), _holder()
            lease, delay = get_settings().lease_seconds, 0.01
            while True:
                grant = await _aio.to_thread(store.take_slots, names, holder, time.time(),
                                                lease, occupy=self.occupy)
                if grant.granted:
                    ids = grant.ids
                    break
                pause = next_pause(grant.wait, delay)
                delay = min(delay * 2, 0.5)
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise self._timeout()
                    pause = min(pause, left)
                await _aio.sleep(pause)
        self._push(store, ids)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        store, ids = self._pop()
        if ids:
            await _aio.to_thread(give_back, store, ids)

    # -- helpers ---------------------------------------------------------------------------
    def _limited(self, limits: list[Limit]) -> list[str]:
        """The names that have a limit; a missing one warns (or raises, when strict); an
        `occupy` more than a limit allows is refused."""
        known = {lim.name: lim for lim in limits}
        missing = [n for n in self.names if n not in known]
        if missing:
            shown = ", ".join(repr(n) for n in missing)
            if self.strict:
                raise LimitNotFound(f"concurrency({shown}): no such limit; "
                                    + _ADVICE.format(name=missing[0]))
            from stead.core.console import get_logger

            get_logger().warning("concurrency limit %s does not exist, so it limits nothing "
                                 "here (%s)", shown, _ADVICE.format(name=missing[0]))
        present = [known[n] for n in self.names if n in known]
        for lim in present:
            if self.mode == "rate_limit" and lim.rate is None:
                raise ConfigError(f"rate_limit({lim.name!r}): the limit has no rate; set one "
                                  f"with: stead limits set {lim.name} --rate N --per SECONDS")
            for kind, allowed in (("at once", lim.concurrency), ("per period", lim.rate)):
                if allowed is not None and self.occupy > allowed:
                    raise ConfigError(
                        f"concurrency({lim.name!r}, occupy={self.occupy}): the limit allows "
                        f"{allowed} {kind}, so {self.occupy} slots could never be taken; ask "
                        f"for fewer or raise it with: stead limits set {lim.name} ...")
        return [lim.name for lim in present]

    def _deadline(self) -> float | None:
        if self.timeout_seconds is None:
            return None
        return time.monotonic() + self.timeout_seconds

    def _timeout(self) -> ConcurrencyTimeout:
        shown = ", ".join(repr(n) for n in self.names)
        return ConcurrencyTimeout(
            f"could not take {self.occupy} slot(s) of limit {shown} within "
            f"{self.timeout_seconds:g} s: other holders have them. `stead limits ls` shows "
            "the limit; wait longer (timeout_seconds=) or raise it (stead limits set "
            f"{self.names[0]} --concurrency N)", names=self.names, occupy=self.occupy)

    def _push(self, store: Store, ids: list[int]) -> None:
        if ids:
            hold(store, ids)
        self._held.set((*self._held.get(), (store, ids)))

    def _pop(self) -> tuple[Store, list[int]]:
        *rest, last = self._held.get()
        self._held.set(tuple(rest))
        return last


def _store() -> Store:
    """The running flow's store, else the process's (STEAD_DATABASE_URL)."""
    ctx = current_run.get()
    if ctx is not None:
        return ctx.store
    from stead.core.runtime import store_for

    return store_for()


def _holder() -> str:
    """Who holds the slots, as `stead limits` shows it: the run and step (so cancelling the
    run frees them), else this host, process and thread."""
    key = step_idempotency_key()
    if key is not None:
        return key
    return f"{os.uname().nodename}:{os.getpid()}:{threading.get_ident()}"


def concurrency(names: str | Sequence[str], occupy: int = 1,
                timeout_seconds: float | None = None, strict: bool = False
                ) -> ConcurrencySlots:
    """Hold `occupy` slots of each named limit for a `with` (or `async with`) block.

    Waits until every slot is free (all are taken at once), or at most `timeout_seconds`,
    then raises `ConcurrencyTimeout` (a `TimeoutError`) naming the limit. A limit that does
    not exist limits nothing and logs a warning; with `strict=True` it raises `LimitNotFound`.
    Create limits with `stead limits set NAME --concurrency N` (and `--rate N --per S`).

    Example:
        >>> from stead import concurrency, flow
        >>> @flow
        ... def load() -> None:
        ...     with concurrency("warehouse", occupy=2, timeout_seconds=60):
        ...         copy_tables()
    """
    return ConcurrencySlots(names, occupy, timeout_seconds, strict)


def rate_limit(names: str | Sequence[str], occupy: int = 1,
               timeout_seconds: float | None = None, strict: bool = False) -> None:
    """Wait until `occupy` starts are allowed by each named limit's rate, take them, return.

    The limits need a rate (`stead limits set NAME --rate N --per SECONDS`); a concurrency
    slot such a limit also has is given back at once.

    Example:
        >>> from stead.concurrency import rate_limit
        >>> for page in pages:
        ...     rate_limit("github-api")      # at most N calls per period, everywhere
        ...     fetch(page)
    """
    slots = ConcurrencySlots(names, occupy, timeout_seconds, strict, mode="rate_limit")
    with slots:
        pass


async def arate_limit(names: str | Sequence[str], occupy: int = 1,
                      timeout_seconds: float | None = None, strict: bool = False) -> None:
    """`rate_limit` for async code: `await arate_limit("github-api")`.

    Example:
        >>> await arate_limit("github-api", occupy=5)
    """
    async with ConcurrencySlots(names, occupy, timeout_seconds, strict, mode="rate_limit"):
        pass


class _CallableModule(types.ModuleType):
    """This package is also `stead.concurrency` the function (exported at the top level):
    importing the package binds `stead.concurrency` to it, so whichever of the two a name
    refers to, calling it does the same."""

    def __call__(self, *args: Any, **kwargs: Any) -> ConcurrencySlots:
        return concurrency(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

# And the function leads to the submodules, so `import stead.concurrency.sync as s` works
# when `stead.concurrency` names the function (Python reaches it through that attribute).
from stead.concurrency import asyncio as _asyncio_module  # noqa: E402
from stead.concurrency import sync as _sync_module  # noqa: E402

concurrency.sync = _sync_module  # type: ignore[attr-defined]
concurrency.asyncio = _asyncio_module  # type: ignore[attr-defined]

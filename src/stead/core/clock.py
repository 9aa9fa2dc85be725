"""Time as a dependency: the engine asks a Clock for the time and for sleeps.

Tests pass a `FakeClock` (``my_flow.with_options(clock=FakeClock())``) so retry delays and
timestamps are exact and instant instead of patched or slept through.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    def sleep(self, seconds: float) -> None: ...

    async def asleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    now = staticmethod(time.time)
    sleep = staticmethod(time.sleep)

    async def asleep(self, seconds: float) -> None:
        import asyncio

        await asyncio.sleep(seconds)


class FakeClock:
    """A clock that only moves when slept on; `sleeps` lists every requested sleep.

    Example:
        >>> clock = FakeClock(start=1000.0)
        >>> clock.sleep(2.5); clock.now()
        1002.5
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self._now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)

    def advance(self, seconds: float) -> None:
        self._now += seconds


SYSTEM_CLOCK = SystemClock()

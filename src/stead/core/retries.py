"""Retry policies: how many times, how long to wait between attempts, and for which errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from stead.errors import ConfigError

DelaySpec = float | int | Sequence[float] | Callable[[int], float] | None
RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]


@dataclass(frozen=True, slots=True)
class RetryDelays:
    """Prefect's form of a delay: a function of the number of retries returning one delay
    per retry. Resolved into that list when the retry policy is built, so a copy made with
    ``with_options(retries=5)`` gets five delays.

    Example:
        >>> RetryDelays(lambda retries: [1.0] * retries)(3)
        [1.0, 1.0, 1.0]
    """

    fn: Callable[[int], Sequence[float]]

    def __call__(self, retries: int) -> list[float]:
        return [float(d) for d in self.fn(retries)]


@dataclass(frozen=True, slots=True)
class _Doubling:
    factor: float

    def __call__(self, retries: int) -> list[float]:
        return [self.factor * 2 ** n for n in range(retries)]


@dataclass(frozen=True, slots=True)
class Jittered:
    """A delay spread at random over ``delay * (1 +/- factor)`` (never below 0): what
    ``retry_jitter_factor=`` makes of the task's delay, so many failing calls do not all
    retry at the same instant. Its mean is the delay (for factors up to 1).

    Example:
        >>> RetryPolicy.build(2, Jittered(10, 0.5), None, "task 't'").delay_before(2) <= 15
        True
    """

    delay: DelaySpec
    factor: float


@dataclass(frozen=True, slots=True)
class ExponentialBackoff:
    """Wait ``base * factor**(attempt-1)`` seconds (capped at `maximum`), +/- `jitter` share.

    Example:
        >>> @task(retries=5, retry_delay=exponential_backoff(base=1, maximum=30))
        ... def call_api(): ...
    """

    base: float = 1.0
    factor: float = 2.0
    maximum: float = 60.0
    jitter: float = 0.2

    def __call__(self, attempt: int) -> float:
        delay = min(self.maximum, self.base * self.factor ** (attempt - 1))
        if self.jitter:
            import random

            delay *= 1 + random.uniform(-self.jitter, self.jitter)
        return max(0.0, delay)


def exponential_backoff(base: float = 1.0, factor: float = 2.0, maximum: float = 60.0,
                        jitter: float = 0.2, *, backoff_factor: float | None = None
                        ) -> ExponentialBackoff | RetryDelays:
    """A retry_delay that doubles (by `factor`) each attempt, with random jitter.

    Prefect's spelling, ``exponential_backoff(backoff_factor=10)``, gives Prefect's form: a
    function of the number of retries returning the delays ``10, 20, 40, ...`` (no cap, no
    jitter; add ``retry_jitter_factor=`` for that). Both forms are accepted by
    ``retry_delay=`` and ``retry_delay_seconds=``.

    Example:
        >>> @task(retries=4, retry_delay=exponential_backoff(base=2, maximum=60))
        ... def fetch(url): ...
        >>> exponential_backoff(base=1, jitter=0)(3)   # seconds before the 4th attempt
        4.0
        >>> exponential_backoff(backoff_factor=10)(3)  # Prefect's form: delays for 3 retries
        [10.0, 20.0, 40.0]
    """
    if backoff_factor is not None:
        if not isinstance(backoff_factor, int | float) or backoff_factor < 0:
            raise ConfigError(f"exponential_backoff: backoff_factor must be seconds >= 0, "
                              f"got {backoff_factor!r}")
        return RetryDelays(_Doubling(float(backoff_factor)))
    return ExponentialBackoff(base, factor, maximum, jitter)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 0
    delay: DelaySpec = None
    retry_on: RetryOn | None = None
    jitter: float = 0.0  # each delay spread over delay * (1 +/- jitter)

    @classmethod
    def build(cls, retries: int, delay: DelaySpec | RetryDelays | Jittered,
              retry_on: RetryOn | None, owner: str) -> RetryPolicy:
        if not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"{owner}: retries must be a whole number >= 0, got {retries!r}")
        jitter = 0.0
        if isinstance(delay, Jittered):
            if not isinstance(delay.factor, int | float) or delay.factor < 0:
                raise ConfigError(f"{owner}: retry_jitter_factor must be a number >= 0, "
                                  f"got {delay.factor!r}")
            delay, jitter = delay.delay, float(delay.factor)
        if isinstance(delay, RetryDelays):
            delay = delay(retries)
        if isinstance(delay, int | float) and delay < 0:
            raise ConfigError(f"{owner}: retry_delay must be >= 0 seconds, got {delay!r}")
        if isinstance(delay, Sequence) and not all(
                isinstance(d, int | float) and d >= 0 for d in delay):
            raise ConfigError(f"{owner}: retry_delay list must hold seconds >= 0, got {delay!r}")
        if retry_on is not None and not callable(retry_on) and not (
                isinstance(retry_on, tuple) and all(isinstance(t, type) for t in retry_on)):
            raise ConfigError(f"{owner}: retry_on must be an exception type, a tuple of them, "
                              f"or a function(exc) -> bool, got {retry_on!r}")
        return cls(retries, delay, retry_on, jitter)

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number `attempt` (2 is the first retry)."""
        delay = self._delay(attempt)
        if self.jitter and delay:
            import random

            delay = max(0.0, delay * (1 + random.uniform(-self.jitter, self.jitter)))
        return delay

    def _delay(self, attempt: int) -> float:
        d = self.delay
        if d is None:
            return 0.0
        if isinstance(d, int | float):
            return float(d)
        if callable(d):
            return float(d(attempt - 1))
        if not d:
            return 0.0
        return float(d[min(attempt - 2, len(d) - 1)])

    def should_retry(self, exc: BaseException, attempts_made: int, call: Any = None) -> bool:
        """Whether another attempt follows; `call` (the task and its step) is handed to a
        condition that asks for it, such as Prefect's ``retry_condition_fn``."""
        if attempts_made > self.retries:
            return False
        cond = self.retry_on
        if cond is None:
            return True
        if isinstance(cond, type | tuple):
            return isinstance(exc, cond)
        for_call = getattr(cond, "for_call", None)
        if for_call is not None:
            return bool(for_call(exc, call))
        return bool(cond(exc))

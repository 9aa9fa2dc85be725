"""Retry policies: how many times, how long to wait between attempts, and for which errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stead.errors import ConfigError

DelaySpec = float | int | Sequence[float] | Callable[[int], float] | None
RetryOn = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]


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
                        jitter: float = 0.2) -> ExponentialBackoff:
    """A retry_delay that doubles (by `factor`) each attempt, with random jitter.

    Example:
        >>> @task(retries=4, retry_delay=exponential_backoff(base=2, maximum=60))
        ... def fetch(url): ...
        >>> exponential_backoff(base=1, jitter=0)(3)   # seconds before the 4th attempt
        4.0
    """
    return ExponentialBackoff(base, factor, maximum, jitter)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    retries: int = 0
    delay: DelaySpec = None
    retry_on: RetryOn | None = None

    @classmethod
    def build(cls, retries: int, delay: DelaySpec, retry_on: RetryOn | None,
              owner: str) -> RetryPolicy:
        if not isinstance(retries, int) or retries < 0:
            raise ConfigError(f"{owner}: retries must be a whole number >= 0, got {retries!r}")
        if isinstance(delay, int | float) and delay < 0:
            raise ConfigError(f"{owner}: retry_delay must be >= 0 seconds, got {delay!r}")
        if isinstance(delay, Sequence) and not all(
                isinstance(d, int | float) and d >= 0 for d in delay):
            raise ConfigError(f"{owner}: retry_delay list must hold seconds >= 0, got {delay!r}")
        if retry_on is not None and not callable(retry_on) and not (
                isinstance(retry_on, tuple) and all(isinstance(t, type) for t in retry_on)):
            raise ConfigError(f"{owner}: retry_on must be an exception type, a tuple of them, "
                              f"or a function(exc) -> bool, got {retry_on!r}")
        return cls(retries, delay, retry_on)

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number `attempt` (2 is the first retry)."""
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

    def should_retry(self, exc: BaseException, attempts_made: int) -> bool:
        if attempts_made > self.retries:
            return False
        cond = self.retry_on
        if cond is None:
            return True
        if isinstance(cond, type | tuple):
            return isinstance(exc, cond)
        return bool(cond(exc))

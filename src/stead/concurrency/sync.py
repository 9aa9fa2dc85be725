"""Prefect's module path for the sync limits: `from stead.concurrency.sync import concurrency`.

Example:
    >>> from stead.concurrency.sync import concurrency, rate_limit
    >>> with concurrency("warehouse", occupy=1):
    ...     load_rows()
"""

from stead.concurrency import ConcurrencySlots, concurrency, rate_limit

__all__ = ["ConcurrencySlots", "concurrency", "rate_limit"]

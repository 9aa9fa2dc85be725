"""Prefect's module path for the async limits: `async with concurrency(...)` and
`await rate_limit(...)`.

Example:
    >>> from stead.concurrency.asyncio import concurrency, rate_limit
    >>> async def load() -> None:
    ...     async with concurrency("warehouse", occupy=1):
    ...         await copy_rows()
    ...     await rate_limit("github-api")
"""

from stead.concurrency import ConcurrencySlots, concurrency
from stead.concurrency import arate_limit as rate_limit

__all__ = ["ConcurrencySlots", "concurrency", "rate_limit"]

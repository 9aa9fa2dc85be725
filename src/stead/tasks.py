"""Prefect's ``prefect.tasks`` names: `task`, `Task`, `exponential_backoff`, `task_input_hash`.

Code that imports them from ``prefect.tasks`` works with ``stead.tasks``.

Example:
    >>> from datetime import timedelta
    >>> from stead.tasks import exponential_backoff, task, task_input_hash
    >>> @task(cache_key_fn=task_input_hash, cache_expiration=timedelta(days=1),
    ...       retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=10))
    ... def fetch(url: str) -> bytes: ...
"""

from __future__ import annotations

from typing import Any

from stead.core.retries import exponential_backoff
from stead.core.task import Task, task

__all__ = ["Task", "exponential_backoff", "task", "task_input_hash"]


def task_input_hash(context: Any, arguments: dict[str, Any]) -> str | None:
    """A `cache_key_fn`: a digest of the task's source and the call's arguments.

    Calls with equal arguments of an unchanged task share a key (in any run); a changed task
    body gets new keys. Arguments that have no canonical form give None: that call is not
    cached.

    Example:
        >>> from stead import task
        >>> @task(cache_key_fn=task_input_hash)
        ... def geocode(city: str) -> tuple[float, float]: ...
    """
    import hashlib

    from stead.core.caching import _source_digest
    from stead.core.serialization import canonical

    try:
        inputs = canonical(arguments)
    except Exception:  # not canonically encodable: do not cache this call
        return None
    source = _source_digest(context.task.fn)
    return hashlib.sha256(f"{source}\x1f{inputs}".encode()).hexdigest()

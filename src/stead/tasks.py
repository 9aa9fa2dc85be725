"""Prefect's ``prefect.tasks`` names: the task decorator and its retry helper.

Example:
    >>> from stead.tasks import exponential_backoff, task
    >>> @task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=10))
    ... def fetch(url: str) -> bytes: ...
"""

from stead.core.retries import exponential_backoff
from stead.core.task import Task, task

__all__ = ["Task", "exponential_backoff", "task"]

"""Prefect's ``prefect.task_runners`` names: where submitted tasks run.

Example:
    >>> from stead import flow
    >>> from stead.task_runners import ThreadPoolTaskRunner
    >>> @flow(task_runner=ThreadPoolTaskRunner(max_workers=8))
    ... def crawl(urls: list[str]) -> list[bytes]: ...
"""

from stead.core.runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

__all__ = ["ProcessPoolTaskRunner", "TaskRunner", "ThreadPoolTaskRunner"]

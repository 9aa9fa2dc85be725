"""Tasks at module level, importable by process-pool workers."""

import os

from stead import task


@task
def cpu_square(x: int) -> int:
    return sum(x for _ in range(x)) if x else 0


@task
def describe_pid(_: int) -> int:
    return os.getpid()

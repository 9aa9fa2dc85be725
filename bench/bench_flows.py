"""Flows the worker benchmark (bench/workers.py) enqueues and its workers execute.

Workers import this module by name (`bench_flows`): the benchmark puts bench/ on their
PYTHONPATH.
"""

import time

from stead import flow, task


@task
def bump(i: int) -> int:
    return i + 1


@flow
def three(i: int) -> int:
    """A run of 3 trivial tasks: what the throughput and latency figures are made of."""
    return bump(bump(bump(i)))


@task
def nap(i: int, seconds: float) -> int:
    time.sleep(seconds)
    return i


@flow
def slow(steps: int, seconds: float) -> int:
    """A run that stays in flight: `steps` tasks of `seconds` each (the recovery figure)."""
    return sum(nap(i, seconds) for i in range(steps))

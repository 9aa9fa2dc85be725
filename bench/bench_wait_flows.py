"""Flows the benchmark of durable waits (bench/waits.py) enqueues and its workers execute.

Workers import this module by name (`bench_wait_flows`): the benchmark puts bench/ on their
PYTHONPATH.
"""

import datetime as dt
import time

import stead
from stead import flow, task


@task
def bump(i: int) -> int:
    time.sleep(0.1)  # long enough for every idle child of a worker to take a warm-up run
    return i + 1


@flow
def warm(i: int) -> int:
    """A run that warms a worker's child up: imports this module, records a task step, a
    durable sleep of 0 s and a published status (what the measured runs' steps use)."""
    stead.sleep(0)
    stead.set_status("warm", i)
    return bump(i)


@flow
def echo(n: int) -> int:
    """Answer `n` requests on "ping" with their own payload (the round-trip figures)."""
    for _ in range(n):
        msg = stead.receive("ping")
        assert msg is not None
        msg.reply(msg.payload)
    return n


@flow
def hour_nap() -> float:
    """Sleep one hour durably (on a worker: parked); return the wall time it woke."""
    stead.sleep(3600)
    return time.time()


@flow
def alarm(at: float) -> float:
    """Sleep until the epoch second `at`; return the wall time it woke (the lateness)."""
    stead.sleep(until=dt.datetime.fromtimestamp(at, dt.UTC))
    return time.time()

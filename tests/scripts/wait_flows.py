"""Flows with durable waits that tests enqueue and workers execute, imported by module name
(`wait_flows`). Each task appends "RUN_ID/STEP_KEY PID" to the file named by `out`: the side
effects the tests count."""

import datetime as dt
import os

import stead
from stead import flow, step_idempotency_key, task


@task
def effect(out: str, label: str) -> str:
    with open(out, "a") as f:
        f.write(f"{step_idempotency_key()} {os.getpid()} {label}\n")
    return label


@flow
def three_days(out: str) -> str:
    """A step, a three-day durable sleep (parks on a worker), another step."""
    effect(out, "before")
    stead.sleep(dt.timedelta(days=3))
    return effect(out, "after")


@flow
def quick(out: str) -> str:
    return effect(out, "quick")


@flow
def waits_for_payment(out: str) -> str:
    """A step, then a message (parks on a worker when it takes longer than the setting)."""
    effect(out, "before")
    stead.set_status("stage", "waiting for payment")
    msg = stead.receive("payment", timeout=dt.timedelta(days=1))
    stead.set_status("stage", "paid" if msg is not None else "timed out")
    if msg is not None:
        stead.set_status("ref", msg.payload["ref"])
    return effect(out, "paid" if msg is not None else "timeout")


@flow
def sleeps(seconds: float) -> float:
    """Sleep `seconds` durably; return the wall time it woke (for lateness)."""
    import time

    stead.sleep(seconds)
    return time.time()


@flow
def echo(n: int) -> int:
    """Answer `n` requests on "ping" (the round-trip benchmark and tests)."""
    for _ in range(n):
        msg = stead.receive("ping")
        assert msg is not None
        msg.reply(msg.payload)
    return n


@task
def slow_effect(out: str, label: str, seconds: float) -> str:
    import time

    time.sleep(seconds)
    return effect.fn(out, label)


@flow
def child_double(n: int, out: str, seconds: float = 0.0) -> int:
    slow_effect(out, f"child-{n}", seconds)
    return n * 2


@flow
def parent_waits(out: str, seconds: float = 0.0) -> int:
    """Enqueue a child (a step: never twice) and wait for its result (parks on a worker)."""
    effect(out, "parent-before")
    handle = child_double.enqueue(n=21, out=out, seconds=seconds, queue="q")
    value = handle.result()
    effect(out, "parent-after")
    return value


@task(retries=1, retry_delay=3600)
def flaky(out: str) -> str:
    """Fails on its first attempt; retried an hour later."""
    with open(out, "a") as f:
        f.write(f"{step_idempotency_key()} {os.getpid()} attempt\n")
    with open(out) as f:
        first = len(f.readlines()) == 1
    if first:
        raise RuntimeError("first attempt fails")
    return "ok"


@flow
def retries_in_an_hour(out: str) -> str:
    return flaky(out)


@flow
async def three_days_async(out: str) -> str:
    """The same in an async flow: the park leaves through the event loop."""
    effect(out, "before")
    stead.sleep(dt.timedelta(days=3))
    return effect(out, "after")

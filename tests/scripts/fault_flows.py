"""Flows of the fault matrix (tests/faults/). Workers import them by module name
(`fault_flows`); direct-flow scenarios run this file as a script:

    python fault_flows.py FLOW RUN_ID '{"out": "/tmp/x", "n": 20}'

Every task body first appends "RUN_ID STEP_KEY PID" to the file named by its `out` parameter,
in one write to a file opened O_APPEND (lines of concurrent processes never interleave): the
body executions the tests count and compare with the recorded steps.
"""

import json
import os
import sys
import time

from stead import flow, step_idempotency_key, task


def executed(out: str) -> None:
    """Count one execution of the current task body."""
    run_id, _, step = (step_idempotency_key() or "?/?").rpartition("/")
    fd = os.open(out, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{run_id} {step} {os.getpid()}\n".encode())
    finally:
        os.close(fd)


@task
def step(out: str, i: int, seconds: float = 0.0) -> int:
    executed(out)
    if seconds:
        time.sleep(seconds)
    return i


@flow
def chain(out: str, n: int, seconds: float = 0.0) -> int:
    """n sequential steps of `seconds` each; returns sum(range(n))."""
    return sum(step(out, i, seconds) for i in range(n))


@task(tags=["slot"])
def hold_slot(out: str, seconds: float) -> float:
    """Holds one slot of the tag limit "slot" (if one is set) while it runs."""
    executed(out)
    time.sleep(seconds)
    return seconds


@flow
def slotted(out: str, n: int, seconds: float) -> float:
    return sum(hold_slot(out, seconds) for _ in range(n))


@task
def blob(out: str, i: int, size: int) -> str:
    """A result of `size` characters: over 64 KiB it goes to a file in the results folder."""
    executed(out)
    return str(i % 10) * size


@flow
def blobs(out: str, n: int, size: int) -> int:
    return sum(len(blob(out, i, size)) for i in range(n))


@task
def flaky(out: str) -> int:
    executed(out)
    raise ValueError("this step always fails")


@flow
def caught(out: str, n: int, seconds: float) -> int:
    """A step that fails and that the flow catches, then a chain of steps to kill it in."""
    try:
        flaky(out)
    except ValueError:
        pass
    return sum(step(out, i, seconds) for i in range(n))


FLOWS = {"chain": chain, "slotted": slotted, "blobs": blobs, "caught": caught}

if __name__ == "__main__":
    name, run_id, params = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    print(FLOWS[name].with_options(run_id=run_id)(**params))

"""Flows that tests enqueue and workers execute, imported by module name (`queued_flows`).

Each task appends "RUN_ID STEP_KEY PID" to the file named by the `out` parameter: the side
effects the worker tests count. TASK_SLEEP slows every task (so kills land mid-run).
"""

import os
import time

from stead import flow, step_idempotency_key, task

SLEEP = float(os.environ.get("TASK_SLEEP", "0"))


@task
def effect(out: str, i: int) -> int:
    if SLEEP:
        time.sleep(SLEEP)
    with open(out, "a") as f:
        f.write(f"{step_idempotency_key()} {os.getpid()}\n")
    return i


@flow
def twenty(out: str, n: int = 20) -> int:
    return sum(effect(out, i) for i in range(n))


@task(tags=["db"])
def limited(out: str, seconds: float) -> float:
    time.sleep(seconds)
    with open(out, "a") as f:
        f.write(f"{step_idempotency_key()} {os.getpid()}\n")
    return seconds


@flow
def tagged(out: str, n: int, seconds: float) -> float:
    return sum(limited(out, seconds) for _ in range(n))


@flow
def hang(out: str, seconds: float) -> int:
    """Records one step, then sleeps (a run to kill or pause in the middle), then another."""
    effect(out, 0)
    time.sleep(seconds)
    return effect(out, 1)


@task
def process_group() -> int:
    """The process group of the process running it: which worker executed the step."""
    return os.getpgid(0)


@flow
def fenced(out: str, seconds: float) -> int:
    """One step, a pause (to kill or stop the worker in), then a step that says who ran it."""
    effect(out, 0)
    time.sleep(seconds)
    return process_group()


@flow
def dies_once(marker: str, always: bool = False) -> str:
    """Kills its own process the first time (every time with `always`), as a crash would."""
    effect(marker + ".out", 0)
    if always or not os.path.exists(marker):
        open(marker, "w").close()
        os.kill(os.getpid(), 9)
    return "survived"


@task(tags=["db"])
def announce_holding_slot(out: str, seconds: float) -> float:
    """Holds a slot of the `db` limit: writes its line (with its pid) first, then sleeps."""
    with open(out, "a") as f:
        f.write(f"{step_idempotency_key()} {os.getpid()}\n")
    time.sleep(seconds)
    return seconds


@flow
def holds_slot(out: str, seconds: float) -> float:
    return announce_holding_slot(out, seconds)


@task
def always_fails(out: str) -> None:
    with open(out, "a") as f:
        f.write(f"{step_idempotency_key()} {os.getpid()}\n")
    raise LookupError("no such entry")


@task
def needs_marker(out: str, marker: str) -> str:
    with open(out, "a") as f:
        f.write(f"{step_idempotency_key()} {os.getpid()}\n")
    if not os.path.exists(marker):
        raise RuntimeError(f"{marker} is missing")
    return "ok"


@flow
def handled_then_fails(out: str, marker: str) -> str:
    """A failure the flow handles (step 1), then one that fails the run until `marker`
    exists (step 2): resuming the failed run must rerun step 2 only."""
    try:
        always_fails(out)
    except LookupError:
        pass
    return needs_marker(out, marker)


@flow
def parent_of_two(out: str) -> int:
    """Two child flows (child runs created by whoever executes it) and a tagged task."""
    return twenty(out, 2) + twenty(out, 3) + int(limited(out, 0.01))

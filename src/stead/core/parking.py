"""Parking: a run on a worker that must wait long gives its process back.

A durable wait (core/waits.py) that would last longer than STEAD_PARK_AFTER_SECONDS, in a run
a worker executes, raises `Park` with what the run waits for. `Park` is a BaseException, so
the flow's own `except Exception` does not swallow it; `Execution` (core/execution.py) catches
it, and `park` records the run as Paused with its wait, its lease and tag slots released, in
one transaction (`WaitStore.park_run`). The worker's child process then serves other runs.
When the wait is over the store moves the run to Pending and any worker claims it: the run
replays its recorded steps and the wait's step finds its due time passed (or its message
stored) and goes on.

A run called directly from a script has nothing to hand its waiting to: it waits in its
process, and stays resumable at the remaining time.

    >>> from stead.store.waits import WaitRecord, describe_wait
    >>> describe(WaitRecord("r", "message", "3", topic="payment"))
    "waiting for a message on 'payment'"
"""

from __future__ import annotations

import threading

from stead.core.context import Frame, RunContext, current_frame
from stead.settings import get_settings
from stead.store.waits import WaitRecord, describe_wait


class Park(BaseException):
    """Raised inside a run on a worker to park it (never seen by the flow's code)."""

    def __init__(self, wait: WaitRecord) -> None:
        super().__init__(describe_wait(wait))
        self.wait = wait


def can_park(ctx: RunContext) -> bool:
    """Whether this run may be parked now: it is a root run a worker claimed (it has a queue
    and a lease), the wait is in the flow's own body, on its own thread (not inside a task,
    a submitted task's thread or a child flow run in this process), and no submitted task is
    still in flight."""
    if ctx.fence is None or ctx.run.queue is None or ctx.fence.run_id != ctx.run.id:
        return False
    if threading.current_thread() is not threading.main_thread():
        return False  # a submitted task's thread: only the flow's own thread can let go
    frame = current_frame.get(None)
    if not isinstance(frame, Frame) or frame.step is not None:
        return False
    dispatcher = ctx.dispatcher
    return dispatcher is None or not dispatcher.busy()


def park_after() -> float:
    """Waits longer than this many seconds park a run on a worker (the setting)."""
    return get_settings().park_after_seconds

"""Waiting for a child run inside a flow, durably: `RunHandle.result()` called in a flow.

The wait is a step of the parent. A child that has stopped gives its outcome at once (its
value, or its failure raised) and the step records it, so a resumed parent replays it. A
child still going is waited for in place; on a worker, after STEAD_PARK_AFTER_SECONDS, the
parent is parked (core/parking.py) and woken when the child finishes (the child's executor
calls `WaitStore.notify_finished`; core/outcomes.py). A parked parent also looks again every
RECHECK_S, in case the child was stopped where no engine records its end (say, Crashed after
too many recoveries).

    >>> @stead.flow
    ... def parent() -> int:
    ...     handle = child.enqueue(3, queue="heavy")   # a step: never enqueued twice
    ...     return handle.result()                     # parks the parent on a worker
"""

from __future__ import annotations

import json
import time
from typing import Any

from stead.core.context import RunContext
from stead.core.parking import Park, can_park, park_after
from stead.core.steps import Step
from stead.store.waits import WaitRecord

RECHECK_S = 600.0


def child_result(ctx: RunContext, run_id: str, timeout: float | None,
                 database_url: str | None) -> Any:
    """The outcome of run `run_id` as a step of the run of `ctx` (see the module)."""
    from stead.core.handles import _stopped, outcome

    step = Step(ctx, "stead.child_result", "child", None)
    if step.replayed:
        return step.replay()
    step.start_attempt()
    clock, store = ctx.clock, ctx.store
    if step.begun is not None:
        step.params = step.begun
        deadline = json.loads(step.begun).get("deadline")
    else:
        deadline = None if timeout is None else clock.now() + timeout
        step.params = json.dumps({"run": run_id, "deadline": deadline})
    since = clock.now()
    begun = step.begun is not None
    interval = 0.005
    while True:
        run = store.get_run(run_id)
        if _stopped(run):
            if begun:
                store.clear_wait(ctx.run.id, ctx.fence)
            try:
                value = outcome(run, database_url)
            except Exception as exc:
                step.failed(exc, retry=False, child_run_id=run_id)
                raise
            return step.succeeded(value, child_run_id=run_id)
        now = clock.now()
        if deadline is not None and now >= deadline:
            step.abandoned()  # not recorded: a later call may wait again
            raise TimeoutError(
                f"run {run_id} is still {run.state} after {timeout:g} s: wait longer "
                f"(result(timeout=...)), or see it with `stead runs show {run_id}`")
        if not begun:
            from stead.core.waits import begin_wait

            begin_wait(ctx, step)
            begun = True
        if now - since >= park_after() and can_park(ctx):
            step.abandoned()
            wake = now + RECHECK_S if deadline is None else min(deadline, now + RECHECK_S)
            raise Park(WaitRecord(ctx.run.id, "child", step.key, topic=run_id, wake_at=wake,
                                  since=since))
        interval = min(interval * 2, 0.5)
        time.sleep(interval)

"""A start or resume of a flow run whose id is already recorded: the recorded outcome as the
answer (Completed), a refusal (the same id with another call, a run cancelled, enqueued or
still running in a live process), or taking the run over from a dead owner (marked Crashed,
a compare-and-set on its lease epoch); and which failed steps a resume runs again.

`RunTakeover` is a part of `Execution` (core/execution.py), which mixes it in. See
docs/architecture.md, "Taking a run over" and "Recorded failures on resume".

    >>> from stead.core.takeover import rerun_after
    >>> sorted(rerun_after('{"type": "ValueError", "message": "bad", "rerun": ["3", "5"]}'))
    ['3', '5']
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stead.core import console
from stead.core.outcomes import move_run
from stead.core.process import current_owner, describe_owner, owner_is_alive
from stead.core.runtime import result_files
from stead.core.serialization import decode
from stead.core.states import State
from stead.core.steps import ACTIVE_RUNS
from stead.errors import FlowRunFailed, RunConflict
from stead.store.base import Fence, RunRecord, Store

_LIVE_STATES = (State.RUNNING.value, State.PENDING.value, State.RETRYING.value)


class RunTakeover:
    """Deciding what a recorded run means for a new start or resume (for `Execution`)."""

    # Set by Execution.__init__ (core/execution.py); `_hook` is RunOutcomes'.
    flow: Any  # the Flow
    parent: Any  # the RunContext of the parent run, or None
    explicit_resume: bool
    force: bool
    fence: Fence | None
    done: bool
    value: Any
    _hook: Callable[..., None]

    def _take(self, store: Store, run: RunRecord, state: str, at: float, message: str) -> None:
        """Move a run this execution takes from its recorded state (a resume, or marking a
        dead owner's run Crashed): a compare-and-set on the state and, unless a fence covers
        the run, on its lease epoch, which the move bumps. Of two processes resuming the same
        run at once, one goes on and the other gets RunConflict."""
        move_run(store, run, state, at, message, expected=(run.state,), fence=self.fence,
                 take_over=self.fence is None)

    def _check_same_call(self, run: RunRecord, params_json: str) -> None:
        if run.flow_name != self.flow.name:
            raise RunConflict(f"run id {run.id!r} belongs to flow '{run.flow_name}', not "
                              f"'{self.flow.name}'; choose another run id")
        if run.params != params_json:
            raise RunConflict(
                f"run id {run.id!r} was started with parameters {run.params}; this call passes "
                f"{params_json}. A run id names one call: pass the same parameters to resume "
                "or fetch that run, or use a new run id.")

    def _existing_outcome(self, store: Store, run: RunRecord, settings: Any) -> bool:
        """Handle a start whose run id exists. True if the run's recorded outcome is the answer."""
        label = console.run_label(run.flow_name, run.id)
        if run.state == State.COMPLETED.value:
            text = result_files(store.url).load(run.result, run.result_ref)
            self.done, self.value = True, decode(text)
            console.say(label, f"Flow '{run.flow_name}' already Completed; returning its result")
            return True
        if run.state == State.CANCELLED.value:
            raise RunConflict(f"run {run.id} was cancelled; start a new run id to run it again")
        if run.state == State.FAILED.value and not self.explicit_resume and self.parent is None:
            raise FlowRunFailed(
                f"run {run.id} already Failed: {_error_summary(run.error)}. Resume it with "
                f"`stead runs resume {run.id}` (or flow.resume(run_id)).", run_id=run.id)
        if run.queue is not None and self.fence is None:
            raise RunConflict(
                f"run {run.id} was enqueued on queue {run.queue!r}: workers execute it, under "
                f"a lease. `stead runs resume {run.id}` hands it back to its queue for a "
                "worker to resume; it is never executed beside a worker that may hold it.")
        if run.state in _LIVE_STATES and self.fence is not None:
            # A child run of a recovered run: the fence makes its old executor harmless.
            self._take(store, run, State.CRASHED.value, self.flow.clock.now(),
                       f"taken over from {describe_owner(run.owner)}")
            self._hook("on_crashed", run, store, message=f"taken over from "
                                                          f"{describe_owner(run.owner)}")
        elif run.state in _LIVE_STATES:
            alive = owner_is_alive(run.owner)
            if run.owner == current_owner() and not _executing_here(run.id):
                alive = False  # this process lost it (a store outage ended its execution)
            if alive or (alive is None and not self.force):
                raise RunConflict(
                    f"run {run.id} is {run.state} in {describe_owner(run.owner)}"
                    + ("" if alive else " (another host; use --force if that host is gone)")
                    + ". Wait for it to finish, or stop that process and resume.")
            self._take(store, run, State.CRASHED.value, self.flow.clock.now(),
                       f"{describe_owner(run.owner)} is gone")
            self._hook("on_crashed", run, store, message=f"{describe_owner(run.owner)} is gone")
            console.say(label, f"Flow '{run.flow_name}' Crashed: "
                               f"{describe_owner(run.owner)} is gone")
        return False


def _executing_here(run_id: str) -> bool:
    return any(ctx.run.id == run_id for ctx in list(ACTIVE_RUNS))


def rerun_after(error: str | None) -> set[str]:
    """The top-level steps that run again when a run that ended with `error` is resumed:
    those whose failure ended it (recorded in the error since Stead 0.2; before, the step
    the error names). Every other recorded failure is raised again (core/steps.py)."""
    if not error:
        return set()
    import json

    data = json.loads(error)
    if "rerun" in data:
        return set(data["rerun"])
    step = data.get("step")
    return {str(step).split(".")[0]} if step else set()


def _error_summary(error: str | None) -> str:
    if not error:
        return "no error recorded"
    import json

    data = json.loads(error)
    where = f" in step {data['step']}" if data.get("step") else ""
    return f"{data['type'].rsplit('.', 1)[-1]}: {data['message']}{where}"


"""A flow run's outcome, recorded: what its body returned (futures resolved, submitted tasks
waited for, a returned state deciding), Completed, Failed (or Retrying, for a flow-level
retry), Cancelled by a returned state, or Crashed by an interrupt; the hooks of each state.

`RunOutcomes` is a part of `Execution` (core/execution.py), which mixes it in; `move_run` is
the one way the engine records a run's transition.

    >>> from stead.core.outcomes import store_outage
    >>> from stead.errors import StoreError
    >>> store_outage(RuntimeError("boom")), store_outage(StoreError("the disk is full"))
    (False, True)
"""

from __future__ import annotations

import inspect
from typing import Any

from stead.core import console, masking
from stead.core.context import Frame, RunContext, exception_chain
from stead.core.futures import StepFuture
from stead.core.hooks import flow_hooks
from stead.core.masking import PATTERNS as SECRETS_KNOWN
from stead.core.returned import resolve_returned, returned_outcome
from stead.core.serialization import FLOW_RESULT_ADVICE, encode
from stead.core.states import State, check_transition
from stead.core.steps import Step, error_json
from stead.errors import (
    FailedState,
    FlowRunFailed,
    FlowRunStopped,
    LeaseLost,
    RunCancelled,
    SerializationError,
    StoreError,
)
from stead.store.base import Fence, RunRecord, Store


class RunOutcomes:
    """Recording the outcome of each attempt of a flow run, and of the run (for `Execution`)."""

    # Set by Execution.__init__ and begin() (core/execution.py).
    flow: Any  # the Flow
    bound: inspect.BoundArguments
    ctx: RunContext | None
    fence: Fence | None
    parent_step: Step | None
    message: str | None
    started: float
    attempt: int
    top_frame: Frame

    def _body_returned(self, result: Any) -> Any:
        """Settle what the body returned: futures in it become their results (a failed one
        raises), then every submitted task is waited for (see _check_submitted). A run that
        submitted nothing has no futures to look for in a (maybe large) returned value."""
        ctx = self.ctx
        if (ctx is not None and ctx.dispatcher is not None) or isinstance(result, StepFuture):
            result = resolve_returned(result)
        self._check_submitted()
        return result

    def _check_submitted(self) -> None:
        """Wait for submitted tasks; raise the first failure that the flow never looked at."""
        ctx = self.ctx
        if ctx is None or ctx.dispatcher is None:
            return
        unused = ctx.dispatcher.drain()
        if unused:
            first = unused[0]
            error = first._error
            assert error is not None
            if len(unused) > 1:
                error.add_note(f"stead: {len(unused)} submitted tasks failed and their results "
                               f"were never used; the first, [{first.key}] '{first.name}', "
                               "fails the flow")
            raise error

    def _hook(self, kind: str, run: RunRecord | None = None, store: Store | None = None,
              **state: Any) -> None:
        """Call the flow's `kind` hooks (core/hooks.py) about the run, now in their state."""
        if self.flow.hooks[kind]:
            ctx = self.ctx
            flow_hooks(self.flow, kind, run or ctx.run, store or ctx.store,  # type: ignore[union-attr]
                       fence=self.fence, parameters=dict(self.bound.arguments), **state)

    def _completed(self, result: Any) -> Any:
        ctx = self.ctx
        assert ctx is not None
        run = ctx.run
        outcome = returned_outcome(result, self.flow.name)  # a returned state decides
        if outcome is not None:
            self.message = outcome.message
            if outcome.state is State.FAILED:
                return self._returned_failure(outcome.error, outcome.message)
            if outcome.state is State.CANCELLED:
                return self._returned_cancel(outcome.message)
            result = outcome.value
        try:
            text = encode(result, advice=FLOW_RESULT_ADVICE)
            if SECRETS_KNOWN:
                text = masking.mask_text(text)
        except SerializationError as exc:
            error = SerializationError(f"flow '{self.flow.name}' (run {run.id}) returned a value "
                                       f"Stead cannot store: {exc}")
            self._failed_for_good(error)
            raise error from None
        run.result, run.result_ref = ctx.results.place(run.id, "result", text)
        now = ctx.clock.now()
        run.ended_at = now
        ctx.flush_logs()
        move_run(ctx.store, run, State.COMPLETED.value, now, self.message, fence=ctx.fence)
        console.say(console.run_label(run.flow_name, run.id),
                    f"Flow '{run.flow_name}' Completed in {now - self.started:.2f} s "
                    f"({self.top_frame.counter} top-level steps)")
        self._hook("on_completion", data=result)
        if self.parent_step is not None:
            self.parent_step.succeeded(result, child_run_id=run.id)
        return result

    def _returned_failure(self, error: BaseException | None, message: str | None) -> Any:
        """The body returned a Failed state: the run fails for good (no flow retry), and a
        failure that is only a message reaches the caller as FlowRunFailed."""
        assert error is not None and self.ctx is not None
        self._failed_for_good(error, message)
        if isinstance(error, FailedState):
            run_id = self.ctx.run.id
            wrapped = FlowRunFailed(f"flow '{self.flow.name}' returned Failed: {message} (run "
                                    f"{run_id}; see it with `stead runs show {run_id}`)",
                                    run_id=run_id)
            where = getattr(error, "__stead_step__", None)  # a child run: its parent's step
            if where is not None:
                wrapped.__stead_step__ = where  # type: ignore[attr-defined]
            raise wrapped from error
        raise error

    def _returned_cancel(self, message: str | None) -> Any:
        """The body returned a Cancelled state: the run ends Cancelled, the caller gets
        FlowRunStopped."""
        ctx = self.ctx
        assert ctx is not None
        run = ctx.run
        run.ended_at = ctx.clock.now()
        ctx.flush_logs()
        move_run(ctx.store, run, State.CANCELLING.value, run.ended_at, message, fence=ctx.fence)
        move_run(ctx.store, run, State.CANCELLED.value, run.ended_at, message, fence=ctx.fence)
        console.say(console.run_label(run.flow_name, run.id),
                    f"Flow '{run.flow_name}' Cancelled: {message}")
        exc = FlowRunStopped(f"flow '{self.flow.name}' returned Cancelled: {message} (run "
                             f"{run.id})", run_id=run.id, state=State.CANCELLED.value)
        if self.parent_step is not None:
            self.parent_step.failed(exc, retry=False, child_run_id=run.id)
        raise exc

    def _attempt_failed(self, exc: Exception) -> float | None:
        """Record a failed flow attempt; return the delay before a retry, or None if final."""
        ctx = self.ctx
        assert ctx is not None
        run = ctx.run
        if store_outage(exc):
            # Not the flow's failure: nothing can be recorded, and the run stays resumable
            # (a worker hands it back to its queue; a direct run is Crashed? once this
            # process has gone, or resumable from this process at once).
            console.say(console.run_label(run.flow_name, run.id),
                        f"Flow '{run.flow_name}' stopped: the store is unavailable ({exc}). "
                        f"Nothing was lost; resume it with: stead runs resume {run.id}")
            if self.parent_step is not None:
                self.parent_step.abandoned()
            return None
        retry = self.flow.retry
        ctx.rerun = set(ctx.failed_steps(exc))  # what a retry or a resume runs again
        if retry.should_retry(exc, self.attempt) and not isinstance(exc, SerializationError):
            delay = retry.delay_before(self.attempt + 1)
            message = f"attempt {self.attempt} failed: {type(exc).__name__}: {exc}; " \
                      f"retrying in {delay:g} s"
            ctx.flush_logs()
            move_run(ctx.store, run, State.RETRYING.value, ctx.clock.now(), message,
                     fence=ctx.fence)
            console.say(console.run_label(run.flow_name, run.id), f"Flow Retrying: {message}")
            return delay
        self._failed_for_good(exc)
        return None

    def _retry_started(self) -> None:
        ctx = self.ctx
        assert ctx is not None
        self.attempt += 1
        ctx.run.attempts += 1
        ctx.recorded = ctx.store.load_steps(ctx.run.id)  # what the failed attempt finished
        move_run(ctx.store, ctx.run, State.RUNNING.value, ctx.clock.now(),
                 f"attempt {self.attempt}", fence=ctx.fence)

    def _failed_for_good(self, exc: BaseException, message: str | None = None) -> None:
        ctx = self.ctx
        assert ctx is not None
        run = ctx.run
        where = getattr(exc, "__stead_step__", None)
        step_name, step_key, attempts = where if where else (None, None, None)
        run.error = error_json(exc, step_key, attempts, rerun=ctx.failed_steps(exc))
        run.ended_at = ctx.clock.now()
        ctx.flush_logs()
        move_run(ctx.store, run, State.FAILED.value, run.ended_at,
                 message or f"{type(exc).__name__}: {exc}", fence=ctx.fence)
        origin = (f"task '{step_name}' [{step_key}] raised " if step_name else "")
        tries = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
        console.say(console.run_label(run.flow_name, run.id),
                    f"Flow '{run.flow_name}' Failed: {origin}{type(exc).__name__}: {exc}{tries}"
                    f"  (stead runs show {run.id})")
        self._hook("on_failure", data=exc)
        if self.parent_step is not None:
            self.parent_step.failed(exc, retry=False, child_run_id=run.id)

    def _interrupted(self, exc: BaseException) -> None:
        ctx = self.ctx
        assert ctx is not None
        run = ctx.run
        if isinstance(exc, LeaseLost | RunCancelled):  # its worker records the outcome
            console.say(console.run_label(run.flow_name, run.id),
                        f"Flow '{run.flow_name}' stopped: {exc}")
            if isinstance(exc, RunCancelled):  # the run is Cancelling: its process stops now
                self._hook("on_cancellation", data=exc, message=str(exc))
            if self.parent_step is not None:
                self.parent_step.abandoned()
            return
        run.ended_at = ctx.clock.now()
        reason = type(exc).__name__
        try:
            ctx.flush_logs()
            move_run(ctx.store, run, State.CRASHED.value, run.ended_at, f"interrupted by {reason}",
                     fence=ctx.fence)
        except Exception as write_error:  # the interrupt matters more; resume still works
            console.say("stead", f"could not record the interruption: {write_error}")
        console.say(console.run_label(run.flow_name, run.id),
                    f"Flow '{run.flow_name}' Crashed: interrupted by {reason}. "
                    f"Resume with: stead runs resume {run.id}")
        self._hook("on_crashed", data=exc, message=f"interrupted by {reason}")
        if self.parent_step is not None:
            self.parent_step.abandoned()


def move_run(store: Store, run: RunRecord, state: str, at: float, message: str | None = None,
             expected: tuple[str, ...] | None = None, fence: Fence | None = None,
             take_over: bool = False) -> None:
    """Record `run` moving to `state`, after checking the transition table (states.py)."""
    check_transition(run.state, state)
    if message and SECRETS_KNOWN:
        message = masking.mask_text(message)
    if take_over:
        store.transition_run(run, state, at, message, expected=expected, fence=fence,
                             take_over=True)
    else:
        store.transition_run(run, state, at, message, expected=expected, fence=fence)
    if run.parent_id is not None and run.queue is not None and state in _ENDED:
        store.notify_finished(run.id, at)  # an enqueued child: wake its parked parent


_ENDED = frozenset({State.COMPLETED.value, State.FAILED.value, State.CANCELLED.value,
                    State.CRASHED.value})


def store_outage(exc: BaseException) -> bool:
    """Whether `exc` is (or was caused by) the store failing, not the flow's code."""
    return any(isinstance(e, StoreError) for e in exception_chain(exc))


"""One execution of a flow run: start it or resume it (taking it over from a dead owner),
run its attempts, record its outcome. `Flow` (core/flow.py) creates one per call.

Resuming replays recorded steps: completed ones return their results, failures the flow went
past are raised again, and only the failure that ended the run runs again (see
docs/architecture.md, "Recorded failures on resume" and "Taking a run over").
"""

from __future__ import annotations

import inspect
import os
import sys
from typing import Any

from stead.core import console, masking
from stead.core.batching import run_level, store_for_run
from stead.core.context import (
    Frame,
    RunContext,
    current_frame,
    current_run,
    exception_chain,
)
from stead.core.futures import StepFuture
from stead.core.hooks import flow_hooks
from stead.core.masking import PATTERNS as SECRETS_KNOWN
from stead.core.naming import flow_run_name
from stead.core.process import current_owner, describe_owner, owner_is_alive
from stead.core.returned import resolve_returned, returned_outcome
from stead.core.runtime import configure_console, result_files, store_for
from stead.core.serialization import FLOW_RESULT_ADVICE, PARAMETER_ADVICE, decode, encode
from stead.core.states import State, check_transition
from stead.core.steps import ACTIVE_RUNS, Step, error_json, params_text, start_watcher
from stead.core.tags import enter_run_tags, leave_run_tags, tags_json
from stead.core.timeouts import deadline
from stead.errors import (
    FailedState,
    FlowRunFailed,
    FlowRunStopped,
    LeaseLost,
    ParameterError,
    RunCancelled,
    RunConflict,
    SerializationError,
    StoreError,
    TaskTimeout,
)
from stead.store.base import Fence, RunRecord, Store

_LIVE_STATES = (State.RUNNING.value, State.PENDING.value, State.RETRYING.value)


def new_run_id() -> str:
    return os.urandom(16).hex()


class Execution:
    """One execution of a flow run: start or resume it, run attempts, record the outcome."""

    def __init__(self, flow: Any,  # a Flow (core/flow.py imports this module)
                 bound: inspect.BoundArguments, run_id: str | None,
                 *, explicit_resume: bool, force: bool = False,
                 claimed: RunRecord | None = None, store: Store | None = None) -> None:
        self.flow = flow
        self.bound = bound
        self.requested_id = run_id
        self.explicit_resume = explicit_resume
        self.force = force
        self.parent = current_run.get()
        self.parent_step: Step | None = None
        self.ctx: RunContext | None = None
        self.done = False
        self.value: Any = None
        self.message: str | None = None  # of a returned state, recorded with the final one
        self.started = 0.0
        self.attempt = 1  # attempts in this execution: the flow's retry budget
        self.top_frame = Frame(None)
        self.claimed = claimed  # a run a worker claimed (Running, leased) for this execution
        self.store = store
        # A claimed run's writes are fenced by its lease; child runs share their root's fence.
        self.fence = (Fence(claimed.id, claimed.lease_epoch) if claimed is not None
                      else self.parent.fence if self.parent is not None else None)

    # -- start ---------------------------------------------------------------------------
    def begin(self) -> None:
        flow, parent = self.flow, self.parent
        settings = configure_console()
        if self.claimed is not None:
            self._begin_claimed(settings)
            return
        params = dict(self.bound.arguments)
        if SECRETS_KNOWN or flow.secret_params:
            params = masking.protect_params(params, flow.secret_params)
        try:
            params_json = encode(params, advice=PARAMETER_ADVICE)
            if SECRETS_KNOWN:
                params_json = masking.mask_text(params_json)
        except SerializationError as exc:
            bad = _unstorable(params)
            raise ParameterError(
                f"flow '{flow.name}': parameter {bad!r} cannot be recorded, so the run could "
                f"not be resumed: {exc}") from None
        run_name = flow_run_name(flow, self.bound.arguments)  # before anything is recorded
        if parent is not None:
            step = Step(parent, flow.name, "flow",
                        params_text(flow.arg_names, self.bound.args, self.bound.kwargs,
                                    parent.param_max))
            if step.replayed:
                self.done, self.value = True, step.replay()
                return
            step.run_name = run_name  # the parent's step shows the child run's name
            self.parent_step = step
            step.start_attempt()
            store = parent.store
            run_id = self.requested_id or f"{parent.run.id}:{step.key}"
        else:
            store = store_for(flow.database_url)
            run_id = self.requested_id or new_run_id()
        clock = flow.clock
        now = clock.now()
        record = RunRecord(
            id=run_id, flow_name=flow.name, state=State.RUNNING.value,
            entrypoint=flow.entrypoint, script_path=flow.script_path, params=params_json,
            parent_id=parent.run.id if parent else None,
            parent_step=self.parent_step.key if self.parent_step else None,
            created_at=now, started_at=now, attempts=1, owner=current_owner(),
            durability=run_level(flow.durability, parent, settings),
            namespace=parent.run.namespace if parent else settings.namespace,
            name=run_name, version=flow.version, tags=tags_json())
        run, created = store.create_run(record, "started", fence=self.fence)
        if not created and run.owner == record.owner and run.created_at == record.created_at:
            created = True  # our own insert: its reply was lost and the store retried it
        recorded = {}
        rerun: set[str] = set()
        label = console.run_label(flow.name, run_id)
        if created:
            console.say(label, f"Flow '{flow.name}' Running (run {run_id})")
        else:
            try:
                self._check_same_call(run, params_json)
                finished = self._existing_outcome(store, run, settings)
            except BaseException:
                if self.parent_step is not None:
                    self.parent_step.abandoned()
                raise
            if finished:
                if self.parent_step is not None:
                    self.parent_step.succeeded(self.value, child_run_id=run_id)
                return
            recorded = store.load_steps(run_id)
            previous = run.state
            rerun = rerun_after(run.error) if previous == State.FAILED.value else set()
            now = clock.now()  # after any Crashed transition, so the history stays in order
            run.resumes += 1
            run.owner = current_owner()
            run.started_at = now
            run.ended_at = None
            run.attempts += 1
            run.error = None
            run.name = run.name if run.name is not None else run_name  # the first one stays
            run.version = run.version if run.version is not None else flow.version
            self._take(store, run, State.RUNNING.value, now,
                       f"resumed ({len(recorded)} steps recorded)")
            done = sum(1 for s in recorded.values() if s.state in ("Completed", "Cached"))
            console.say(label, f"Flow '{flow.name}' resumed from {previous} "
                               f"({done} finished steps will be reused)")
        self.started = now
        self._make_context(run, store, recorded, settings)
        assert self.ctx is not None
        self.ctx.rerun = rerun

    def _take(self, store: Store, run: RunRecord, state: str, at: float, message: str) -> None:
        """Move a run this execution takes from its recorded state (a resume, or marking a
        dead owner's run Crashed): a compare-and-set on the state and, unless a fence covers
        the run, on its lease epoch, which the move bumps. Of two processes resuming the same
        run at once, one goes on and the other gets RunConflict."""
        _move(store, run, state, at, message, expected=(run.state,), fence=self.fence,
              take_over=self.fence is None)

    def _begin_claimed(self, settings: Any) -> None:
        """Start executing a run a worker claimed: it is Running and leased to us already."""
        run, store = self.claimed, self.store
        assert run is not None and store is not None
        # A claim counts attempts: the first one finds no steps (one round trip saved).
        first = run.attempts == 1 and run.resumes == 0 and not run.error
        recorded = {} if first else store.load_steps(run.id)
        done = sum(1 for s in recorded.values() if s.state in ("Completed", "Cached"))
        reuse = f"; {done} finished steps will be reused" if done else ""
        console.say(console.run_label(run.flow_name, run.id),
                    f"Flow '{run.flow_name}' Running (run {run.id}, queue {run.queue}{reuse})")
        self.started = run.started_at or self.flow.clock.now()
        rerun = rerun_after(run.error) if run.error else set()  # a run handed back by hand
        run.error = None
        self._name_claimed(run)
        self._make_context(run, store, recorded, settings)
        assert self.ctx is not None
        self.ctx.rerun = rerun

    def _name_claimed(self, run: RunRecord) -> None:
        """Name a claimed run that has no name yet (a deployment's run): recorded with its
        next state. A name that cannot be made is said, not fatal: the run is executing."""
        if run.version is None:
            run.version = self.flow.version
        if run.name is not None:
            return
        try:
            run.name = flow_run_name(self.flow, self.bound.arguments)
        except ParameterError as exc:
            console.say(console.run_label(run.flow_name, run.id), f"run left unnamed: {exc}")

    def _make_context(self, run: RunRecord, store: Store, recorded: dict[str, Any],
                      settings: Any) -> None:
        store = store_for_run(store, run.durability, settings)  # batched: steps grouped
        self.ctx = RunContext(
            run=run, store=store, clock=self.flow.clock, results=result_files(store.url),
            param_max=settings.param_max,
            console_tasks=settings.console_tasks, recorded=recorded,
            task_runner=self.flow.task_runner, fence=self.fence)
        ACTIVE_RUNS.add(self.ctx)
        start_watcher(settings.slow_step_ms / 1000)

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

    # -- attempts ------------------------------------------------------------------------
    def run_sync(self) -> Any:
        self.begin()
        if self.done:
            return self.value
        flow, ctx = self.flow, self.ctx
        assert ctx is not None
        capture = _start_print_capture() if flow.log_prints else None
        try:
            while True:
                self._hook("on_running")
                tokens = self._enter()
                try:
                    if flow.timeout is None:
                        result = flow.fn(*self.bound.args, **self.bound.kwargs)
                    else:
                        with deadline(flow.timeout, f"flow '{flow.name}'"):
                            result = flow.fn(*self.bound.args, **self.bound.kwargs)
                    result = self._body_returned(result)
                except Exception as exc:
                    self._drain_quietly()
                    delay = self._attempt_failed(exc)
                    if delay is None:
                        raise
                    ctx.clock.sleep(delay)
                    self._retry_started()
                    continue
                except BaseException as exc:
                    self._close_dispatcher(cancel=True)
                    self._interrupted(exc)
                    raise
                finally:
                    self._leave(tokens)
                return self._completed(result)
        finally:
            _stop_print_capture(capture)
            ACTIVE_RUNS.discard(ctx)
            self._close_dispatcher()

    async def run_async(self) -> Any:
        import asyncio

        self.begin()
        if self.done:
            return self.value
        flow, ctx = self.flow, self.ctx
        assert ctx is not None
        capture = _start_print_capture() if flow.log_prints else None
        try:
            while True:
                self._hook("on_running")
                tokens = self._enter()
                try:
                    try:
                        async with asyncio.timeout(flow.timeout):
                            result = await flow.fn(*self.bound.args, **self.bound.kwargs)
                    except TimeoutError as exc:
                        if isinstance(exc, TaskTimeout):
                            raise
                        raise TaskTimeout(f"flow '{flow.name}' (limit {flow.timeout:g} s) "
                                          "timed out") from exc
                    result = await asyncio.to_thread(self._body_returned, result)
                except Exception as exc:
                    await asyncio.to_thread(self._drain_quietly)
                    delay = self._attempt_failed(exc)
                    if delay is None:
                        raise
                    await ctx.clock.asleep(delay)
                    self._retry_started()
                    continue
                except BaseException as exc:
                    self._close_dispatcher(cancel=True)
                    self._interrupted(exc)
                    raise
                finally:
                    self._leave(tokens)
                return self._completed(result)
        finally:
            _stop_print_capture(capture)
            ACTIVE_RUNS.discard(ctx)
            self._close_dispatcher()

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

    def _drain_quietly(self) -> None:
        ctx = self.ctx
        if ctx is not None and ctx.dispatcher is not None:
            ctx.dispatcher.drain()  # no step may still be writing when the run is marked

    def _close_dispatcher(self, cancel: bool = False) -> None:
        ctx = self.ctx
        if ctx is not None and ctx.dispatcher is not None:
            ctx.dispatcher.close(cancel=cancel)
            ctx.dispatcher = None

    def _enter(self) -> tuple[Any, ...]:
        self.top_frame = Frame(None)
        assert self.ctx is not None
        return (current_run.set(self.ctx), current_frame.set(self.top_frame),
                enter_run_tags(self.ctx.run.tags))  # the run's tags, for its task calls

    def _leave(self, tokens: tuple[Any, ...]) -> None:
        run_t, frame_t, tags_t = tokens
        leave_run_tags(tags_t)
        current_frame.reset(frame_t)
        current_run.reset(run_t)

    # -- outcomes ------------------------------------------------------------------------
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
        _move(ctx.store, run, State.COMPLETED.value, now, self.message, fence=ctx.fence)
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
        _move(ctx.store, run, State.CANCELLING.value, run.ended_at, message, fence=ctx.fence)
        _move(ctx.store, run, State.CANCELLED.value, run.ended_at, message, fence=ctx.fence)
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
        if _store_outage(exc):
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
            _move(ctx.store, run, State.RETRYING.value, ctx.clock.now(), message,
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
        _move(ctx.store, ctx.run, State.RUNNING.value, ctx.clock.now(), f"attempt {self.attempt}",
              fence=ctx.fence)

    def _failed_for_good(self, exc: BaseException, message: str | None = None) -> None:
        ctx = self.ctx
        assert ctx is not None
        run = ctx.run
        where = getattr(exc, "__stead_step__", None)
        step_name, step_key, attempts = where if where else (None, None, None)
        run.error = error_json(exc, step_key, attempts, rerun=ctx.failed_steps(exc))
        run.ended_at = ctx.clock.now()
        ctx.flush_logs()
        _move(ctx.store, run, State.FAILED.value, run.ended_at,
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
            _move(ctx.store, run, State.CRASHED.value, run.ended_at, f"interrupted by {reason}",
                  fence=ctx.fence)
        except Exception as write_error:  # the interrupt matters more; resume still works
            console.say("stead", f"could not record the interruption: {write_error}")
        console.say(console.run_label(run.flow_name, run.id),
                    f"Flow '{run.flow_name}' Crashed: interrupted by {reason}. "
                    f"Resume with: stead runs resume {run.id}")
        self._hook("on_crashed", data=exc, message=f"interrupted by {reason}")
        if self.parent_step is not None:
            self.parent_step.abandoned()


def _move(store: Store, run: RunRecord, state: str, at: float, message: str | None = None,
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


def _store_outage(exc: BaseException) -> bool:
    """Whether `exc` is (or was caused by) the store failing, not the flow's code."""
    return any(isinstance(e, StoreError) for e in exception_chain(exc))


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


def _unstorable(params: dict[str, Any]) -> str:
    for name, value in params.items():
        try:
            encode(value)
        except SerializationError:
            return name
    return "?"


def _start_print_capture() -> Any:
    from stead.core.runlog import PrintCapture

    if isinstance(sys.stdout, PrintCapture):
        return None
    original = sys.stdout
    sys.stdout = PrintCapture(original)
    return original


def _stop_print_capture(original: Any) -> None:
    if original is not None:
        sys.stdout = original

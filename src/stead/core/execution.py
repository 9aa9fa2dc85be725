"""One execution of a flow run: start it or resume it, run its attempts. `Flow`
(core/flow.py) creates one per call.

Resuming replays recorded steps: completed ones return their results, failures the flow went
past are raised again, and only the failure that ended the run runs again (see
docs/architecture.md, "Recorded failures on resume" and "Taking a run over"). A run whose id
is already recorded is decided in core/takeover.py (`RunTakeover`); each attempt's outcome,
and the run's, is recorded in core/outcomes.py (`RunOutcomes`): `Execution` mixes both in.
"""

from __future__ import annotations

import inspect
import os
from typing import Any

from stead.core import console, masking
from stead.core.batching import run_level, store_for_run
from stead.core.context import Frame, RunContext, current_frame, current_run
from stead.core.masking import PATTERNS as SECRETS_KNOWN
from stead.core.naming import flow_run_name
from stead.core.outcomes import RunOutcomes
from stead.core.parking import Park
from stead.core.process import current_owner
from stead.core.runtime import configure_console, result_files, store_for
from stead.core.serialization import PARAMETER_ADVICE, encode
from stead.core.states import State
from stead.core.steps import ACTIVE_RUNS, Step, params_text, start_watcher
from stead.core.tags import enter_run_tags, leave_run_tags, tags_json
from stead.core.takeover import RunTakeover, rerun_after
from stead.core.timeouts import deadline
from stead.errors import ParameterError, SerializationError, TaskTimeout
from stead.store.base import Fence, RunRecord, Store


def new_run_id() -> str:
    return os.urandom(16).hex()


class Execution(RunTakeover, RunOutcomes):
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

    def _begin_claimed(self, settings: Any) -> None:
        """Start executing a run a worker claimed: it is Running and leased to us already."""
        run, store = self.claimed, self.store
        assert run is not None and store is not None
        # A claim counts attempts: the first one finds no steps (one round trip saved).
        first = run.attempts == 1 and run.resumes == 0 and not run.error
        recorded = {} if first else store.load_steps(run.id)
        executing = getattr(store, "executing", None)  # PostgreSQL: saves a round trip
        if executing is not None:
            executing(run)
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
                except Park as park:
                    self._parked(park)
                    return None
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
                except Park as park:
                    self._parked(park)
                    return None
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

    def _parked(self, park: Park) -> None:
        """Record the run as parked (core/parking.py): Paused with its wait and no lease, or
        Pending when its wait is already over; this process lets it go."""
        ctx = self.ctx
        assert ctx is not None
        ctx.flush_logs()
        run = ctx.run
        run.state = ctx.store.park_run(run, park.wait, ctx.clock.now(), self.fence)
        console.say(console.run_label(run.flow_name, run.id),
                    f"Flow '{run.flow_name}' parked ({park}): {run.state}, "
                    "no process holds it")

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


def _unstorable(params: dict[str, Any]) -> str:
    for name, value in params.items():
        try:
            encode(value)
        except SerializationError:
            return name
    return "?"


def _start_print_capture() -> Any:
    from stead.core.runlog import start_print_capture  # logging: loaded only when used

    return start_print_capture()


def _stop_print_capture(original: Any) -> None:
    from stead.core.runlog import stop_print_capture

    stop_print_capture(original)

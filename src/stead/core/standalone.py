"""A task called outside any flow: a standalone task run of its own, as Prefect 3 records it.

The call gets a run (`flow_name` the task's name, tagged `task-run`) whose one step is the
call, executed by the task's own in-flow path: retries, timeout, caching, tag limits and log
capture apply as inside a flow. The caller gets the result, or the task's exception, after
both are recorded. `STEAD_TASKS_OUTSIDE_FLOWS=plain` makes such calls plain function calls
again (unit tests, notebooks); `task.fn(...)` always calls the bare function.
"""

from __future__ import annotations

import json
import sys
import threading
from typing import TYPE_CHECKING, Any

from stead.core import console
from stead.core.batching import store_for_run
from stead.core.clock import SYSTEM_CLOCK
from stead.core.context import Frame, RunContext, current_frame, current_run
from stead.core.futures import StepFuture
from stead.core.process import current_owner
from stead.core.runtime import configure_console, result_files, store_for
from stead.core.serialization import recorded_module_name
from stead.core.states import State
from stead.core.steps import ACTIVE_RUNS, error_json, params_text, start_watcher
from stead.errors import LeaseLost, RunCancelled, SteadError, StoreError, UpstreamFailed
from stead.settings import get_settings
from stead.store.base import RunRecord

if TYPE_CHECKING:
    from stead.core.task import Task

TASK_RUN_TAG = "task-run"  # the mark of a standalone task run: `RunFilter(tag=TASK_RUN_TAG)`


def call_outside_flow(task: Task[Any, Any], args: tuple[Any, ...],
                      kwargs: dict[str, Any]) -> Any:
    """A call of `task` made outside any flow: a standalone task run, or with
    STEAD_TASKS_OUTSIDE_FLOWS=plain the bare function's call (`task.fn(*args, **kwargs)`).

    Example:
        >>> add(1, 2)        # outside a flow: recorded as a task run, returns 3
        3
    """
    if get_settings().tasks_outside_flows == "plain":
        return task.fn(*args, **kwargs)
    return call_standalone(task, args, kwargs)


def call_standalone(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Run one call of `task` made outside any flow as a standalone task run.

    Example:
        >>> @task(retries=2)
        ... def fetch(url: str) -> str: ...
        >>> fetch("https://example.com")     # a run of its own: `stead runs ls` lists it
    """
    if task.is_async:
        return call_standalone_async(task, args, kwargs)
    run = _TaskRun(task, args, kwargs)
    tokens = run.enter()
    try:
        result = task(*args, **kwargs)  # inside the run: the task's in-flow path
    except BaseException as exc:
        run.leave(tokens)
        run.ended(exc)
        raise
    run.leave(tokens)
    run.ended(None)
    return result


async def call_standalone_async(task: Task[Any, Any], args: tuple[Any, ...],
                                kwargs: dict[str, Any]) -> Any:
    """The coroutine of an async task's standalone run (what calling it outside a flow returns).

    Example:
        >>> @task
        ... async def ping(host: str) -> bool: ...
        >>> await ping("db")                 # recorded as a task run when awaited
    """
    run = _TaskRun(task, args, kwargs)
    tokens = run.enter()
    try:
        result = await task(*args, **kwargs)
    except BaseException as exc:
        run.leave(tokens)
        run.ended(exc)
        raise
    run.leave(tokens)
    run.ended(None)
    return result


class _TaskRun:
    """The run record and context of one standalone task call: created Running, then ended."""

    __slots__ = ("capture", "ctx", "started", "task")

    def __init__(self, task: Task[Any, Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> None:
        import os

        settings = configure_console()
        store = store_for()
        clock = SYSTEM_CLOCK
        now = clock.now()
        fn = task.fn
        module = recorded_module_name(fn.__module__)
        script = (getattr(sys.modules.get(fn.__module__), "__file__", None)
                  if module == "__main__" else None)
        record = RunRecord(
            id=os.urandom(16).hex(), flow_name=task.name, state=State.RUNNING.value,
            entrypoint=f"{module}:{fn.__qualname__}", script_path=script,
            params=params_text(task.arg_names, args, kwargs, settings.param_max),
            created_at=now, started_at=now, attempts=1, owner=current_owner(),
            tags=json.dumps([TASK_RUN_TAG, *task.tags]), durability=settings.durability,
            namespace=settings.namespace)
        run, _ = store.create_run(record, "started")
        console.say(console.run_label(run.flow_name, run.id),
                    f"Task '{task.name}' Running (task run {run.id})")
        store = store_for_run(store, run.durability, settings)  # batched: the step grouped
        self.ctx = RunContext(run=run, store=store, clock=clock,
                              results=result_files(store.url), param_max=settings.param_max,
                              console_tasks=False)
        self.started = now
        self.task = task
        self.capture = _start_print_capture() if getattr(task, "log_prints", False) else None
        ACTIVE_RUNS.add(self.ctx)
        start_watcher(settings.slow_step_ms / 1000)

    def enter(self) -> tuple[Any, Any]:
        return current_run.set(self.ctx), current_frame.set(Frame(None))

    def leave(self, tokens: tuple[Any, Any]) -> None:
        current_frame.reset(tokens[1])
        current_run.reset(tokens[0])
        ACTIVE_RUNS.discard(self.ctx)
        _stop_print_capture(self.capture)

    def ended(self, exc: BaseException | None) -> None:
        """Record the run's outcome: Completed (or Cached), Failed with the task's error, or
        Crashed when interrupted. The step itself is already recorded by the task's path."""
        from stead.core.execution import _move

        ctx = self.ctx
        run = ctx.run
        label = console.run_label(run.flow_name, run.id)
        now = ctx.clock.now()
        run.ended_at = now
        if exc is None:
            state = (State.CACHED.value if self.task.cache_policy is not None and _was_cached(ctx)
                     else State.COMPLETED.value)
            ctx.flush_logs()
            _move(ctx.store, run, state, now)
            console.say(label, f"Task '{run.flow_name}' {state} in {now - self.started:.2f} s")
            return
        if isinstance(exc, LeaseLost | RunCancelled) or any(
                isinstance(e, StoreError) for e in _chain(exc)):
            return  # nothing more can be written; the run shows Crashed? once we are gone
        try:
            ctx.flush_logs()
            if isinstance(exc, Exception):
                where = getattr(exc, "__stead_step__", None)
                key, attempts = (where[1], where[2]) if where else (None, None)
                run.error = error_json(exc, key, attempts)
                _move(ctx.store, run, State.FAILED.value, now, f"{type(exc).__name__}: {exc}")
                console.say(label, f"Task '{run.flow_name}' Failed: {type(exc).__name__}: "
                                   f"{exc}  (stead runs show {run.id})")
            else:
                _move(ctx.store, run, State.CRASHED.value, now,
                      f"interrupted by {type(exc).__name__}")
        except Exception as write_error:  # the task's own exception matters more
            console.say("stead", f"could not record the end of task run {run.id}: "
                                 f"{write_error}")


def _was_cached(ctx: RunContext) -> bool:
    """Whether the run's one step was Cached (read back only for tasks that cache)."""
    try:
        return ctx.store.get_step(ctx.run.id, "1").state == State.CACHED.value
    except SteadError:  # no step recorded (the call returned without running it)
        return False


def _chain(exc: BaseException) -> list[BaseException]:
    from stead.core.context import exception_chain

    return exception_chain(exc)


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


# -- .submit() and .map() outside a flow ------------------------------------------------------
_pool: Any = None
_pool_lock = threading.Lock()


def submit_standalone(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                      wait_for: tuple[StepFuture[Any], ...]) -> StepFuture[Any]:
    """Start a standalone task run in a background thread; return its future at once
    (with STEAD_TASKS_OUTSIDE_FLOWS=plain the bare function runs in that thread).

    Futures among the arguments (and in `wait_for`) are waited for first; if one failed,
    the call does not run and its future fails with UpstreamFailed.

    Example:
        >>> futures = [fetch.submit(u) for u in urls]     # outside a flow: runs in parallel
        >>> pages = [f.result() for f in futures]
    """
    import contextvars

    future: StepFuture[Any] = StepFuture("-", task.name)
    context = contextvars.copy_context()
    _thread_pool().submit(context.run, _execute, task, args, kwargs, wait_for, future)
    return future


def _execute(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             wait_for: tuple[StepFuture[Any], ...], future: StepFuture[Any]) -> None:
    from stead.core.dispatch import _futures_in, _resolve

    future._set_running()
    try:
        for dep in [*_futures_in(args), *_futures_in(kwargs.values()), *wait_for]:
            if dep.exception() is not None:
                raise UpstreamFailed(f"task '{task.name}' did not run: its input from task "
                                     f"'{dep.name}' failed ({type(dep._error).__name__}: "
                                     f"{dep._error})") from dep._error
        args = tuple(_resolve(a) for a in args)
        kwargs = {k: _resolve(v) for k, v in kwargs.items()}
        value = call_outside_flow(task, args, kwargs)
        if task.is_async:
            import asyncio

            value = asyncio.run(value)
    except BaseException as exc:  # the future carries it; result() raises it
        future._finish(State.FAILED, error=exc)
    else:
        future._finish(State.COMPLETED, value)


def _thread_pool() -> Any:
    global _pool
    if _pool is None:
        with _pool_lock:
            if _pool is None:
                from concurrent.futures import ThreadPoolExecutor

                from stead.core.runners import ThreadPoolTaskRunner

                _pool = ThreadPoolExecutor(ThreadPoolTaskRunner().max_workers,
                                           thread_name_prefix="stead-standalone")
    return _pool



"""A task called outside any flow: a standalone task run of its own, as Prefect 3 records it.

The call gets a run (`flow_name` the task's name, tagged `task-run`) whose one step is the
call, executed by the task's own in-flow path: retries, timeout, caching, tag limits and log
capture apply as inside a flow. The caller gets the result, or the task's exception, after
both are recorded. `STEAD_TASKS_OUTSIDE_FLOWS=plain` makes such calls plain function calls
again (unit tests, notebooks); `task.fn(...)` always calls the bare function.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from typing import TYPE_CHECKING, Any

from stead.core import console
from stead.core.batching import BatchedStore
from stead.core.clock import SYSTEM_CLOCK
from stead.core.context import Frame, RunContext, current_frame, current_run, exception_chain
from stead.core.futures import StepFuture
from stead.core.masking import PATTERNS as SECRETS_KNOWN
from stead.core.masking import mask_text
from stead.core.process import current_owner
from stead.core.results import ResultFiles
from stead.core.runtime import configure_console, result_files, store_for
from stead.core.serialization import recorded_module_name
from stead.core.states import State, check_transition
from stead.core.steps import ACTIVE_RUNS, error_json, params_text, start_watcher
from stead.errors import LeaseLost, RunCancelled, StoreError, UpstreamFailed
from stead.settings import Settings, get_settings
from stead.store.base import CacheEntry, Fence, LogRecord, RunRecord, StepRecord, Store

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
    """The run record and context of one standalone task call, and its outcome."""

    __slots__ = ("capture", "ctx", "started", "store")

    def __init__(self, task: Task[Any, Any], args: tuple[Any, ...],
                 kwargs: dict[str, Any]) -> None:
        settings = configure_console()
        real = store_for()
        clock = SYSTEM_CLOCK
        self.started = now = clock.now()
        fn = task.fn
        module = recorded_module_name(fn.__module__)
        script = (getattr(sys.modules.get(fn.__module__), "__file__", None)
                  if module == "__main__" else None)
        run = RunRecord(
            id=_new_id(), flow_name=task.name, state=State.RUNNING.value,
            entrypoint=f"{module}:{fn.__qualname__}", script_path=script,
            params=params_text(task.arg_names, args, kwargs, settings.param_max),
            created_at=now, started_at=now, attempts=1, owner=_owner(),
            tags=json.dumps([TASK_RUN_TAG, *task.tags]), durability=settings.durability,
            namespace=settings.namespace)
        console.say(console.run_label(run.flow_name, run.id),
                    f"Task '{task.name}' Running (task run {run.id})")
        self.store = store = RunOnFirstWrite(real, run)
        self.ctx = RunContext(run=run, store=store,  # type: ignore[arg-type]
                              clock=clock, results=_results(real.url),
                              param_max=settings.param_max, console_tasks=False)
        from stead.core.execution import _start_print_capture  # logging: only when used

        self.capture = _start_print_capture() if getattr(task, "log_prints", False) else None
        ACTIVE_RUNS.add(self.ctx)
        start_watcher(settings.slow_step_ms / 1000)

    def enter(self) -> tuple[Any, Any]:
        return current_run.set(self.ctx), current_frame.set(Frame(None))

    def leave(self, tokens: tuple[Any, Any]) -> None:
        current_frame.reset(tokens[1])
        current_run.reset(tokens[0])
        ACTIVE_RUNS.discard(self.ctx)
        from stead.core.execution import _stop_print_capture

        _stop_print_capture(self.capture)

    def ended(self, exc: BaseException | None) -> None:
        """Record the run's outcome: Completed or Cached (as its step), Failed with the task's
        error, or Crashed when interrupted. The step was recorded (or held) by the task."""
        ctx, store = self.ctx, self.store
        run = ctx.run
        label = console.run_label(run.flow_name, run.id)
        if exc is not None and (isinstance(exc, LeaseLost | RunCancelled) or any(
                isinstance(e, StoreError) for e in exception_chain(exc))):
            return  # nothing more can be written; the run shows Crashed? once we are gone
        run.ended_at = now = ctx.clock.now()
        final = store.final
        if exc is None:
            state = final.state if final is not None else State.COMPLETED.value
            if final is not None:
                run.result, run.result_ref = final.result, final.result_ref  # shared, not copied
            message = None
        elif isinstance(exc, Exception):
            where = getattr(exc, "__stead_step__", None)
            key, attempts = (where[1], where[2]) if where else (None, None)
            run.error = error_json(exc, key, attempts)
            state, message = State.FAILED.value, f"{type(exc).__name__}: {exc}"
        else:
            state, message = State.CRASHED.value, f"interrupted by {type(exc).__name__}"
        if SECRETS_KNOWN and message:
            message = mask_text(message)
        try:
            ctx.flush_logs()
            store.finish(state, now, message)
        except Exception as write_error:
            if exc is None:
                raise
            # The task's own exception matters more; say why its run shows Crashed?.
            console.say("stead", f"could not record the end of task run {run.id}: "
                                 f"{write_error}")
            return
        if exc is None:
            console.say(label, f"Task '{run.flow_name}' {state} in {now - self.started:.2f} s")
        elif state == State.FAILED.value:
            console.say(label, f"Task '{run.flow_name}' Failed: {message}  "
                               f"(stead runs show {run.id})")


_FINAL_STEP_STATES = frozenset({State.COMPLETED.value, State.CACHED.value, State.FAILED.value})


class RunOnFirstWrite(BatchedStore):
    """The store as one standalone task run sees it: its run row is written only when needed.

    A quick call that ends having written nothing but its step's outcome costs two commits:
    the run created in its final state, then its step (held until then), and its cache
    entry after them when it has a cache policy. Any other use of
    the store first creates the run Running and writes the held step: a slow step's Running
    mark, a Retrying attempt, logs, a cache entry, nested steps and child runs, reads (all
    but `read_cache`), the writer of submitted tasks (`inner`). So nothing in the process
    ever sees a step without its run; other processes see a quick call once it has ended,
    as they see a quick step (STEAD_SLOW_STEP_MS).

    A `BatchedStore` in kind only so that async steps write through it (they use a
    group-commit writer otherwise) and `unbatched()` reaches the real store through `inner`.
    """

    def __init__(self, real: Store, run: RunRecord) -> None:  # no super(): nothing batched
        self.real = real
        self.url = real.url
        self.run = run
        self.created = False
        self.held: tuple[StepRecord, list[LogRecord] | None] | None = None
        self.final: StepRecord | None = None  # the step's final record, once written or held
        self.held_cache: CacheEntry | None = None  # the entry of the held step's value
        self._lock = threading.Lock()

    @property
    def inner(self) -> Store:  # type: ignore[override]
        self.create()
        return self.real

    def read_cache(self, key: str) -> CacheEntry | None:
        return self.real.read_cache(key)

    def write_cache(self, entry: CacheEntry) -> None:
        if not self.created and self.held is not None and entry.run_id == self.run.id:
            with self._lock:
                if not self.created:
                    self.held_cache = entry  # written after the held step
                    return
        self.create()
        self.real.write_cache(entry)

    def record_step(self, step: StepRecord, logs: list[LogRecord] | None = None,
                    fence: Fence | None = None) -> None:
        if step.key == "1" and step.run_id == self.run.id and step.state in _FINAL_STEP_STATES:
            self.final = step
            if not self.created:
                with self._lock:
                    if not self.created:
                        self.held = (step, logs)
                        return
        self.create()
        self.real.record_step(step, logs, fence)

    def __getattr__(self, verb: str) -> Any:
        method = getattr(self.real, verb)
        if not callable(method):
            return method

        def after_creating(*args: Any, **kwargs: Any) -> Any:
            self.create()
            return method(*args, **kwargs)

        after_creating.__name__ = verb
        return after_creating

    def create(self) -> None:
        """Write the run Running (and the held step), once."""
        if self.created:
            return
        with self._lock:
            if self.created:
                return
            self.real.create_run(self.run, "started")  # still Running
            self.created = True
            self._write_held()

    def _write_held(self) -> None:
        held, self.held = self.held, None
        if held is not None:
            self.real.record_step(*held)
        entry, self.held_cache = self.held_cache, None
        if entry is not None:
            self.real.write_cache(entry)

    def finish(self, state: str, at: float, message: str | None) -> None:
        """Record the run's end: a transition, or the run created in `state` and its step."""
        run = self.run
        with self._lock:
            if not self.created:
                run.state = state
                self.real.create_run(run, message or "ran as a standalone task run")
                self.created = True
                self._write_held()
                return
        check_transition(run.state, state)
        self.real.transition_run(run, state, at, message)


def _new_id() -> str:
    return os.urandom(16).hex()


_owner_of: tuple[int, str] = (0, "")


def _owner() -> str:
    """This process's owner string (it reads /proc: kept per process id)."""
    global _owner_of
    pid = os.getpid()
    if _owner_of[0] != pid:
        _owner_of = (pid, current_owner())
    return _owner_of[1]


_results_of: dict[str, tuple[Settings, ResultFiles]] = {}


def _results(url: str) -> ResultFiles:
    """The result files of `url` under the current settings (kept: paths cost to build)."""
    settings = get_settings()
    known = _results_of.get(url)
    if known is not None and known[0] is settings:  # the same settings object, not a new one
        return known[1]
    files = result_files(url)
    _results_of[url] = (settings, files)
    return files


# -- .submit() and .map() outside a flow ------------------------------------------------------
_pool: Any = None
_pool_lock = threading.Lock()


def submit_standalone(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                      wait_for: tuple[Any, ...]) -> StepFuture[Any]:
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
             wait_for: tuple[Any, ...], future: StepFuture[Any]) -> None:
    from stead.core.dispatch import _futures_in, _resolve, allowed_to_fail

    future._set_running()
    try:
        allowed = allowed_to_fail([*args, *kwargs.values(), *wait_for])
        for dep in [*_futures_in(args), *_futures_in(kwargs.values()), *_futures_in(wait_for)]:
            if dep.exception() is not None and id(dep) not in allowed:
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


def _forget_pool() -> None:
    global _pool
    _pool = None  # a forked child has none of its parent's threads


os.register_at_fork(after_in_child=_forget_pool)


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

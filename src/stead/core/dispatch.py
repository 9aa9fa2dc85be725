"""Submitted tasks: positions at submission, dependencies, concurrency limits, and the rule
for failures nobody looked at.

`submit_call` takes the step's position in the submitting thread, so positions follow
submission order and a resumed run re-submits the same calls at the same positions: recorded
ones come back as resolved futures, the rest run. Each submitted call runs its attempts in a
coordinating thread of the run's `Dispatcher` (at most `max_workers` of the flow's task
runner at once), the runner executes the body, and the outcome is committed through the
group-commit writer before the future resolves.

The failure rule (as in Prefect): a failed submitted task fails the flow when its result is
used (`result()` raises), or, if nobody used it, when the flow body returns: the run then
fails with the first such error. A task whose input future failed does not run; its future
fails with `UpstreamFailed`, recorded as a Failed step with no attempt (`runs show` lists it
with the upstream failure). That record is never replayed: on resume the call is submitted
again and its inputs decide afresh, so it runs once they succeed.

Delivery under concurrency: workers hand finished steps to the writer and go on, so at a
crash both the running bodies and the finished-but-uncommitted ones may run again on resume.
A window bounds them: at most STEAD_UNCOMMITTED_STEPS (default 64, never fewer than the
runner's workers) submitted bodies are started and not yet committed at any moment. A
smaller window re-runs less after a crash; a larger one lets group commit batch more.
"""

from __future__ import annotations

import contextvars
import json
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from stead.core import console
from stead.core.batching import unbatched
from stead.core.context import RunContext, current_run
from stead.core.futures import StepFuture, StepFutureList, allow_failure, unmapped
from stead.core.naming import task_run_name
from stead.core.runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner
from stead.core.serialization import decode
from stead.core.states import State
from stead.core.steps import Step, params_text
from stead.core.writer import writer_for
from stead.errors import ConfigError, UpstreamFailed
from stead.store.base import StepRecord

if TYPE_CHECKING:
    from stead.core.task import Task


class Dispatcher:
    """Runs the submitted tasks of one flow run execution."""

    def __init__(self, ctx: RunContext, runner: TaskRunner) -> None:
        self.ctx = ctx
        self.runner = runner
        runner.start()
        self.workers = _Workers(runner.max_workers)
        self.writer = writer_for(unbatched(ctx.store))  # one writer per real store
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._outstanding = 0
        self._failed: list[StepFuture[Any]] = []
        self._limits: dict[str, threading.BoundedSemaphore] = {}
        # Started-but-uncommitted steps: what a crash could make run twice (see above).
        from stead.settings import get_settings

        self.window = max(get_settings().uncommitted_steps, runner.max_workers)
        self._window = threading.BoundedSemaphore(self.window)

    # -- submission ----------------------------------------------------------------------
    def submit(self, task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
               wait_for: tuple[Any, ...]) -> StepFuture[Any]:
        ctx = self.ctx
        deps = [*_futures_in(args), *_futures_in(kwargs.values()), *_futures_in(wait_for)]
        allowed = allowed_to_fail([*args, *kwargs.values(), *wait_for])
        shown_args = tuple(_ref(a) for a in args)
        shown_kwargs = {k: _ref(v) for k, v in kwargs.items()}
        step = Step(ctx, task.name, "task",
                    params_text(task.arg_names, shown_args, shown_kwargs, ctx.param_max),
                    task.pickle_ok)
        future: StepFuture[Any] = StepFuture(step.key, task.name)
        if step.replayed and _skipped_upstream(step):
            ctx.failures.pop(id(step.failure), None)  # derived from its inputs: decide again
            step.replayed, step.failure, step.continuing = False, None, False
        if step.replayed:
            if step.failure is None:
                future._finish(State.COMPLETED, step.value)
            else:  # a recorded failure the flow went past: it fails the same way again
                with self._lock:
                    self._outstanding += 1
                self._settle(future, State.FAILED, error=step.failure)
            return future
        if isinstance(self.runner, ProcessPoolTaskRunner):
            if task.is_async:
                raise ConfigError(f"task '{task.name}' is async: async tasks run on threads or "
                                  "the event loop, not in a process pool")
            self.runner.check(task, (), {})
        step.writer = self.writer
        step.on_durable = lambda s, error: self._durable(future, s, error)
        if deps:
            step.depends_on = json.dumps(sorted({d.key for d in deps}, key=_key_order))
        with self._lock:
            self._outstanding += 1
        context = contextvars.copy_context()
        start = lambda: self.workers.submit(  # noqa: E731 - a deferred start
            context.run, self._execute, task, step, future, args, kwargs, deps, allowed)
        _when_all_done(deps, start)
        return future

    def _execute(self, task: Task[Any, Any], step: Step, future: StepFuture[Any],
                 args: tuple[Any, ...], kwargs: dict[str, Any],
                 deps: list[StepFuture[Any]], allowed: set[int]) -> None:
        try:
            failed = next((d for d in deps if d._error is not None and id(d) not in allowed),
                          None)
            if failed is not None:
                self._skip(step, failed)
                return
            for dep in deps:
                if id(dep) in allowed:
                    dep._used = True  # allow_failure: its failure is handled by this task
            args = tuple(_resolve(a) for a in args)
            kwargs = {k: _resolve(v) for k, v in kwargs.items()}
            if task.task_run_name is not None:  # named from the resolved arguments
                step.run_name = task_run_name(task, args, kwargs)
            self._window.acquire()
            future._set_running()
            limit = self._limit(task)
            if limit is None:
                self._attempts(task, step, args, kwargs)
            else:
                with limit:
                    self._attempts(task, step, args, kwargs)
        except BaseException as exc:
            if step.outcome is None:  # nothing was recorded, so no commit will settle it
                self._settle(future, State.FAILED, error=exc)
        # Otherwise _durable settles the future once the outcome is committed.

    def _skip(self, step: Step, failed: StepFuture[Any]) -> None:
        """Record that the step did not run because its input `failed` (UpstreamFailed)."""
        from stead.core.steps import error_json

        try:
            raise UpstreamFailed(
                f"task '{step.name}' [{step.key}] did not run: its input from task "
                f"'{failed.name}' [{failed.key}] failed ({type(failed._error).__name__}: "
                f"{failed._error})") from failed._error
        except UpstreamFailed as caught:
            exc = caught
        ctx = self.ctx
        now = ctx.clock.now()
        rec = StepRecord(ctx.run.id, step.key, step.name, step.kind, State.FAILED.value, 0,
                         now, now, step.params, None, None, error_json(exc, step.key, 0), "[]",
                         None, step.depends_on, run_name=step.run_name)
        step.outcome = (State.FAILED.value, exc)
        ctx.failures.setdefault(id(exc), (exc, []))[1].append(step.key)
        console.say(console.run_label(ctx.run.flow_name, ctx.run.id),
                    f"Task '{step.name}' [{step.key}] not run (UpstreamFailed): its input "
                    f"from task '{failed.name}' [{failed.key}] failed")
        step._write(rec, final=True)  # the writer's commit settles the future

    def _durable(self, future: StepFuture[Any], step: Step, error: BaseException | None) -> None:
        """Runs on the writer thread when a step's final outcome is committed (or not)."""
        assert step.outcome is not None
        state, value = step.outcome
        if error is not None:
            self._settle(future, State.FAILED, error=error)
        elif state == State.FAILED.value:
            self._settle(future, State.FAILED, error=value)
        else:
            self._settle(future, State(state), value, reload=_reloader(self.ctx, step))

    def _settle(self, future: StepFuture[Any], state: State, value: Any = None,
                error: BaseException | None = None, reload: Any = None) -> None:
        if future._state is not State.PENDING:  # it held a place in the window
            self._window.release()
        if error is not None:
            future._finish(state, error=error)
        else:
            future._finish(state, value, reload=reload)
        with self._lock:
            if error is not None:
                self._failed.append(future)
            self._outstanding -= 1
            if self._outstanding == 0:
                self._idle.notify_all()

    def _attempts(self, task: Task[Any, Any], step: Step, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> Any:
        from stead.core.task import run_attempts

        runner = self.runner
        if task.is_async:
            body = _async_body(task)
        else:
            def body(*a: Any, **k: Any) -> Any:
                return runner.execute(task, a, k, task.timeout)

        if task.cache_policy is not None:
            from stead.core.caching import cached_call

            return cached_call(task, self.ctx, step, args, kwargs, lambda: run_attempts(
                task, self.ctx, step, args, kwargs, body, None))
        return run_attempts(task, self.ctx, step, args, kwargs, body, None)

    def _limit(self, task: Task[Any, Any]) -> threading.BoundedSemaphore | None:
        if task.concurrency is None:
            return None
        with self._lock:
            limit = self._limits.get(task.name)
            if limit is None:
                limit = self._limits[task.name] = threading.BoundedSemaphore(task.concurrency)
        return limit

    def busy(self) -> bool:
        """Whether some submitted task has not finished (a run cannot be parked then)."""
        return self._outstanding > 0

    # -- the end of the flow body --------------------------------------------------------
    def drain(self) -> list[StepFuture[Any]]:
        """Wait for every submitted task; return the failed futures nobody used."""
        with self._lock:
            while self._outstanding:
                self._idle.wait()
            failed = [f for f in self._failed if not f._used]
        return sorted(failed, key=lambda f: _key_order(f.key))

    def close(self, *, cancel: bool = False) -> None:
        self.workers.stop(cancel=cancel)
        self.runner.shutdown()


class _Workers:
    """A minimal thread pool: a queue of calls and up to `size` threads, started on demand.

    concurrent.futures.ThreadPoolExecutor costs ~8 us per call (a Future with its Condition,
    a work item, a thread-count check); the dispatcher has its own futures and needs none.
    """

    def __init__(self, size: int) -> None:
        import queue

        self.size = size
        self._queue: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()
        self._cancelled = False

    def submit(self, fn: Any, *args: Any) -> None:
        with self._lock:
            if self._idle == 0 and len(self._threads) < self.size:
                thread = threading.Thread(target=self._loop, daemon=True,
                                          name=f"stead-task-{len(self._threads)}")
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1 if self._idle else 0
        self._queue.put((fn, args))

    def _loop(self) -> None:
        get = self._queue.get
        while True:
            item = get()
            if item is None:
                return
            if not self._cancelled:
                fn, args = item
                fn(*args)
            with self._lock:
                self._idle += 1

    def stop(self, *, cancel: bool = False) -> None:
        self._cancelled = cancel
        for _ in self._threads:
            self._queue.put(None)
        if not cancel:
            for thread in self._threads:
                thread.join()


def dispatcher_for(ctx: RunContext) -> Dispatcher:
    with ctx.lock:
        if ctx.dispatcher is None:
            runner = ctx.task_runner or ThreadPoolTaskRunner()
            ctx.dispatcher = Dispatcher(ctx, runner)
        return ctx.dispatcher  # type: ignore[return-value]


def submit_call(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                wait_for: tuple[Any, ...]) -> StepFuture[Any]:
    ctx = current_run.get()
    if ctx is None:  # outside a flow: a standalone task run in a background thread
        from stead.core.standalone import submit_standalone

        return submit_standalone(task, args, kwargs, wait_for)
    return dispatcher_for(ctx).submit(task, args, kwargs, wait_for)


_NOT_MAPPED = (str, bytes, bytearray, dict, unmapped, StepFuture)


def map_calls(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any],
              wait_for: tuple[Any, ...]) -> StepFutureList[Any]:
    def is_mapped(value: Any) -> bool:
        return not isinstance(value, _NOT_MAPPED) and isinstance(value, Iterable)

    items = [list(a) if is_mapped(a) else a for a in args]
    named = {k: list(v) if is_mapped(v) else v for k, v in kwargs.items()}
    lengths = {len(v) for v, raw in [*zip(items, args, strict=True),
                                     *zip(named.values(), kwargs.values(), strict=True)]
               if is_mapped(raw)}
    if not lengths:
        raise ConfigError(f"task '{task.name}'.map() needs at least one list, tuple, range or "
                          "other iterable to map over; use .submit() for a single call")
    if len(lengths) > 1:
        raise ConfigError(f"task '{task.name}'.map(): the iterables have different lengths "
                          f"({', '.join(map(str, sorted(lengths)))}); wrap constants in "
                          "unmapped(...)")
    mapped_pos = [is_mapped(a) for a in args]
    mapped_kw = {k: is_mapped(v) for k, v in kwargs.items()}

    def plain(value: Any) -> Any:
        return value.value if isinstance(value, unmapped) else value

    futures: StepFutureList[Any] = StepFutureList()
    for i in range(lengths.pop()):
        call_args = tuple(v[i] if m else plain(v)
                          for v, m in zip(items, mapped_pos, strict=True))
        call_kwargs = {k: v[i] if mapped_kw[k] else plain(v) for k, v in named.items()}
        futures.append(submit_call(task, call_args, call_kwargs, wait_for))
    return futures


def _futures_in(values: Iterable[Any]) -> list[StepFuture[Any]]:
    found = []
    for value in values:
        if isinstance(value, allow_failure):
            value = value.value
        if isinstance(value, StepFuture):
            found.append(value)
        elif isinstance(value, list | tuple):
            found.extend(v for v in value if isinstance(v, StepFuture))
    return found


def allowed_to_fail(values: Iterable[Any]) -> set[int]:
    """The ids of the futures among `values` wrapped in `allow_failure`."""
    return {id(f) for v in values if isinstance(v, allow_failure) for f in _futures_in([v])}


def _ref(value: Any) -> Any:
    """How a future argument is recorded in the parameters: a reference to its step."""
    if isinstance(value, allow_failure):
        return _ref(value.value)
    if isinstance(value, StepFuture):
        return {"$step": value.key}
    if isinstance(value, list | tuple) and any(isinstance(v, StepFuture) for v in value):
        return _plain_type(value)(_ref(v) for v in value)
    return value


def _resolve(value: Any, raise_on_failure: bool = True) -> Any:
    if isinstance(value, allow_failure):  # a failure is passed on as its exception
        return _resolve(value.value, raise_on_failure=False)
    if isinstance(value, StepFuture):
        return value.result(raise_on_failure=raise_on_failure)
    if isinstance(value, list | tuple) and any(isinstance(v, StepFuture) for v in value):
        return _plain_type(value)(_resolve(v, raise_on_failure) for v in value)
    return value


def _plain_type(value: list[Any] | tuple[Any, ...]) -> type:
    """The container for `value`'s results: a ``.map()``'s StepFutureList becomes a list."""
    return list if isinstance(value, StepFutureList) else type(value)


def _when_all_done(deps: list[StepFuture[Any]], start: Any) -> None:
    pending = [d for d in deps if not d.done()]
    if not pending:
        start()
        return
    remaining = [len(pending)]
    lock = threading.Lock()

    def one_done(_: StepFuture[Any]) -> None:
        with lock:
            remaining[0] -= 1
            ready = remaining[0] == 0
        if ready:
            start()

    for dep in pending:
        dep.add_done_callback(one_done)


def _skipped_upstream(step: Step) -> bool:
    failure = step.failure
    return isinstance(failure, UpstreamFailed) or (
        getattr(failure, "type_name", None) == f"{UpstreamFailed.__module__}.UpstreamFailed")


def _key_order(key: str) -> tuple[int, ...]:
    return tuple(int(part) for part in key.split("."))


def _reloader(ctx: RunContext, step: Step) -> Any:
    key, pickle_ok = step.key, step.pickle_ok  # not the step itself: it may be freed

    def reload() -> Any:
        rec = ctx.store.get_step(ctx.run.id, key)
        return decode(ctx.results.load(rec.result, rec.result_ref), pickle_ok=pickle_ok)

    return reload


def _async_body(task: Task[Any, Any]) -> Any:
    def body(*args: Any, **kwargs: Any) -> Any:
        import asyncio

        from stead.core.task import call_async

        return asyncio.run(call_async(task, args, kwargs))

    return body

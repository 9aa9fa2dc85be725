"""`@task`: a function whose calls inside a flow are recorded steps with retries and timeouts.

Called outside any flow, a task is a standalone task run of its own, with its retries,
timeout and cache (core/standalone.py); STEAD_TASKS_OUTSIDE_FLOWS=plain, or `task.fn(...)`,
calls the bare function instead (unit tests, notebooks).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from stead.core.attempts import attempts_async, run_attempts
from stead.core.attempts import call_async as call_async  # for core/dispatch.py
from stead.core.context import RunContext, current_run
from stead.core.futures import StepFuture, allow_failure
from stead.core.hooks import (
    TASK_HOOKS,
    HookSpec,
    TaskHookDecorators,
    has_hooks,
    hook_lists,
)
from stead.core.methods import unwrap
from stead.core.naming import NameSpec, RunName, check_version, first_paragraph, task_run_name
from stead.core.retries import DelaySpec, RetryOn, RetryPolicy
from stead.core.steps import Step, params_text
from stead.errors import ConfigError

if TYPE_CHECKING:
    from stead.core.caching import CachePolicy
    from stead.core.futures import StepFutureList

P = ParamSpec("P")
R = TypeVar("R")
SERIALIZERS = ("json", "pickle")


def _has_futures(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a call's arguments hold futures (directly, or in a list or tuple)."""
    for value in (*args, *kwargs.values()):
        if isinstance(value, StepFuture | allow_failure):
            return True
        if isinstance(value, list | tuple) and any(isinstance(v, StepFuture) for v in value):
            return True
    return False


def positional_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    code = getattr(fn, "__code__", None)
    if code is None:
        return ()
    return tuple(code.co_varnames[:code.co_argcount + code.co_kwonlyargcount])


class Task(TaskHookDecorators, Generic[P, R]):
    """A decorated task. Call it like the function; inside a flow each call is a step.

    Example:
        >>> from stead import task
        >>> @task(retries=3, retry_delay=[1, 5, 30], timeout=60)
        ... def fetch(url: str) -> bytes: ...
    """

    def __init__(self, fn: Callable[P, R], *, name: str | None = None, retries: int = 0,
                 retry_delay: DelaySpec = None, retry_on: RetryOn | None = None,
                 timeout: float | None = None, serializer: str = "json",
                 concurrency: int | None = None, cache_policy: CachePolicy | None = None,
                 cache_expiration: float | timedelta | None = None,
                 refresh_cache: bool = False, tags: Iterable[str] = (),
                 on_completion: HookSpec = None, on_failure: HookSpec = None,
                 on_running: HookSpec = None, log_prints: bool | None = None,
                 task_run_name: NameSpec = None, description: str | None = None,
                 version: str | None = None,
                 **aliases: Any) -> None:
        if aliases:  # Prefect's spellings (retry_delay_seconds=, ...): see core/aliases.py
            given = dict(locals())  # first: the options as passed, nothing else
            from stead.core.aliases import stead_names

            for own in ("self", "fn", "aliases"):
                given.pop(own)
            given.update(stead_names("task", name or getattr(fn, "__name__", repr(fn)),
                                     aliases, given, Task.__init__.__kwdefaults__))
            Task.__init__(self, fn, **given)
            return
        self._decorated = fn  # what with_options copies (a classmethod stays one)
        fn, self.method_kind = unwrap(fn)  # @task above @classmethod/@staticmethod
        if not callable(fn):
            raise ConfigError(f"@task needs a function, got {fn!r}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", repr(fn))
        self.retry = RetryPolicy.build(retries, retry_delay, retry_on, f"task '{self.name}'")
        if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
            raise ConfigError(f"task '{self.name}': timeout must be seconds > 0, got {timeout!r}")
        if serializer not in SERIALIZERS:
            raise ConfigError(f"task '{self.name}': serializer must be one of "
                              f"{', '.join(SERIALIZERS)}, got {serializer!r}")
        if concurrency is not None and (not isinstance(concurrency, int) or concurrency < 1):
            raise ConfigError(f"task '{self.name}': concurrency must be a whole number >= 1, "
                              f"got {concurrency!r}")
        if cache_policy is not None and not hasattr(cache_policy, "key"):
            raise ConfigError(f"task '{self.name}': cache_policy must be a policy such as "
                              f"INPUTS, TASK_SOURCE or CacheKeyFn(fn), got {cache_policy!r}")
        if isinstance(cache_expiration, timedelta):
            cache_expiration = cache_expiration.total_seconds()
        if cache_expiration is not None and (
                not isinstance(cache_expiration, int | float) or cache_expiration <= 0):
            raise ConfigError(f"task '{self.name}': cache_expiration must be a timedelta or "
                              f"seconds > 0, got {cache_expiration!r}")
        if isinstance(tags, str) or not all(isinstance(t, str) and t for t in tags):
            raise ConfigError(f"task '{self.name}': tags must be a list of names, e.g. "
                              f"tags=['db'], got {tags!r}")
        self.tags = tuple(tags)
        # Names and metadata (core/naming.py): a call's display name, description, version.
        self.task_run_name = task_run_name  # as given (a template or a function)
        self.run_namer = (None if task_run_name is None else RunName.build(
            task_run_name, f"task '{self.name}'", "task_run_name", inspect.signature(fn)))
        self.description = (description if description is not None
                            else first_paragraph(getattr(fn, "__doc__", None)))
        self.version = check_version(version, f"task '{self.name}'")
        self.cache_policy = cache_policy
        self.cache_expiration = cache_expiration
        self.refresh_cache = refresh_cache
        self._signature: inspect.Signature | None = None
        self.timeout = timeout
        self.concurrency = concurrency
        self.serializer = serializer
        self.pickle_ok = serializer == "pickle"
        self.is_async = inspect.iscoroutinefunction(fn)
        self.arg_names = positional_names(fn)
        if log_prints not in (None, True, False):
            raise ConfigError(f"task '{self.name}': log_prints must be True, False or None "
                              f"(the flow decides), got {log_prints!r}")
        self.log_prints = log_prints
        if log_prints is not None:  # its print() lines recorded, or not: core/prints.py
            from stead.core.prints import printing

            self.fn = printing(fn, log_prints)
        self._options = {"name": name, "retries": retries, "retry_delay": retry_delay,
                         "retry_on": retry_on, "timeout": timeout, "serializer": serializer,
                         "concurrency": concurrency, "cache_policy": cache_policy,
                         "cache_expiration": cache_expiration, "refresh_cache": refresh_cache,
                         "tags": tags, "task_run_name": task_run_name,
                         "description": description, "version": version,
                         "log_prints": log_prints}
        # State change hooks (core/hooks.py); `@task_obj.on_failure` adds to these lists.
        self.hooks = hook_lists(f"task '{self.name}'", TASK_HOOKS, on_completion=on_completion,
                                on_failure=on_failure, on_running=on_running)
        self._options.update(self.hooks)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def with_options(self, **options: Any) -> Task[P, R]:
        """A copy of this task with some options changed, e.g. ``fetch.with_options(retries=5)``."""
        if options.keys() - self._options.keys():  # Prefect's spellings: core/aliases.py
            from stead.core.aliases import stead_names

            options = stead_names("task", self.name, options, self._options)
        unknown = set(options) - set(self._options)
        if unknown:
            raise ConfigError(f"task '{self.name}': unknown option(s) {', '.join(sorted(unknown))};"
                              f" known: {', '.join(self._options)}")
        return Task(self._decorated, **{**self._options, **options})

    def __repr__(self) -> str:
        return f"<Task {self.name}>"

    def bind_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults applied (for cache keys)."""
        if self._signature is None:
            self._signature = inspect.signature(self.fn)
        bound = self._signature.bind(*args, **kwargs)
        bound.apply_defaults()
        return dict(bound.arguments)

    bound_to: Any = None  # the instance (or class) of a task reached as a method

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        """`@task` on a method: ``obj.method`` is this task with ``self`` bound, left out
        of the recorded parameters and cache keys (core/methods.py)."""
        if obj is None and self.method_kind is None:
            return self
        from stead.core.methods import bind

        return bind(self, obj, objtype)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if "return_state" in kwargs and "return_state" not in self.arg_names:
            return _call_for_state(self, args, kwargs)
        if (args or kwargs) and _has_futures(args, kwargs):
            # A future passed to a direct call: wait for its value, as a submitted call does
            # (its failure is raised here, at the call, before this call becomes a step).
            from stead.core.dispatch import _resolve

            args = tuple(_resolve(a) for a in args)  # type: ignore[assignment]
            kwargs = {k: _resolve(v) for k, v in kwargs.items()}  # type: ignore[assignment]
        ctx = current_run.get()
        if ctx is None:  # a standalone task run (or a plain call: STEAD_TASKS_OUTSIDE_FLOWS)
            from stead.core.standalone import call_outside_flow

            return call_outside_flow(self, args, kwargs)  # type: ignore[no-any-return]
        params = params_text(self.arg_names, args, kwargs, ctx.param_max)
        if self.is_async:
            return _await_or_run(lambda alone: self._run_async(ctx, params, args, kwargs, alone))
        step = Step(ctx, self.name, "task", params, self.pickle_ok)
        if step.replayed:
            return step.replay()
        if self.task_run_name is not None:
            step.run_name = task_run_name(self, args, kwargs)
        if self.cache_policy is not None:
            from stead.core.caching import cached_call

            return cached_call(self, ctx, step, args, kwargs, lambda: run_attempts(
                self, ctx, step, args, kwargs, self.fn, self.timeout))
        return run_attempts(self, ctx, step, args, kwargs, self.fn, self.timeout)

    def submit(self, *args: P.args, wait_for: Iterable[StepFuture[Any] | allow_failure[Any]] = (),
               **kwargs: P.kwargs) -> StepFuture[R]:
        """Start the task concurrently and return a future of its result.

        Futures among the arguments are waited for and replaced by their results; their
        steps are recorded as this step's dependencies, as are those in `wait_for`.
        Outside a flow the call is a standalone task run started in a background thread.
        ``return_state=True`` waits for the task and returns its final state instead.

        Example:
            >>> @flow
            ... def report(day):
            ...     raw = fetch.submit(day)
            ...     cleaned = clean.submit(raw)          # waits for fetch, records the edge
            ...     return summarise.submit(cleaned, wait_for=[audit.submit(day)]).result()
        """
        from stead.core.dispatch import submit_call

        if ("return_state" in kwargs and "return_state" not in self.arg_names
                and kwargs.pop("return_state")):  # Prefect's: wait, give the final state
            future = submit_call(self, args, kwargs, tuple(wait_for))
            future.wait()
            return future.state  # type: ignore[return-value]
        return submit_call(self, args, kwargs, tuple(wait_for))

    def map(self, *args: Any, wait_for: Iterable[StepFuture[Any] | allow_failure[Any]] = (),
            **kwargs: Any) -> StepFutureList[R]:
        """Submit one call per item of the iterable arguments; return their futures in order,
        as a list with ``.result()`` (every result) and ``.wait(timeout)``.

        Lists, tuples, sets, ranges and generators are mapped over (all of the same length);
        strings, bytes, dicts and other values, and anything wrapped in ``unmapped(...)``,
        are passed unchanged to every call.

        Example:
            >>> futures = process.map(files, unmapped(settings))
            >>> totals = futures.result()       # or [f.result() for f in futures]
        """
        from stead.core.dispatch import map_calls

        if ("return_state" in kwargs and "return_state" not in self.arg_names
                and kwargs.pop("return_state")):  # Prefect's: wait, give the final states
            futures = map_calls(self, args, kwargs, tuple(wait_for))
            futures.wait()
            return [f.state for f in futures]  # type: ignore[return-value]
        return map_calls(self, args, kwargs, tuple(wait_for))

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by reference (module + name), for process-pool runners.
        return (_load_task, (self.fn.__module__, self.fn.__qualname__))

    async def _run_async(self, ctx: RunContext, params: str, args: Any, kwargs: Any,
                         alone: bool = False) -> R:
        step = Step(ctx, self.name, "task", params, self.pickle_ok)
        if step.replayed:
            return step.replay()
        if self.task_run_name is not None:
            step.run_name = task_run_name(self, args, kwargs)
        if has_hooks(self):  # state change hooks around the attempts (core/hooks.py)
            from stead.core.hooks import async_attempts_with_hooks

            return await async_attempts_with_hooks(
                self, step, args, kwargs, attempts_async(self, ctx, step, args, kwargs, alone))
        return await attempts_async(self, ctx, step, args, kwargs, alone)


def _call_for_state(task: Task[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """``task(..., return_state=True)``: the call's State (Completed, or Failed with the
    exception) instead of its value or a raise. Inside a flow only a failure the step
    recorded becomes a state; an engine error (NonDeterminismError, ...) is still raised."""
    if not kwargs.pop("return_state"):
        return task(*args, **kwargs)
    from stead.core.state_values import call_for_state

    def recorded(exc: BaseException) -> bool:
        return current_run.get() is None or getattr(exc, "__stead_step__", None) is not None

    return call_for_state(lambda: task(*args, **kwargs), recorded)


def _load_task(module: str, qualname: str) -> Task[Any, Any]:
    import importlib

    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, Task):
        raise ConfigError(f"{module}:{qualname} is not a stead task in this process")
    return obj


def _await_or_run(make: Callable[[bool], Any]) -> Any:
    """In async code, hand back the coroutine to await; in a sync flow, run it to the end on
    a loop of its own (`make(alone=True)`: nothing else runs on that loop)."""
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make(True))  # asyncio.run copies this context: run and frame go along
    return make(False)


@overload
def task(fn: Callable[P, R], /) -> Task[P, R]: ...
@overload
def task(*, name: str | None = None, retries: int = 0, retry_delay: DelaySpec = None,
         retry_on: RetryOn | None = None, timeout: float | None = None,
         serializer: str = "json", concurrency: int | None = None,
         cache_policy: CachePolicy | None = None,
         cache_expiration: float | timedelta | None = None, refresh_cache: bool = False,
         tags: Iterable[str] = (), on_completion: HookSpec = None, on_failure: HookSpec = None,
         on_running: HookSpec = None, task_run_name: NameSpec = None,
         description: str | None = None, version: str | None = None,
         log_prints: bool | None = None,
         # Prefect's spellings (core/aliases.py)
         retry_delay_seconds: Any = None, timeout_seconds: float | None = None,
         retry_condition_fn: Callable[..., bool] | None = None,
         retry_jitter_factor: float | None = None, persist_result: bool | None = None,
         result_serializer: str | None = None, cache_key_fn: Callable[..., Any] | None = None,
         ) -> Callable[[Callable[P, R]], Task[P, R]]: ...


def task(fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """Make `fn` a task. Use bare (``@task``) or with options (``@task(retries=3)``).

    Options: name, retries, retry_delay (seconds, a list of seconds, or a function of the
    attempt such as exponential_backoff()), retry_on (exception types or a predicate),
    timeout (seconds per attempt), serializer ("json", or "pickle" to opt in to pickle),
    concurrency (at most this many submitted calls of this task run at once in a run),
    cache_policy (INPUTS, TASK_SOURCE, CacheKeyFn(fn), or a sum of them: reuse a result an
    earlier call with the same key recorded), cache_expiration (timedelta or seconds),
    refresh_cache (run anyway and replace the cached value), tags (names; a global limit
    set on a tag with `stead limits set` caps the calls carrying it across all processes;
    `with stead.tags(...)` adds tags to the calls inside the block),
    on_completion / on_failure / on_running (a function or a list of functions called as
    hook(task, task_run, state) when a call enters that state; docs/guide/hooks.md),
    task_run_name (each call's display name: a template over its parameters such as
    "fetch-{url}", or a function of no argument or of the parameters dict), description
    (default: the docstring's first paragraph), version (text, for your records),
    log_prints (record print() output of the body: True, False, or None to do as the flow).
    Prefect's spellings are accepted too: retry_delay_seconds, timeout_seconds,
    retry_condition_fn, retry_jitter_factor, persist_result, result_serializer,
    cache_key_fn (docs/guide/tasks.md, "Prefect's spellings").

    Example:
        >>> from stead import flow, task
        >>> @task(retries=2, retry_delay=0.5)
        ... def double(x: int) -> int:
        ...     return 2 * x
        >>> @flow
        ... def pipeline(n: int) -> list[int]:
        ...     return [double(i) for i in range(n)]
    """
    if fn is not None:
        return Task(fn, **options)
    return lambda f: Task(f, **options)

"""Prefect's spellings of flow and task options, turned into Stead's (one implementation).

``@task(retry_delay_seconds=5, timeout_seconds=60)`` is ``@task(retry_delay=5, timeout=60)``;
Prefect's callables get the arguments Prefect documents, adapted onto Stead's machinery:
``retry_condition_fn(task, task_run, state)`` becomes a `retry_on` condition, and
``cache_key_fn(context, parameters)`` a cache policy. Passing both spellings of one option
is a `ConfigError` naming both. See docs/guide/tasks.md ("Prefect's spellings").

Example:
    >>> stead_names("task", "fetch", {"timeout_seconds": 30, "result_serializer": "pickle"})
    {'timeout': 30, 'serializer': 'pickle'}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from stead.core.caching import CachePolicy, calling_step
from stead.core.retries import ExponentialBackoff, Jittered, RetryDelays
from stead.errors import ConfigError

# Prefect's name -> Stead's option it sets (None: folded into another, or accepted only).
_ALIASES: dict[str, str | None] = {
    "retry_delay_seconds": "retry_delay",
    "timeout_seconds": "timeout",
    "result_serializer": "serializer",
    "persist_result": None,
    "retry_condition_fn": "retry_on",
    "cache_key_fn": "cache_policy",
    "retry_jitter_factor": None,
}
_TASK_ONLY = {"retry_condition_fn": "retry_on=", "cache_key_fn": "nothing (flows are not cached)",
              "retry_jitter_factor": "retry_delay=exponential_backoff(...), whose jitter"}


def stead_names(kind: str, owner: str, options: dict[str, Any],
                current: dict[str, Any] | None = None,
                defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    """`options` with Prefect's spellings replaced by Stead's options.

    `kind` is "flow" or "task". A Stead option given beside its Prefect spelling is a
    ConfigError: given in `options` itself, or (with `defaults`, from a constructor) set in
    `current` to something other than its default. `current` holds the options already in
    force (a with_options copy), whose retry jitter carries over to a new delay.
    """
    current = current or {}
    out = {k: v for k, v in options.items() if k not in _ALIASES}
    where = f"{kind} '{owner}'"
    for alias, value in options.items():
        if alias not in _ALIASES:
            if defaults is not None:  # a constructor got it: not an option of any spelling
                known = [*defaults, *(a for a in _ALIASES if kind == "task" or
                                      a not in _TASK_ONLY)]
                raise ConfigError(f"{where}: unknown option {alias}=; known: "
                                  f"{', '.join(known)}")
            continue
        if value is None:  # Prefect's default: as if not given
            continue
        if kind == "flow" and alias in _TASK_ONLY:
            raise ConfigError(f"{where}: {alias}= is a task option (in Prefect too); on a flow "
                              f"use {_TASK_ONLY[alias]}")
        target = _ALIASES[alias]
        if target is not None:
            given = target in options or (defaults is not None and target in current
                                          and current[target] is not defaults.get(target))
            if given:
                raise ConfigError(f"{where}: both {target}= and {alias}= were given; they are "
                                  f"two spellings of one option, pass only one")
        if alias == "retry_delay_seconds":
            out["retry_delay"] = _delay(value)
        elif alias == "timeout_seconds":
            out["timeout"] = value
        elif alias == "result_serializer":
            out.update(_serializer(kind, where, value))
        elif alias == "persist_result":
            if value is not None and not isinstance(value, bool):
                raise ConfigError(f"{where}: persist_result must be True or False, got {value!r}")
            if (value and kind == "task" and current.get("cache_policy") is None
                    and "cache_key_fn" not in options):
                # Prefect: persisting a task's results turns on its DEFAULT cache policy
                # (inputs + source + run id), so a repeated call in one run is Cached.
                from stead.core.caching import INPUTS, RUN_ID, TASK_SOURCE

                out["cache_policy"] = INPUTS + TASK_SOURCE + RUN_ID
        elif alias == "retry_condition_fn":
            if not callable(value):
                raise ConfigError(f"{where}: retry_condition_fn must be a function(task, "
                                  f"task_run, state) -> bool, got {value!r}")
            out["retry_on"] = RetryCondition(value)
        elif alias == "cache_key_fn":
            out["cache_policy"] = None if value is None else CacheKeyFnPolicy(value)
    old = current.get("retry_delay")
    if "retry_jitter_factor" in options and options["retry_jitter_factor"] is not None:
        delay = out.get("retry_delay", old)
        out["retry_delay"] = Jittered(delay.delay if isinstance(delay, Jittered) else delay,
                                      options["retry_jitter_factor"])
    elif isinstance(old, Jittered) and "retry_delay" in out and not isinstance(
            out["retry_delay"], Jittered):  # a copy with a new delay keeps its jitter
        out["retry_delay"] = Jittered(out["retry_delay"], old.factor)
    return out


def _delay(value: Any) -> Any:
    """Prefect's delay: a number, a list, or a function of the retry count returning a list."""
    if callable(value) and not isinstance(value, RetryDelays | ExponentialBackoff):
        return RetryDelays(value)
    return value


def _serializer(kind: str, where: str, value: Any) -> dict[str, Any]:
    if value not in ("json", "pickle"):
        raise ConfigError(f"{where}: result_serializer must be \"json\" or \"pickle\" (Stead "
                          f"has no other serializers), got {value!r}")
    if kind == "flow":
        if value == "pickle":
            raise ConfigError(f"{where}: a flow's result is always stored as JSON (other "
                              "processes read it); return plain data, or pickle inside a task "
                              "with @task(result_serializer=\"pickle\")")
        return {}
    return {"serializer": value}


@dataclass(frozen=True, slots=True)
class TaskRunInfo:
    """What Prefect calls the task run, as Stead knows it: one step of a flow run.

    `id` is the step's idempotency key ``"RUN_ID/STEP_KEY"``, `name` ``"TASK-STEP_KEY"``,
    `run_count` the attempts made so far. (The same fields as the `task_run` a hook gets.)

    Example:
        >>> TaskRunInfo("r1/2", "fetch-2", "fetch", "r1", "2", {"url": "x"}).flow_run_id
        'r1'
    """

    id: str
    name: str
    task_name: str
    flow_run_id: str
    step_key: str | None
    parameters: dict[str, Any]
    tags: list[str] = field(default_factory=list)
    run_count: int = 0


class FailedState:
    """The state handed to ``retry_condition_fn``: a failed attempt and its exception.

    Example:
        >>> state = FailedState(ValueError("bad"))
        >>> state.is_failed(), state.result(raise_on_failure=False)
        (True, ValueError('bad'))
    """

    name = "Failed"
    type = "FAILED"

    def __init__(self, exception: BaseException) -> None:
        self.exception = exception
        self.message = f"{type(exception).__name__}: {exception}"

    def is_failed(self) -> bool:
        return True

    def is_completed(self) -> bool:
        return False

    def is_crashed(self) -> bool:
        return False

    def is_cancelled(self) -> bool:
        return False

    def result(self, raise_on_failure: bool = True) -> Any:
        """Raise the attempt's exception (Prefect's default), or return it."""
        if raise_on_failure:
            raise self.exception
        return self.exception

    def __repr__(self) -> str:
        return f"FailedState({self.message!r})"


def _run_info(task: Any, step: Any, parameters: dict[str, Any] | None = None) -> TaskRunInfo:
    from stead.core.context import current_run

    ctx = current_run.get()
    run_id = ctx.run.id if ctx is not None else ""
    key = getattr(step, "key", None)
    name = getattr(task, "name", None) or getattr(step, "name", "")
    if parameters is None:
        parameters = _recorded_parameters(getattr(step, "params", None))
    return TaskRunInfo(f"{run_id}/{key or 'flow'}", f"{name}-{key}", name, run_id, key,
                       parameters, list(getattr(task, "tags", ())),
                       getattr(step, "attempts", 0))


def _recorded_parameters(text: str | None) -> dict[str, Any]:
    """A step's recorded arguments by name ({} when they were kept only as a repr)."""
    if not text:
        return {}
    from stead.core.serialization import decode

    try:
        value = decode(text)
    except Exception:
        return {}
    return value if isinstance(value, dict) and "$repr" not in value else {}


class RetryCondition:
    """Prefect's ``retry_condition_fn(task, task_run, state) -> bool`` as a `retry_on`.

    Example:
        >>> @task(retries=3, retry_condition_fn=lambda task, run, state: run.run_count < 2)
        ... def fetch(): ...
    """

    def __init__(self, fn: Callable[[Any, TaskRunInfo, FailedState], bool]) -> None:
        self.fn = fn

    def for_call(self, exc: BaseException, call: Any) -> bool:
        task, step = call if call is not None else (None, None)
        return bool(self.fn(task, _run_info(task, step), FailedState(exc)))

    def __call__(self, exc: BaseException) -> bool:  # a caller that knows no call
        return self.for_call(exc, None)

    def __repr__(self) -> str:
        return f"retry_condition_fn={self.fn!r}"


@dataclass(frozen=True, slots=True)
class CacheContext:
    """The first argument of a Prefect ``cache_key_fn``: the task, its run, its arguments.

    Example:
        >>> def per_run(context, parameters):
        ...     return f"{context.task_run.flow_run_id}-{parameters['n']}"
    """

    task: Any
    task_run: TaskRunInfo
    parameters: dict[str, Any]


class CacheKeyFnPolicy(CachePolicy):
    """A cache policy from Prefect's ``cache_key_fn(context, parameters) -> str | None``;
    None skips the cache for that call. Keys are per task: two tasks never share a value.

    Example:
        >>> @task(cache_key_fn=lambda context, parameters: parameters["url"].lower())
        ... def fetch(url: str) -> bytes: ...
    """

    declines = True  # a None key is the function's choice

    def __init__(self, key_fn: Callable[[CacheContext, dict[str, Any]], str | None]) -> None:
        if not callable(key_fn):
            raise ConfigError(f"cache_key_fn must be a function(context, parameters) -> str, "
                              f"got {key_fn!r}")
        self.key_fn = key_fn

    def key_parts(self, task: Any, arguments: dict[str, Any]) -> list[str] | None:
        context = CacheContext(task, _run_info(task, calling_step.get(), arguments), arguments)
        key = self.key_fn(context, arguments)
        return None if key is None else [str(key)]

    def __repr__(self) -> str:
        return f"CacheKeyFnPolicy({self.key_fn!r})"

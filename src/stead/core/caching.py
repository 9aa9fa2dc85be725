"""Cache policies: when a task call may reuse a result recorded by an earlier call, any run.

A policy turns a call into a cache key; a later call with the same key and an unexpired entry
is recorded as a Cached step pointing at the run and step that produced the value, and the
task body does not run. Keys are SHA-256 digests of a canonical encoding (tagged JSON with
sorted keys, see serialization.py), so they are the same in every process and Python
version for the supported value types: None, bool, int, float, str, lists, dicts, tuples,
sets, bytes, datetime/date/time/timedelta, Decimal, UUID, Path, Enum, dataclasses and
pydantic models. A call whose inputs include other types is not cached (a warning says so).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stead.core.serialization import canonical
from stead.errors import ConfigError, SerializationError
from stead.store.base import CacheEntry

if TYPE_CHECKING:
    from stead.core.context import RunContext
    from stead.core.steps import Step
    from stead.core.task import Task


class CachePolicy:
    """Base of cache policies. Combine policies with ``+``: the key then covers both.

    Example:
        >>> @task(cache_policy=INPUTS + TASK_SOURCE, cache_expiration=timedelta(days=1))
        ... def embed(text: str) -> list[float]: ...
    """

    def key_parts(self, task: Task[Any, Any], arguments: dict[str, Any]) -> list[str] | None:
        """Strings that identify the call, or None to skip the cache for this call."""
        raise NotImplementedError

    def key(self, task: Task[Any, Any], arguments: dict[str, Any]) -> str | None:
        import hashlib

        parts = self.key_parts(task, arguments)
        if parts is None:
            return None
        return hashlib.sha256("\x1f".join([task.name, *parts]).encode()).hexdigest()

    def __add__(self, other: CachePolicy) -> CachePolicy:
        if not isinstance(other, CachePolicy):
            return NotImplemented
        return _Combined((*_parts_of(self), *_parts_of(other)))


def _parts_of(policy: CachePolicy) -> tuple[CachePolicy, ...]:
    return policy.policies if isinstance(policy, _Combined) else (policy,)


@dataclass(frozen=True)
class _Combined(CachePolicy):
    policies: tuple[CachePolicy, ...]

    def key_parts(self, task: Task[Any, Any], arguments: dict[str, Any]) -> list[str] | None:
        parts: list[str] = []
        for policy in self.policies:
            more = policy.key_parts(task, arguments)
            if more is None:
                return None
            parts.extend(more)
        return parts


class Inputs(CachePolicy):
    """The call's arguments, by parameter name, defaults applied; `exclude` names to ignore."""

    def __init__(self, exclude: tuple[str, ...] = ()) -> None:
        self.exclude = tuple(exclude)

    def key_parts(self, task: Task[Any, Any], arguments: dict[str, Any]) -> list[str] | None:
        kept = {k: v for k, v in arguments.items() if k not in self.exclude}
        try:
            return [canonical(kept)]
        except SerializationError:
            return None

    def __sub__(self, name: str) -> Inputs:
        """``INPUTS - "verbose"``: the same policy, ignoring that argument (as in Prefect)."""
        if not isinstance(name, str):
            return NotImplemented
        return Inputs((*self.exclude, name))

    def __repr__(self) -> str:
        return f"Inputs(exclude={self.exclude})" if self.exclude else "INPUTS"


class TaskSource(CachePolicy):
    """The task function's source code: editing the function invalidates its cache."""

    def key_parts(self, task: Task[Any, Any], arguments: dict[str, Any]) -> list[str] | None:
        return [_source_digest(task.fn)]

    def __repr__(self) -> str:
        return "TASK_SOURCE"


class CacheKeyFn(CachePolicy):
    """A function of the call's arguments (a dict by parameter name) that returns the key.

    Example:
        >>> @task(cache_policy=CacheKeyFn(lambda args: args["url"].lower()))
        ... def fetch(url: str) -> bytes: ...
    """

    def __init__(self, fn: Callable[[dict[str, Any]], str | None]) -> None:
        if not callable(fn):
            raise ConfigError(f"CacheKeyFn needs a function, got {fn!r}")
        self.fn = fn

    def key_parts(self, task: Task[Any, Any], arguments: dict[str, Any]) -> list[str] | None:
        key = self.fn(arguments)
        return None if key is None else [str(key)]


class NoCache(CachePolicy):
    """Never cache (Prefect's ``NO_CACHE``): the same as no cache policy. Added to another
    policy it contributes nothing.

    Example:
        >>> @task(cache_policy=NO_CACHE)     # the same as cache_policy=None
        ... def fresh() -> float: ...
    """

    declines = True  # a None key is this policy's choice, not inputs it cannot hash

    def key_parts(self, task: Task[Any, Any], arguments: dict[str, Any]) -> list[str] | None:
        return []

    def key(self, task: Task[Any, Any], arguments: dict[str, Any]) -> str | None:
        return None

    def __add__(self, other: CachePolicy) -> CachePolicy:
        return other if isinstance(other, CachePolicy) else NotImplemented

    def __repr__(self) -> str:
        return "NO_CACHE"


class RunId(CachePolicy):
    """The id of the flow run making the call: a cached value is reused only inside that
    run (and its resumes), never by another run.

    Example:
        >>> @task(cache_policy=INPUTS + RUN_ID)  # the same arguments twice in a run: once
        ... def lookup(key: str) -> str: ...
    """

    def key_parts(self, task: Task[Any, Any], arguments: dict[str, Any]) -> list[str] | None:
        from stead.core.context import current_run

        ctx = current_run.get()
        return None if ctx is None else [ctx.run.id]

    def __repr__(self) -> str:
        return "RUN_ID"


class FlowParameters(CachePolicy):
    """The parameters of the flow run making the call, as recorded.

    Example:
        >>> @task(cache_policy=FLOW_PARAMETERS)  # reused by runs with the same parameters
        ... def setup() -> dict: ...
    """

    def key_parts(self, task: Task[Any, Any], arguments: dict[str, Any]) -> list[str] | None:
        from stead.core.context import current_run

        ctx = current_run.get()
        return None if ctx is None else [ctx.run.params]

    def __repr__(self) -> str:
        return "FLOW_PARAMETERS"


# The step whose cache key is being computed (for policies that hand it to user code).
calling_step: ContextVar[Step | None] = ContextVar("stead_cache_step", default=None)

INPUTS = Inputs()
"""Cache by the call's arguments: ``@task(cache_policy=INPUTS)``."""
TASK_SOURCE = TaskSource()
"""Cache by the task's source code: ``@task(cache_policy=INPUTS + TASK_SOURCE)``."""
NO_CACHE = NoCache()
"""Never cache: ``@task(cache_policy=NO_CACHE)`` is ``cache_policy=None``."""
RUN_ID = RunId()
"""Cache within one flow run: ``@task(cache_policy=INPUTS + RUN_ID)``."""
FLOW_PARAMETERS = FlowParameters()
"""Cache by the calling run's parameters."""
_source_cache: dict[Any, str] = {}


def _source_digest(fn: Callable[..., Any]) -> str:
    import inspect

    fn = inspect.unwrap(fn)  # a method's bound function: the source is the method's
    code = getattr(fn, "__code__", None)
    cached = _source_cache.get(code)
    if cached is not None:
        return cached
    import hashlib

    try:
        text = inspect.getsource(fn)
    except (OSError, TypeError):  # no source file (REPL): fall back to the compiled code
        text = repr((code.co_code, code.co_consts)) if code is not None else repr(fn)
    digest = hashlib.sha256(text.encode()).hexdigest()
    _source_cache[code] = digest
    return digest


def cached_call(task: Task[Any, Any], ctx: RunContext, step: Step, args: tuple[Any, ...],
                kwargs: dict[str, Any], run: Callable[[], Any]) -> Any:
    """Return a cached value for this call if the task's policy finds one, else `run()` it
    and store its result under the call's key."""
    policy = task.cache_policy
    assert policy is not None
    token = calling_step.set(step)
    try:
        key = policy.key(task, task.bind_arguments(args, kwargs))
    finally:
        calling_step.reset(token)
    if key is None and getattr(policy, "declines", False):  # the policy chose not to cache
        return run()
    if key is None:
        from stead.core.console import get_logger

        get_logger().warning("task '%s' [%s]: its inputs cannot be hashed for the cache "
                             "(unsupported types); running it uncached", task.name, step.key)
        return run()
    now = ctx.clock.now()
    if not task.refresh_cache:
        entry = ctx.store.read_cache(key)
        if entry is not None and (entry.expires_at is None or entry.expires_at > now):
            return step.cached(entry, key)
    step.cache_key = key
    result = run()
    inline, ref = step.written
    expires = None if task.cache_expiration is None else now + task.cache_expiration
    ctx.store.write_cache(CacheEntry(key, inline, ref, ctx.run.id, step.key, ctx.clock.now(),
                                     expires))
    return result

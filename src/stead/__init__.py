"""Stead: workflow orchestration and durable execution for plain Python.

Example:
    >>> from stead import flow, task
    >>> @task(retries=3, retry_delay=1)
    ... def fetch(n: int) -> int:
    ...     return n * 2
    >>> @flow
    ... def pipeline(count: int) -> int:
    ...     return sum(fetch(i) for i in range(count))
    >>> pipeline(3)
    6
"""

# The public names are loaded on first use (PEP 562): `import stead` alone, and every
# `import stead.<module>` (the CLI, the server, a worker's store), do not pay for loading
# the engine. `from stead import flow` loads what `flow` needs, once.
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_ERRORS = "stead.errors"
_EXPORTS = {
    "INPUTS": "stead.core.caching",
    "TASK_SOURCE": "stead.core.caching",
    "CacheKeyFn": "stead.core.caching",
    "CachePolicy": "stead.core.caching",
    "Inputs": "stead.core.caching",
    "FakeClock": "stead.core.clock",
    "SystemClock": "stead.core.clock",
    "get_logger": "stead.core.console",
    "get_run_logger": "stead.logging",
    "in_flow": "stead.core.context",
    "step_idempotency_key": "stead.core.context",
    "Flow": "stead.core.flow",
    "flow": "stead.core.flow",
    "StepFuture": "stead.core.futures",
    "StepFutureList": "stead.core.futures",
    "allow_failure": "stead.core.futures",
    "as_completed": "stead.core.futures",
    "unmapped": "stead.core.futures",
    "wait": "stead.core.futures",
    "RunHandle": "stead.core.handles",
    "get_run": "stead.core.handles",
    "now": "stead.core.recorded",
    "uuid": "stead.core.recorded",
    "exponential_backoff": "stead.core.retries",
    "ProcessPoolTaskRunner": "stead.core.runners",
    "TaskRunner": "stead.core.runners",
    "ThreadPoolTaskRunner": "stead.core.runners",
    "State": "stead.core.states",
    "tags": "stead.core.tags",
    "Task": "stead.core.task",
    "task": "stead.core.task",
    "ConfigError": _ERRORS,
    "FlowRunFailed": _ERRORS,
    "FlowRunStopped": _ERRORS,
    "NonDeterminismError": _ERRORS,
    "ParameterError": _ERRORS,
    "RunConflict": _ERRORS,
    "RunNotFound": _ERRORS,
    "SerializationError": _ERRORS,
    "SteadError": _ERRORS,
    "StoreError": _ERRORS,
    "TaskTimeout": _ERRORS,
    "UpstreamFailed": _ERRORS,
    "secret": "stead.secrets.reveal",
    "Variable": "stead.variables",
    "serve": "stead.deployments.serve",
    "concurrency": "stead.concurrency",
    "ConcurrencyTimeout": _ERRORS,
    "Message": "stead.core.waits",
    "receive": "stead.core.waits",
    "set_status": "stead.core.waits",
    "sleep": "stead.core.waits",
    "wait_for_input": "stead.core.waits",
    "get_status": "stead.core.messages",
    "request": "stead.core.messages",
    "send": "stead.core.messages",
    "send_input": "stead.core.messages",
    "InvalidInput": _ERRORS,
    "RequestRejected": _ERRORS,
    "WaitError": _ERRORS,
    "WaitTimeout": _ERRORS,
}

__all__ = [
    "INPUTS",
    "TASK_SOURCE",
    "CacheKeyFn",
    "CachePolicy",
    "ConcurrencyTimeout",
    "ConfigError",
    "FakeClock",
    "Flow",
    "FlowRunFailed",
    "FlowRunStopped",
    "Inputs",
    "InvalidInput",
    "Message",
    "NonDeterminismError",
    "ParameterError",
    "ProcessPoolTaskRunner",
    "RequestRejected",
    "RunConflict",
    "RunHandle",
    "RunNotFound",
    "SerializationError",
    "State",
    "SteadError",
    "StepFuture",
    "StepFutureList",
    "StoreError",
    "SystemClock",
    "Task",
    "TaskRunner",
    "TaskTimeout",
    "ThreadPoolTaskRunner",
    "UpstreamFailed",
    "Variable",
    "WaitError",
    "WaitTimeout",
    "allow_failure",
    "as_completed",
    "concurrency",
    "exponential_backoff",
    "flow",
    "get_logger",
    "get_run",
    "get_run_logger",
    "get_status",
    "in_flow",
    "now",
    "receive",
    "request",
    "secret",
    "send",
    "send_input",
    "serve",
    "set_status",
    "sleep",
    "step_idempotency_key",
    "tags",
    "task",
    "unmapped",
    "uuid",
    "wait",
    "wait_for_input",
]


# Modules named as Prefect's are (`prefect.runtime.flow_run.id`): `import stead` then
# `stead.runtime.flow_run.id` works, as after `import stead.runtime`.
_MODULES = frozenset({"cache_policies", "flows", "futures", "logging", "runtime", "states",
                      "task_runners", "tasks", "variables"})


def __getattr__(name: str) -> Any:
    import importlib

    if name in _MODULES:
        return importlib.import_module(f"stead.{name}")  # it sets the attribute itself
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stead' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, "__version__"})


if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
    from stead.concurrency import concurrency
    from stead.core.caching import INPUTS, TASK_SOURCE, CacheKeyFn, CachePolicy, Inputs
    from stead.core.clock import FakeClock, SystemClock
    from stead.core.console import get_logger
    from stead.core.context import in_flow, step_idempotency_key
    from stead.core.flow import Flow, flow
    from stead.core.futures import (
        StepFuture,
        StepFutureList,
        allow_failure,
        as_completed,
        unmapped,
        wait,
    )
    from stead.core.handles import RunHandle, get_run
    from stead.core.messages import get_status, request, send, send_input
    from stead.core.recorded import now, uuid
    from stead.core.retries import exponential_backoff
    from stead.core.runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner
    from stead.core.states import State
    from stead.core.tags import tags
    from stead.core.task import Task, task
    from stead.core.waits import Message, receive, set_status, sleep, wait_for_input
    from stead.deployments.serve import serve
    from stead.errors import (
        ConcurrencyTimeout,
        ConfigError,
        FlowRunFailed,
        FlowRunStopped,
        InvalidInput,
        NonDeterminismError,
        ParameterError,
        RequestRejected,
        RunConflict,
        RunNotFound,
        SerializationError,
        SteadError,
        StoreError,
        TaskTimeout,
        UpstreamFailed,
        WaitError,
        WaitTimeout,
    )
    from stead.logging import get_run_logger
    from stead.secrets.reveal import secret
    from stead.variables import Variable

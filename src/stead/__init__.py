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

from stead.core.caching import INPUTS, TASK_SOURCE, CacheKeyFn, CachePolicy, Inputs
from stead.core.clock import FakeClock, SystemClock
from stead.core.console import get_logger
from stead.core.context import in_flow, step_idempotency_key
from stead.core.flow import Flow, flow
from stead.core.futures import StepFuture, as_completed, unmapped, wait
from stead.core.recorded import now, uuid
from stead.core.retries import exponential_backoff
from stead.core.runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner
from stead.core.states import State
from stead.core.task import Task, task
from stead.errors import (
    ConfigError,
    FlowRunFailed,
    NonDeterminismError,
    ParameterError,
    RunConflict,
    RunNotFound,
    SerializationError,
    SteadError,
    StoreError,
    TaskTimeout,
    UpstreamFailed,
)
from stead.secrets.reveal import secret

__version__ = "0.1.0"

__all__ = [
    "INPUTS",
    "TASK_SOURCE",
    "CacheKeyFn",
    "CachePolicy",
    "ConfigError",
    "FakeClock",
    "Flow",
    "FlowRunFailed",
    "Inputs",
    "NonDeterminismError",
    "ParameterError",
    "ProcessPoolTaskRunner",
    "RunConflict",
    "RunNotFound",
    "SerializationError",
    "State",
    "SteadError",
    "StepFuture",
    "StoreError",
    "SystemClock",
    "Task",
    "TaskRunner",
    "TaskTimeout",
    "ThreadPoolTaskRunner",
    "UpstreamFailed",
    "as_completed",
    "exponential_backoff",
    "flow",
    "get_logger",
    "in_flow",
    "now",
    "secret",
    "step_idempotency_key",
    "task",
    "unmapped",
    "uuid",
    "wait",
]

"""A task's own ``log_prints=``: its print() lines recorded in the run's log, or not.

``@task(log_prints=True)`` records the lines the task's body prints even in a flow without
``log_prints``; ``log_prints=False`` leaves them on stdout only, even in a flow that records
prints; None (the default) does what the flow does. As in Prefect.

Example:
    >>> @task(log_prints=True)
    ... def report(n: int) -> None:
    ...     print(f"{n} rows")      # stored in the run's log with this step's key
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

# Set while the body of a task with log_prints= runs (None: the flow decides).
task_prints: ContextVar[bool | None] = ContextVar("stead_task_prints", default=None)

_lock = threading.Lock()
_users = 0  # bodies running with log_prints=True that installed or share our capture
_original: Any = None  # sys.stdout before we installed the capture


def _enter() -> None:
    global _users, _original
    from stead.core.runlog import PrintCapture

    with _lock:
        if _users == 0 and not isinstance(sys.stdout, PrintCapture):
            _original = sys.stdout
            sys.stdout = PrintCapture(_original)
        _users += 1


def _exit() -> None:
    global _users, _original
    with _lock:
        _users -= 1
        if _users == 0 and _original is not None:
            if getattr(sys.stdout, "stream", None) is _original:
                sys.stdout = _original
            _original = None


def printing(fn: Callable[..., Any], log_prints: bool) -> Callable[..., Any]:
    """`fn` run with its print() lines recorded (True) or passed through only (False)."""
    if inspect.iscoroutinefunction(fn):
        @functools.wraps(fn)
        async def body_async(*args: Any, **kwargs: Any) -> Any:
            token = task_prints.set(log_prints)
            if log_prints:
                _enter()
            try:
                return await fn(*args, **kwargs)
            finally:
                if log_prints:
                    _exit()
                task_prints.reset(token)

        return body_async

    @functools.wraps(fn)
    def body(*args: Any, **kwargs: Any) -> Any:
        token = task_prints.set(log_prints)
        if log_prints:
            _enter()
        try:
            return fn(*args, **kwargs)
        finally:
            if log_prints:
                _exit()
            task_prints.reset(token)

    return body

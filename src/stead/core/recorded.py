"""Recorded helpers: values that differ between executions, fixed once per run.

Inside a flow, `now()` and `uuid()` are steps: the first execution records the value and a
resumed run gets the same value back, so code that branches on them stays deterministic.
Outside a flow they are the plain values.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from stead.core.context import current_run
from stead.core.steps import Step

if TYPE_CHECKING:
    import uuid as _uuid


def now() -> dt.datetime:
    """The current time (UTC, timezone-aware), recorded on first execution of this call.

    Example:
        >>> @flow
        ... def report():
        ...     started = stead.now()   # the same value when the run resumes
    """
    ctx = current_run.get()
    if ctx is None:
        return dt.datetime.now(dt.UTC)
    step = Step(ctx, "stead.now", "now", None)
    if step.replayed:
        return step.replay()
    step.start_attempt()
    return step.succeeded(dt.datetime.fromtimestamp(ctx.clock.now(), dt.UTC))


def uuid() -> _uuid.UUID:
    """A random UUID (version 4), recorded on first execution of this call.

    Example:
        >>> @flow
        ... def order():
        ...     order_id = stead.uuid()  # stable across resumes of this run
    """
    import uuid as _uuid

    ctx = current_run.get()
    if ctx is None:
        return _uuid.uuid4()
    step = Step(ctx, "stead.uuid", "uuid", None)
    if step.replayed:
        return step.replay()
    step.start_attempt()
    return step.succeeded(_uuid.uuid4())

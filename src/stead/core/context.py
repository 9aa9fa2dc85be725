"""The state of the run being executed, carried in context variables.

A `RunContext` belongs to one execution of one flow run. The current frame numbers the calls
made at one level: a `Frame` for the flow body ("1", "2", ...), or the `Step` whose body is
running (its calls get keys "7.1", "7.2", ...). Both have `step` and `next_key()`.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from stead.core.clock import Clock
from stead.core.results import ResultFiles
from stead.store.base import Fence, LogRecord, RunRecord, StepRecord, Store


class Frame:
    """Numbers the calls made at one level; `step` is the key of the step whose body this is."""

    __slots__ = ("counter", "prefix", "step")

    def __init__(self, step: str | None) -> None:
        self.step = step  # None in the flow body, "7" inside step 7
        self.prefix = "" if step is None else step + "."
        self.counter = 0

    def next_key(self) -> str:
        self.counter += 1
        return f"{self.prefix}{self.counter}"


@dataclass(slots=True, weakref_slot=True, eq=False)
class RunContext:
    run: RunRecord
    store: Store
    clock: Clock
    results: ResultFiles
    param_max: int
    console_tasks: bool
    recorded: dict[str, StepRecord] = field(default_factory=dict)
    task_runner: Any = None  # the flow's TaskRunner for submitted tasks (None: threads)
    dispatcher: Any = None  # created at the first .submit()/.map() of the run
    logs: list[LogRecord] = field(default_factory=list)
    logs_since: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Set when a worker claimed the run: every write carries it, and stops (LeaseLost) once
    # the run was recovered by someone else. Child runs share their root's fence.
    fence: Fence | None = None
    # Replay of recorded failures (see Step): the top-level keys whose Failed record runs
    # again (the failure that ended the run or the attempt), None for every Failed one; and
    # the failures raised in this execution, by exception id, with the steps that raised them.
    rerun: set[str] | None = field(default_factory=set)
    failures: dict[int, tuple[BaseException, list[str]]] = field(default_factory=dict)

    def failed_steps(self, exc: BaseException) -> list[str]:
        """The top-level steps whose failure `exc` is, or caused (its __cause__/__context__)."""
        chain = {id(e) for e in exception_chain(exc)}
        return sorted({key for ident in chain if ident in self.failures
                       for key in self.failures[ident][1] if "." not in key}, key=int)

    def take_logs(self) -> list[LogRecord] | None:
        if not self.logs:
            return None
        with self.lock:
            logs, self.logs = self.logs, []
        return logs

    def flush_logs(self) -> None:
        logs = self.take_logs()
        if logs:
            self.store.append_logs(logs, self.fence)


def exception_chain(exc: BaseException) -> list[BaseException]:
    """`exc`, then what caused it (`__cause__`, else `__context__`), and so on, once each."""
    chain: list[BaseException] = []
    seen: BaseException | None = exc
    while seen is not None and all(seen is not e for e in chain):
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    return chain


current_run: ContextVar[RunContext | None] = ContextVar("stead_run", default=None)
current_frame: ContextVar[Frame] = ContextVar("stead_frame")  # set by every run


def current_step() -> str | None:
    """Key of the step being executed in this context, None in a flow body or outside runs."""
    frame = current_frame.get(None)
    return None if frame is None else frame.step


def in_flow() -> bool:
    """True while code runs inside a flow run."""
    return current_run.get() is not None


def step_idempotency_key() -> str | None:
    """A key unique to the current step of the current run, stable across resumes and retries.

    Pass it to external APIs that de-duplicate requests (payments, emails) so a step that
    runs twice after a crash does not act twice. Returns None outside a flow.

    Example:
        >>> @task
        ... def charge(amount):
        ...     payments.charge(amount, idempotency_key=stead.step_idempotency_key())
    """
    ctx = current_run.get()
    step = current_step()
    if ctx is None:
        return None
    return f"{ctx.run.id}/{step or 'flow'}"



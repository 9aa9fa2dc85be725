"""The storage interface: the verbs the engine speaks, and the records they carry.

Every backend (SQLite now; PostgreSQL and an HTTP client next) implements `Store`. Values
(parameters, results, errors) arrive already encoded as text: the store never interprets them,
so it knows nothing about the engine above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable


@dataclass(slots=True)
class RunRecord:
    """One flow run. Times are Unix seconds (float); `params`/`result`/`error` are JSON text."""

    id: str
    flow_name: str
    state: str
    entrypoint: str = ""  # "module:qualname" of the flow function
    script_path: str | None = None  # the file, when the flow was defined in a script (__main__)
    params: str = "{}"
    parent_id: str | None = None
    parent_step: str | None = None
    created_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    result: str | None = None
    result_ref: str | None = None
    error: str | None = None
    attempts: int = 0  # flow-level attempts made so far (retries of the whole flow)
    resumes: int = 0  # how many times the run was resumed after a crash or failure
    owner: str | None = None  # "host:pid:start-ticks" of the process executing it
    tags: str = "[]"


@dataclass(slots=True)
class StepRecord:
    """One task call (or child flow, or recorded helper) at a position of a run."""

    run_id: str
    key: str  # dotted position in call order, e.g. "7" or "7.2" for a task inside task 7
    name: str
    kind: str  # "task", "flow", "now" or "uuid"
    state: str
    attempts: int = 0
    started_at: float | None = None
    ended_at: float | None = None
    params: str | None = None
    result: str | None = None
    result_ref: str | None = None
    error: str | None = None
    history: str = "[]"  # JSON list of [state, at, message]
    child_run_id: str | None = None
    depends_on: str | None = None  # JSON list of the keys of steps this one waited for
    cache_key: str | None = None
    cached_from: str | None = None  # "RUN_ID/STEP_KEY" that produced a Cached step's value


@dataclass(slots=True)
class CacheEntry:
    """A cached task result, shared across runs, and where it came from."""

    key: str
    result: str | None
    result_ref: str | None
    run_id: str
    step_key: str
    created_at: float
    expires_at: float | None = None


@dataclass(slots=True)
class LogRecord:
    run_id: str
    step_key: str | None
    at: float
    level: int
    message: str
    id: int | None = None


@dataclass(slots=True)
class StateChange:
    run_id: str
    state: str
    at: float
    message: str | None = None


@dataclass(slots=True)
class RunFilter:
    state: str | None = None
    flow_name: str | None = None
    parent_id: str | None = None
    limit: int = 50


@runtime_checkable
class Store(Protocol):
    """What the engine needs from persistence. Implementations must be safe across processes."""

    url: str

    def create_run(self, run: RunRecord, message: str | None = None) -> tuple[RunRecord, bool]:
        """Insert `run` (and its first history entry) unless its id exists.

        Returns the stored run and True if this call created it, or the existing run and False.
        """
        ...

    def get_run(self, run_id: str) -> RunRecord:
        """The run with this exact id; RunNotFound if there is none."""
        ...

    def resolve_run_id(self, prefix: str) -> str:
        """The full id of the one run named by `prefix`; RunNotFound if none or several.

        `prefix` is a full id, a prefix of a top-level run's id (child runs "<id>:3" are not
        matched by their parent's prefix), or "ROOT_PREFIX:KEY" for a child run.
        """
        ...

    def list_runs(self, flt: RunFilter) -> list[RunRecord]:
        """Runs matching `flt`, newest first."""
        ...

    def transition_run(self, run: RunRecord, state: str, at: float,
                       message: str | None = None,
                       expected: tuple[str, ...] | None = None) -> None:
        """Write `run`'s fields with its new `state` and append the change to its history.

        With `expected`, the write happens only if the stored state is one of those
        (compare-and-set); otherwise RunConflict is raised and nothing changes.
        """
        ...

    def run_history(self, run_id: str) -> list[StateChange]:
        """Every state change of the run, oldest first."""
        ...

    def load_steps(self, run_id: str) -> dict[str, StepRecord]:
        """All recorded steps of the run by key: what a resumed run replays."""
        ...

    def get_step(self, run_id: str, key: str) -> StepRecord:
        """One recorded step; RunNotFound if the run or the step is not recorded."""
        ...

    def count_steps(self, run_ids: list[str]) -> dict[str, int]:
        """How many steps each of these runs has recorded (for listings)."""
        ...

    def record_step(self, step: StepRecord, logs: list[LogRecord] | None = None) -> None:
        """Durably write a step's outcome (one commit), with any buffered log lines."""
        ...

    def record_steps(self, batch: list[tuple[StepRecord, list[LogRecord] | None]]) -> None:
        """Durably write several step outcomes (and their log lines) in one commit.

        Group commit: concurrently finishing tasks share one transaction.
        """
        ...

    def read_cache(self, key: str) -> CacheEntry | None:
        """The cache entry stored under `key`, expired or not (the engine checks expiry)."""
        ...

    def write_cache(self, entry: CacheEntry) -> None:
        """Store (or replace) the cache entry under `entry.key`."""
        ...

    def mark_steps_running(self, steps: list[StepRecord]) -> None:
        """Make long-running steps visible; never overwrites an outcome already recorded."""
        ...

    def append_logs(self, logs: list[LogRecord]) -> None:
        """Durably store log lines."""
        ...

    def read_logs(self, run_id: str, after_id: int = 0, limit: int = 10_000) -> list[LogRecord]:
        """Log lines of the run with id greater than `after_id`, oldest first."""
        ...

    def close(self) -> None:
        """Release connections held by this process."""
        ...

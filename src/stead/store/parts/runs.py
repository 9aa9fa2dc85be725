"""The runs-and-steps part of the store interface: runs, their history, steps, the cache and
log lines (what executing and resuming a run reads and writes), and the records they carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
    owner: str | None = None  # "host|pid|start-ticks" of the process executing it
    tags: str = "[]"
    # Queues and leases (written by enqueue, claim, heartbeat and recovery; never by the
    # engine's transitions, see LEASE_COLUMNS in store/sql.py).
    queue: str | None = None  # the queue it was enqueued on; None for a direct call
    priority: int = 0  # higher is claimed first
    lease_epoch: int = 0  # fencing token: bumped by every claim and recovery
    lease_expires_at: float | None = None  # None: not leased (direct calls, finished runs)
    worker_id: str | None = None  # the worker holding the lease
    recoveries: int = 0  # times it was requeued after its executor was lost
    max_recoveries: int = 3  # policy: requeue after a lost executor at most this often
    # Runs created from a deployment (by hand or by a schedule).
    deployment: str | None = None
    deployment_version: int | None = None
    scheduled_for: float | None = None  # the fire time of a scheduled run
    # What its checkpoints survive: "fsync", "process" or "batched" (store/durability.py).
    durability: str = "process"
    namespace: str = "default"  # the tenant it belongs to; child runs share their parent's
    # "ROLE:KEY_ID" of the API key that created it (set by the server, never by the caller);
    # None: created where the database is. Workers check it before importing anything.
    created_by: str | None = None
    # Set when the run first starts (or is enqueued), kept across resumes: the flow's
    # `flow_run_name` ("fetch-2026-11-22"; None: no name given) and its `version`.
    name: str | None = None
    version: str | None = None


@dataclass(slots=True)
class StepRecord:
    """One task call (or child flow, or recorded helper) at a position of a run."""

    run_id: str
    key: str  # dotted position in call order, e.g. "7" or "7.2" for a task inside task 7
    name: str
    kind: str  # "task", "flow", "now", "uuid" or "variable" (stead.Variable in a run)
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
    # The call's display name (`task_run_name`, or a child flow run's name); `name` stays the
    # task's name, which replay compares. None: no display name given.
    run_name: str | None = None


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


@dataclass(frozen=True, slots=True)
class Fence:
    """The right to write to a run: the root run's id and the lease epoch its executor holds.

    Writes carrying a fence happen only while the stored epoch still equals `epoch`;
    otherwise the store raises LeaseLost and writes nothing.
    """

    run_id: str
    epoch: int


@dataclass(slots=True)
class RunFilter:
    state: str | tuple[str, ...] | None = None  # one state or any of several
    flow_name: str | None = None
    parent_id: str | None = None
    queue: str | None = None
    limit: int = 50
    deployment: str | None = None
    tag: str | None = None  # runs carrying this tag
    created_after: float | None = None  # created_at >= this (Unix seconds)
    created_before: float | None = None  # created_at < this
    # A page's cursor: only runs after this (created_at, id) in the listing's order (newest
    # first), so pages neither repeat nor skip runs while new ones are inserted.
    after: tuple[float, str] | None = None
    namespaces: tuple[str, ...] | None = None  # only runs of these namespaces; None: all


class RunStore(Protocol):
    """Runs and steps: create, read, list and move runs; record and load steps; the cache;
    log lines."""

    def create_run(self, run: RunRecord, message: str | None = None,
                   fence: Fence | None = None) -> tuple[RunRecord, bool]:
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
                       expected: tuple[str, ...] | None = None,
                       fence: Fence | None = None, take_over: bool = False) -> None:
        """Write `run`'s fields with its new `state` and append the change to its history.

        With `expected`, the write happens only if the stored state is one of those
        (compare-and-set); otherwise RunConflict is raised and nothing changes. Lease
        fields (queue, priority, lease_*, worker_id, recoveries) are never written here.
        Every writing verb takes `fence`: with one, it writes only while the fence holds
        (else LeaseLost). With `take_over` (a process taking a run from a dead owner), the
        write happens only if the stored lease epoch is still `run.lease_epoch`, which it
        bumps (here and in `run`): of two processes taking over the same run, one wins and
        the other gets RunConflict.
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

    def record_step(self, step: StepRecord, logs: list[LogRecord] | None = None,
                    fence: Fence | None = None) -> None:
        """Durably write a step's outcome (one commit), with any buffered log lines."""
        ...

    def record_steps(self, batch: list[tuple[StepRecord, list[LogRecord] | None]],
                     fence: Fence | None = None) -> None:
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

    def mark_steps_running(self, steps: list[StepRecord], fence: Fence | None = None) -> None:
        """Make long-running steps visible; never overwrites an outcome already recorded."""
        ...

    def append_logs(self, logs: list[LogRecord], fence: Fence | None = None) -> None:
        """Durably store log lines."""
        ...

    def read_logs(self, run_id: str, after_id: int = 0, limit: int = 10_000) -> list[LogRecord]:
        """Log lines of the run with id greater than `after_id`, oldest first."""
        ...

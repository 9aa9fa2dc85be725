"""The storage interface: the verbs the engine speaks, and the records they carry.

Every backend (SQLite now; PostgreSQL and an HTTP client next) implements `Store`. Values
(parameters, results, errors) arrive already encoded as text: the store never interprets them,
so it knows nothing about the engine above it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass(slots=True)
class DeploymentRecord:
    """One version of a deployment: a flow entrypoint with default parameters and a queue."""

    name: str
    version: int
    flow_name: str
    entrypoint: str  # "module:qualname"
    script_path: str | None
    params: str  # JSON object: default parameters
    param_schema: str  # JSON Schema of the flow's parameters (validated at run creation)
    queue: str
    tags: str = "[]"
    description: str | None = None
    created_at: float = 0.0
    namespace: str = "default"  # a name belongs to one namespace; its runs are created there


@dataclass(slots=True)
class ScheduleRecord:
    """A schedule of a deployment (the spec is the JSON of deployments/schedules.Schedule)."""

    id: int | None
    deployment: str
    schedule: str
    active: bool = True
    missed: str = "latest"  # after an outage: "all", "latest" or "skip"
    last_fire_at: float | None = None
    created_at: float = 0.0


@dataclass(slots=True)
class ApiKeyRecord:
    """An API key of the HTTP server. Only its hash is stored; the key itself is shown once."""

    id: str
    name: str
    prefix: str  # the first 8 characters after "stead_", to tell keys apart in listings
    hash: str  # SHA-256 (hex) of the whole key
    created_at: float
    last_used_at: float | None = None  # updated at most once a minute
    revoked_at: float | None = None  # a revoked key is refused
    role: str = "admin"  # admin, operator, worker, reader or webhook (server/policy.py)
    namespaces: str = '["*"]'  # JSON list of the namespaces it may touch; "*": all
    queues: str | None = None  # JSON list of the queues a worker key may claim from; None: any


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


@dataclass(slots=True)
class WorkerRecord:
    """A worker process as it reports itself (see `stead workers ls`)."""

    id: str
    name: str
    host: str
    pid: int
    queues: str  # JSON list of queue names
    concurrency: int
    state: str  # "running", "draining" or "stopped"
    started_at: float
    heartbeat_at: float
    running: int = 0  # runs it executes now
    key_id: str | None = None  # the API key it registered with (set by the server)
    lease_s: float | None = None  # its own lease (`--lease`): silent longer = lost

    def is_lost(self, now: float, default_lease_s: float) -> bool:
        """Whether a worker that has not stopped went silent for longer than its lease.

        >>> WorkerRecord("w", "w", "h", 1, "[]", 1, "running", 0.0, 10.0, lease_s=2.0
        ...              ).is_lost(now=13.0, default_lease_s=30.0)
        True
        """
        lease = self.lease_s if self.lease_s is not None else default_lease_s
        return self.state != "stopped" and now - self.heartbeat_at > lease


@dataclass(slots=True)
class QueueInfo:
    """A queue, its limit, and how many runs wait in it and run from it."""

    name: str
    concurrency_limit: int | None
    pending: int = 0
    running: int = 0
    oldest_pending_at: float | None = None


@dataclass(slots=True)
class Limit:
    """A global limit on tasks carrying the tag `name`: at most `concurrency` at once, and/or
    at most `rate` starts per `period` seconds, across every process using the database."""

    name: str
    concurrency: int | None = None
    rate: int | None = None
    period: float | None = None


@dataclass(slots=True)
class SlotGrant:
    """The answer to `take_slots`: slot ids held (release them), or how long to wait."""

    ids: list[int]
    wait: float = 0.0

    @property
    def granted(self) -> bool:
        return self.wait == 0.0


@dataclass(slots=True)
class PruneResult:
    """What `Store.prune_runs` deleted (or `Store.count_prunable` would delete)."""

    runs: int = 0  # top-level runs and all their child runs
    steps: int = 0
    logs: int = 0  # log lines
    cache: int = 0  # cache entries the runs produced
    result_refs: list[str] = field(default_factory=list)  # result files (see the verbs)


# The states of runs retention may delete: finished ones. A live run (Pending, Running,
# Retrying, Paused, Scheduled, Late, Cancelling) is never pruned.
PRUNABLE_STATES = ("Completed", "Cached", "Failed", "Cancelled", "Crashed")


@runtime_checkable
class Store(Protocol):
    """What the engine needs from persistence. Implementations must be safe across processes."""

    url: str
    # time.monotonic() of this process's last attempt that could not reach the database
    # (-inf: never; SQLite never sets it). A reaper waits a lease after it (worker/recovery.py).
    unreachable_at: float

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

    # -- queues, workers, leases ----------------------------------------------------------
    def set_queue(self, name: str, concurrency_limit: int | None) -> None:
        """Create the queue or change its limit (None: unlimited)."""
        ...

    def list_queues(self) -> list[QueueInfo]:
        """Every queue (declared, or named by a run) with its counts, by name."""
        ...

    def claim_runs(self, queues: list[str], worker: WorkerRecord, owner: str, n: int,
                   now: float, lease_s: float, namespaces: list[str] | None = None
                   ) -> list[RunRecord]:
        """Take up to `n` Pending runs from `queues` (highest priority, then oldest first),
        within each queue's concurrency limit, for `worker`: each moves to Running with its
        lease epoch bumped, `worker_id` set and a lease of `lease_s` seconds on the database's
        clock; `now` (the caller's clock) stamps started_at and the history. Concurrent
        claimers never take the same run (SKIP LOCKED on PostgreSQL, the write lock on SQLite).
        With `namespaces`, only runs of those namespaces are taken.
        """
        ...

    def heartbeat(self, worker: WorkerRecord, held: list[Fence], now: float,
                  lease_s: float) -> list[Fence]:
        """Record `worker` alive (heartbeat_at = `now`, the caller's clock) and extend the
        leases of its runs to `lease_s` seconds from this write on the database's clock;
        return the fences in `held` that still hold (a missing one was recovered elsewhere)."""
        ...

    def expired_runs(self, limit: int = 100) -> list[RunRecord]:
        """Leased live runs whose lease ran out (by the database's clock): their executor
        stopped heartbeating. Oldest expiry first."""
        ...

    def recover_run(self, run_id: str, epoch: int, now: float, reason: str, *,
                    count: bool = True) -> str | None:
        """Take a run away from the executor holding `epoch`: bump the epoch (fencing that
        executor off), record Crashed with `reason`, and requeue it as Pending unless it was
        already recovered max_recoveries times (`count=False`: a hand-back, not counted).
        Returns the run's new state, or None if the epoch no longer matched (nothing done)."""
        ...

    def register_worker(self, worker: WorkerRecord) -> None:
        """Insert or replace the worker's row."""
        ...

    def list_workers(self) -> list[WorkerRecord]:
        """Every worker that has registered, most recent heartbeat first."""
        ...

    def set_limit(self, limit: Limit) -> None:
        """Create or replace the tag limit `limit.name`."""
        ...

    def delete_limit(self, name: str) -> None:
        """Remove the tag limit `name` (and its slots)."""
        ...

    def list_limits(self) -> list[Limit]:
        """Every tag limit, by name."""
        ...

    def take_slots(self, names: list[str], holder: str, now: float,
                   lease_s: float, occupy: int = 1) -> SlotGrant:
        """Take `occupy` slots (default one) of every limit among `names` at once, or none:
        returns the slot ids, or how long to wait before asking again. Tags without a limit
        need no slot.
        Concurrency slots expire lease_s seconds after they were taken unless renewed (a dead
        holder's slot is freed); rate slots expire one period after they were taken; both on
        the database's clock (`now` stamps acquired_at only)."""
        ...

    def renew_slots(self, ids: list[int], lease_s: float) -> None:
        """Extend the held concurrency slots `ids` to lease_s seconds from now (database's
        clock)."""
        ...

    def release_slots(self, ids: list[int]) -> None:
        """Give back concurrency slots (rate slots run out by themselves)."""
        ...

    # -- deployments and schedules ---------------------------------------------------------
    def save_deployment(self, deployment: DeploymentRecord) -> DeploymentRecord:
        """Store a new version of the deployment `deployment.name` (version = latest + 1, or
        1) and return it with its version."""
        ...

    def get_deployment(self, name: str, version: int | None = None) -> DeploymentRecord:
        """That version of the deployment (default: the latest); DeploymentNotFound if none."""
        ...

    def list_deployments(self) -> list[DeploymentRecord]:
        """The latest version of every deployment, by name."""
        ...

    def set_schedules(self, deployment: str, schedules: list[ScheduleRecord]) -> None:
        """Replace the deployment's schedules. A schedule equal to an existing one (same spec
        and missed policy) keeps its progress (last_fire_at) and its active flag."""
        ...

    def list_schedules(self, deployment: str | None = None) -> list[ScheduleRecord]:
        """Schedules (of one deployment, or all), by deployment and id."""
        ...

    def set_schedule_active(self, deployment: str, active: bool, now: float) -> int:
        """Pause or resume every schedule of the deployment at `now`; returns how many
        changed. Pausing removes the deployment's Scheduled runs (not started: waiting for
        their time); resuming counts the schedules' fire times from `now`, so those that passed
        while paused are not missed runs."""
        ...

    def advance_schedule(self, schedule_id: int, last_fire_at: float) -> None:
        """Record that runs were created up to the fire time `last_fire_at`."""
        ...

    def promote_due_runs(self, now: float) -> int:
        """Scheduled runs whose time has come become Pending (claimable) if their deployment
        has an active schedule; returns how many. The Scheduled runs of deployments without
        one (paused, or their schedules removed) are deleted."""
        ...

    def skip_missed_runs(self, now: float, missed_after_s: float) -> int:
        """Cancel the scheduled runs that have not started (Scheduled, Pending, Late) and
        that their schedule's missed-run policy skips: for "latest" and "skip", those with a
        later run of their deployment already due; for "skip", also those `missed_after_s`
        past their fire time; for "all", none. Returns how many."""
        ...

    def mark_late_runs(self, now: float, grace_s: float) -> int:
        """Pending runs of schedules still not started `grace_s` after their time become Late
        (still claimable); returns how many."""
        ...

    # -- cancellation --------------------------------------------------------------------
    def cancel_run(self, run_id: str, now: float, reason: str) -> str:
        """Cancel a run and its child runs. A waiting run (Scheduled, Pending, Late) is
        Cancelled at once; an executing one becomes Cancelling until its worker stops it
        (`finish_cancel`). Returns the run's new state; RunConflict if it already ended."""
        ...

    def runs_to_cancel(self, worker_id: str) -> list[tuple[str, int]]:
        """(run id, lease epoch) of the Cancelling runs leased to this worker."""
        ...

    def finish_cancel(self, run_id: str, now: float, message: str) -> bool:
        """Record a Cancelling run (and its children) Cancelled once its process was stopped:
        bumps the lease epoch (fencing the stopped executor) and frees its tag slots.
        False if the run was not Cancelling."""
        ...

    def requeue_run(self, run_id: str, epoch: int, now: float, reason: str, *,
                    executor_gone: bool = False) -> str:
        """Hand an enqueued run that crashed, failed or lost its worker (lease lapsed, or
        `executor_gone`: the caller saw its process is dead) back to its queue, for a worker
        to resume: a compare-and-set on `epoch` that bumps it, so its last executor is fenced
        off. Returns "Pending"; RunConflict if the epoch changed, the run is still leased,
        waiting, finished, or was never enqueued."""
        ...

    def close(self) -> None:
        """Release connections held by this process."""
        ...

    # -- retention -----------------------------------------------------------------------
    def prune_runs(self, before: float, states: tuple[str, ...], limit: int) -> PruneResult:
        """Delete up to `limit` top-level runs that ended before `before` in one of `states`
        (final states only, see PRUNABLE_STATES; ConfigError otherwise), oldest first, each
        with all its child runs, their steps, state history and log lines, and the cache
        entries those runs produced: one transaction. Returns the counts and the result
        files the deleted rows referred to; other rows may still share some of those files
        (a Cached step refers to its producer's), see `results_in_use`."""
        ...

    def count_prunable(self, before: float, states: tuple[str, ...]) -> PruneResult:
        """What calling `prune_runs(before, states, ...)` until nothing is left would delete,
        counted without deleting; `result_refs` lists only the files no row left would use."""
        ...

    def results_in_use(self, refs: list[str]) -> list[str]:
        """Those of the result files `refs` that a run, step or cache entry refers to."""
        ...

    # -- API keys of the HTTP server (SQL in store/keys.py) --------------------------------
    def create_api_key(self, key: ApiKeyRecord) -> None:
        """Store a new API key (its hash, never the key itself)."""
        ...

    def list_api_keys(self) -> list[ApiKeyRecord]:
        """Every API key, revoked ones included, oldest first."""
        ...

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The key whose hash is `key_hash` (revoked or not), or None."""
        ...

    def revoke_api_key(self, id_or_prefix: str, now: float) -> ApiKeyRecord:
        """Revoke the key with this id or prefix (ConfigError if none or several match) and
        return it; a key already revoked keeps its time of revocation."""
        ...

    def lease_holder_key(self, run_id: str, epoch: int) -> str | None:
        """The API key id of the worker holding run `run_id` at lease `epoch`, or None (the
        server's check that a worker key writes only runs it holds)."""
        ...

    def touch_api_key(self, key_id: str, now: float) -> None:
        """Record that the key was used at `now` (skipped if recorded within the last minute,
        so a busy client does not cost a write per request)."""
        ...

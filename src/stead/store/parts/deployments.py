"""The deployments-and-schedules part of the store interface: versioned deployments, their
schedules, and the scheduled runs those create, and the records they carry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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


class DeploymentStore(Protocol):
    """Deployments and schedules: what `stead deploy`, the API and the scheduler need."""

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

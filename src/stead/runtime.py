"""What the code running now belongs to: its flow run, its task run, its deployment.

`stead.runtime` reads the run being executed from the engine's context variables (nothing is
written, and the store is read only for a deployment's default parameters). Outside a run
every attribute answers an empty value instead of raising, as Prefect's `prefect.runtime`
does: None, `{}` for parameters, `[]` for tags, 0 for `run_count`, and the current time for
`flow_run.scheduled_start_time`.

Example:
    >>> from stead import flow, runtime
    >>> @flow
    ... def nightly(region: str = "eu") -> str:
    ...     return f"{runtime.flow_run.flow_name} {runtime.flow_run.parameters['region']}"
    >>> nightly()
    'nightly eu'
    >>> runtime.flow_run.id is None      # outside a run
    True
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from stead.core.context import Frame, RunContext, current_frame, current_run

__all__ = ["deployment", "flow_run", "task_run"]


def _ctx() -> RunContext | None:
    return current_run.get()


def _decoded(text: str | None) -> dict[str, Any]:
    """Recorded parameters as a dict (`{}` when there are none or they were not storable)."""
    if not text:
        return {}
    from stead.core.serialization import decode

    try:
        value = decode(text)
    except Exception:  # a repr kept for people (unstorable arguments) is not a value
        return {}
    if not isinstance(value, dict) or "$repr" in value:
        return {}
    return value


class FlowRunInfo:
    """The flow run being executed (`stead.runtime.flow_run`).

    Attributes: `id`, `name` (the run's recorded name, else its flow's name), `flow_name`,
    `parameters` (the recorded parameters; secret values are masked as recorded),
    `scheduled_start_time` (an aware UTC datetime: the fire time of a scheduled run, else
    when the run was created; the same value on every resume), `run_count` (flow-level
    attempts so far, resumes and retries included), `tags`, `parent_flow_run_id`,
    `root_flow_run_id`, `deployment_name`, `flow_version`.

    Example:
        >>> from stead import runtime
        >>> runtime.flow_run.name is None   # outside a run
        True
    """

    @property
    def id(self) -> str | None:
        ctx = _ctx()
        return None if ctx is None else ctx.run.id

    @property
    def name(self) -> str | None:
        ctx = _ctx()
        if ctx is None:
            return None
        # A recorded run name (`flow_run_name=`) when this Stead records one.
        return getattr(ctx.run, "name", None) or ctx.run.flow_name

    @property
    def flow_name(self) -> str | None:
        ctx = _ctx()
        return None if ctx is None else ctx.run.flow_name

    @property
    def flow_version(self) -> str | None:
        ctx = _ctx()
        return None if ctx is None else getattr(ctx.run, "version", None)

    @property
    def parameters(self) -> dict[str, Any]:
        ctx = _ctx()
        return {} if ctx is None else _decoded(ctx.run.params)

    @property
    def scheduled_start_time(self) -> datetime:
        ctx = _ctx()
        if ctx is None:
            return datetime.now(UTC)
        run = ctx.run
        at = run.scheduled_for if run.scheduled_for is not None else run.created_at
        return datetime.fromtimestamp(at, UTC)

    @property
    def run_count(self) -> int:
        ctx = _ctx()
        return 0 if ctx is None else ctx.run.attempts

    @property
    def tags(self) -> list[str]:
        ctx = _ctx()
        if ctx is None:
            return []
        try:
            tags = json.loads(ctx.run.tags or "[]")
        except ValueError:
            return []
        return [str(t) for t in tags] if isinstance(tags, list) else []

    @property
    def parent_flow_run_id(self) -> str | None:
        ctx = _ctx()
        return None if ctx is None else ctx.run.parent_id

    @property
    def root_flow_run_id(self) -> str | None:
        ctx = _ctx()
        if ctx is None:
            return None
        if ctx.fence is not None:  # a claimed run: the fence names its root
            return ctx.fence.run_id
        run_id, parent = ctx.run.id, ctx.run.parent_id
        while parent is not None:
            run_id = parent
            parent = ctx.store.get_run(parent).parent_id
        return run_id

    @property
    def deployment_name(self) -> str | None:
        ctx = _ctx()
        return None if ctx is None else ctx.run.deployment

    def __repr__(self) -> str:
        return f"<stead.runtime.flow_run id={self.id!r}>"


class TaskRunInfo:
    """The task call being executed (`stead.runtime.task_run`): None outside a task body.

    Attributes: `id` (the step key, "3" or "3.1" for a call inside step 3; unique within the
    run), `name` (the step's display name when one is recorded, else the task's name),
    `task_name`, `parameters` (as recorded), `run_count` (this call's attempt, from 1),
    `flow_run_id`, `idempotency_key` (the same as `stead.step_idempotency_key()`).

    Example:
        >>> from stead import flow, task, runtime
        >>> @task
        ... def where() -> str:
        ...     return f"{runtime.task_run.name} step {runtime.task_run.id}"
        >>> @flow
        ... def f() -> str:
        ...     return where()
        >>> f()
        'where step 1'
    """

    def _step(self) -> Any:
        frame = current_frame.get(None)
        if frame is None or isinstance(frame, Frame) or _ctx() is None:
            return None  # outside runs, or in a flow body (no task is running)
        return frame

    @property
    def id(self) -> str | None:
        step = self._step()
        return None if step is None else step.key

    @property
    def name(self) -> str | None:
        step = self._step()
        if step is None:
            return None
        return getattr(step, "run_name", None) or step.name

    @property
    def task_name(self) -> str | None:
        step = self._step()
        return None if step is None else step.name

    @property
    def parameters(self) -> dict[str, Any]:
        step = self._step()
        if step is None:
            return {}
        if isinstance(step.params, dict):  # a call being named: its bound arguments
            return dict(step.params)
        return _decoded(step.params)

    @property
    def run_count(self) -> int:
        step = self._step()
        return 0 if step is None else step.attempts

    @property
    def flow_run_id(self) -> str | None:
        ctx = _ctx()
        return None if ctx is None or self._step() is None else ctx.run.id

    @property
    def idempotency_key(self) -> str | None:
        from stead.core.context import step_idempotency_key

        return step_idempotency_key() if self._step() is not None else None

    def __repr__(self) -> str:
        return f"<stead.runtime.task_run id={self.id!r}>"


class DeploymentInfo:
    """The deployment whose run is being executed (`stead.runtime.deployment`): None when
    the run was not created from a deployment (a direct call, an enqueue, a child flow).

    Attributes: `id` and `name` (a deployment is named: both are its name), `version` (the
    deployment version the run records), `parameters` (the deployment's default parameters
    of that version), `flow_run_id`.

    Example:
        >>> from stead import runtime
        >>> runtime.deployment.name is None   # not in a deployment's run
        True
    """

    @property
    def id(self) -> str | None:
        return self.name

    @property
    def name(self) -> str | None:
        ctx = _ctx()
        return None if ctx is None else ctx.run.deployment

    @property
    def version(self) -> int | None:
        ctx = _ctx()
        if ctx is None or ctx.run.deployment is None:
            return None
        return ctx.run.deployment_version

    @property
    def parameters(self) -> dict[str, Any]:
        ctx = _ctx()
        if ctx is None or ctx.run.deployment is None:
            return {}
        dep = ctx.store.get_deployment(ctx.run.deployment, ctx.run.deployment_version)
        return _decoded(dep.params)

    @property
    def flow_run_id(self) -> str | None:
        ctx = _ctx()
        return None if ctx is None or ctx.run.deployment is None else ctx.run.id

    def __repr__(self) -> str:
        return f"<stead.runtime.deployment name={self.name!r}>"


flow_run = FlowRunInfo()
task_run = TaskRunInfo()
deployment = DeploymentInfo()

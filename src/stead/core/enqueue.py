"""Putting a flow run on a queue for a worker to execute (`Flow.enqueue`).

The run is recorded Pending with its parameters, queue and priority; a worker claims it
(`stead worker start`). A run id makes enqueueing idempotent: the same id with the same
parameters is a no-op that returns the same run; with other parameters it is refused. The
answer is a `RunHandle` (core/handles.py): the run id, with `state()` and `result()`.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from stead.core import masking
from stead.core.handles import RunHandle
from stead.core.runtime import store_for
from stead.core.serialization import PARAMETER_ADVICE, encode
from stead.errors import ConfigError, ParameterError, RunConflict, SerializationError
from stead.settings import get_settings
from stead.store.base import RunRecord
from stead.store.durability import check_level

if TYPE_CHECKING:
    from stead.core.flow import Flow

ENQUEUE_OPTIONS = ("queue", "priority", "run_id", "max_recoveries", "params", "durability")


def enqueue_run(flow: Flow[Any, Any], args: tuple[Any, ...], kwargs: dict[str, Any], *,
                queue: str, priority: int, run_id: str | None, max_recoveries: int | None,
                params: dict[str, Any] | None, durability: str | None = None) -> RunHandle:
    """Record a Pending run of `flow` on `queue`; return its handle. See `Flow.enqueue`."""
    from stead.core.execution import new_run_id

    what = f"flow '{flow.name}'"
    clash = [n for n in ENQUEUE_OPTIONS if n in flow.signature.parameters]
    if clash and params is None:
        raise ConfigError(
            f"{what} has a parameter named {clash[0]!r}, which enqueue() takes as an option; "
            f"pass the flow's arguments as enqueue(params={{...}}, queue=...)")
    if params is not None and (args or kwargs):
        raise ConfigError(f"{what}: pass the flow's arguments either as params={{...}} or as "
                          "arguments to enqueue(), not both")
    if not isinstance(queue, str) or not queue.strip():
        raise ConfigError(f"{what}: queue must be a non-empty name, got {queue!r}")
    if not isinstance(priority, int):
        raise ConfigError(f"{what}: priority must be a whole number, got {priority!r}")
    if max_recoveries is not None and (not isinstance(max_recoveries, int) or
                                       max_recoveries < 0):
        raise ConfigError(f"{what}: max_recoveries must be a whole number >= 0, "
                          f"got {max_recoveries!r}")
    try:
        bound = (flow.signature.bind(**params) if params is not None
                 else flow.signature.bind(*args, **kwargs))
    except TypeError as exc:
        raise ParameterError(f"{what} was enqueued with wrong arguments: {exc}. It takes "
                             f"{flow.name}{flow.signature}.") from None
    if durability is not None:  # else the flow's option, else STEAD_DURABILITY
        check_level(durability, f"{what}: enqueue()")
    bound.apply_defaults()
    if flow.validate_parameters:  # as a direct call and a deployment do
        flow.parameter_types.check(bound.arguments)
    from stead.core.naming import flow_run_name
    from stead.core.tags import tags_json

    run_name = flow_run_name(flow, bound.arguments)  # a bad template: refused, nothing queued
    check_loadable(flow)
    values = dict(bound.arguments)
    if masking.PATTERNS or flow.secret_params or any(
            masking.is_secret_type(type(v)) for v in values.values()):
        values = masking.protect_params(values, flow.secret_params)
        masking.check_enqueueable(values, what)
    try:
        params_json = encode(values, advice=PARAMETER_ADVICE)
        if masking.PATTERNS:
            params_json = masking.mask_text(params_json)
    except SerializationError as exc:
        raise ParameterError(
            f"{what}: its parameters cannot be recorded ({exc}); a worker receives them from "
            "the database, so they must be storable values (numbers, text, lists, dicts, "
            "dates, dataclasses...)") from None
    from stead.core.context import current_run

    parent = current_run.get()
    if parent is not None and flow.database_url is None:
        return _enqueue_child(parent, flow, bound, params_json, run_name, queue, priority,
                              run_id, max_recoveries, durability)
    store = store_for(flow.database_url)
    now = flow.clock.now()
    record = RunRecord(
        id=run_id or new_run_id(), flow_name=flow.name, state="Pending",
        entrypoint=flow.entrypoint, script_path=flow.script_path, params=params_json,
        created_at=now, queue=queue, priority=priority,
        max_recoveries=(get_settings().max_recoveries if max_recoveries is None
                        else max_recoveries),
        durability=durability or flow.durability or get_settings().durability,
        namespace=get_settings().namespace,
        name=run_name, version=flow.version, tags=tags_json())
    run, created = store.create_run(record, f"enqueued on queue {queue!r}")
    if not created and (run.flow_name != flow.name or run.params != params_json):
        raise RunConflict(
            f"run id {run.id!r} already names a run of flow '{run.flow_name}' with parameters "
            f"{run.params}; enqueueing {what} with {params_json} under the same id is refused. "
            "Use another run id.")
    return RunHandle(run.id, flow.database_url)


def _enqueue_child(parent: Any, flow: Flow[Any, Any], bound: inspect.BoundArguments,
                   params_json: str, run_name: str | None, queue: str, priority: int,
                   run_id: str | None, max_recoveries: int | None,
                   durability: str | None) -> RunHandle:
    """Enqueue a child run from inside a flow, as a step of the parent: the child's id is
    the parent's id and the call's position ("PARENT:KEY", unless `run_id` is given), so a
    resumed parent finds the step recorded and never enqueues the child twice."""
    from stead.core.steps import Step, params_text
    from stead.core.tags import tags_json

    step = Step(parent, flow.name, "enqueue",
                params_text(flow.arg_names, bound.args, bound.kwargs, parent.param_max))
    if step.replayed:
        return RunHandle(step.replay(), flow.database_url)
    step.start_attempt()
    run = parent.run
    record = RunRecord(
        id=run_id or f"{run.id}:{step.key}", flow_name=flow.name, state="Pending",
        entrypoint=flow.entrypoint, script_path=flow.script_path, params=params_json,
        parent_id=run.id, parent_step=step.key, created_at=parent.clock.now(), queue=queue,
        priority=priority,
        max_recoveries=(get_settings().max_recoveries if max_recoveries is None
                        else max_recoveries),
        durability=durability or flow.durability or get_settings().durability,
        namespace=run.namespace, name=run_name, version=flow.version, tags=tags_json())
    try:
        child, created = parent.store.create_run(
            record, f"enqueued on queue {queue!r} by run {run.id}", fence=parent.fence)
        if not created and (child.flow_name != flow.name or child.params != params_json):
            raise RunConflict(f"run id {child.id!r} already names a run of flow "
                              f"'{child.flow_name}' with parameters {child.params}; "
                              "use another run id")
    except BaseException:
        step.abandoned()
        raise
    step.run_name = run_name
    step.succeeded(child.id, child_run_id=child.id)
    return RunHandle(child.id, flow.database_url)


def check_loadable(flow: Flow[Any, Any]) -> None:
    """A worker imports the flow by its entrypoint: refuse flows it could not find."""
    module, _, qualname = flow.entrypoint.partition(":")
    if "<locals>" in qualname:
        raise ConfigError(f"flow '{flow.name}' is defined inside a function; a worker could not "
                          "import it. Define it at the top level of a module or script.")
    if module == "__main__" and flow.script_path is None:
        raise ConfigError(f"flow '{flow.name}' is defined in an interactive session; a worker "
                          "could not import it. Define it in a module or script file.")
    if not inspect.isfunction(flow.fn) and not inspect.iscoroutinefunction(flow.fn):
        raise ConfigError(f"flow '{flow.name}' does not wrap a plain function; a worker "
                          "imports flows by module and name")

"""State change hooks: functions called when a flow run or a task call enters a state.

``@flow(on_failure=[notify])``, or ``@my_flow.on_failure`` as a decorator, registers hooks;
a flow hook is called as ``hook(flow, flow_run, state)``, a task hook as
``hook(task, task_run, state)``. Hooks run after the transition is recorded, once per
transition: a retry that will retry calls no on_failure, the final failure does; a replayed
step or a run that was already finished calls nothing. A hook that raises is logged in the
run's log with its traceback and never changes the run's outcome.

Hooks run outside the run's context: a task called inside a hook is not a step of the run.
on_crashed hooks run where the crash is recorded (core/outcomes.py for an interrupt,
core/takeover.py for a takeover, worker/crash_hooks.py after a worker's run was
recovered). See docs/guide/hooks.md.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from stead.core import console
from stead.core.context import current_frame, current_run
from stead.core.state_values import State as StateValue
from stead.core.states import State
from stead.errors import ConfigError, LeaseLost
from stead.store.base import Fence, LogRecord, RunRecord, Store

Hook = Callable[..., Any]
HookSpec = Hook | Iterable[Hook] | None
H = TypeVar("H", bound=Hook)

FLOW_HOOKS = ("on_completion", "on_failure", "on_crashed", "on_cancellation", "on_running")
TASK_HOOKS = ("on_completion", "on_failure", "on_running")
# The state each kind of hook is called with.
HOOK_STATES = {"on_completion": State.COMPLETED, "on_failure": State.FAILED,
               "on_crashed": State.CRASHED, "on_cancellation": State.CANCELLING,
               "on_running": State.RUNNING}
_ERROR, _INFO = 40, 20  # the logging module's levels (not imported for two numbers)
_FAILURES = (State.FAILED, State.CRASHED, State.CANCELLING, State.CANCELLED)


def hook_lists(owner: str, kinds: tuple[str, ...], **given: HookSpec) -> dict[str, list[Hook]]:
    """The hooks of a flow or task by kind, each given as None, one callable or a list.

    Example:
        >>> hook_lists("flow 'etl'", FLOW_HOOKS, on_failure=print)["on_failure"]
        [<built-in function print>]
    """
    hooks: dict[str, list[Hook]] = {}
    for kind in kinds:
        spec = given.get(kind)
        if spec is None:
            hooks[kind] = []
        elif callable(spec):
            hooks[kind] = [spec]
        elif isinstance(spec, str | bytes) or not isinstance(spec, Iterable):
            raise ConfigError(f"{owner}: {kind} must be a function or a list of functions "
                              f"called as hook(flow_or_task, run, state), got {spec!r}")
        else:
            hooks[kind] = list(spec)
        for hook in hooks[kind]:
            if not callable(hook):
                raise ConfigError(f"{owner}: {kind} holds {hook!r}, which is not callable; "
                                  "give functions such as def notify(flow, run, state): ...")
    return hooks


class TaskHookDecorators:
    """``@my_task.on_completion`` and friends: register a hook and return it unchanged."""

    hooks: dict[str, list[Hook]]

    def on_completion(self, fn: H) -> H:
        """Call `fn(obj, run, state)` when a run or call of this enters Completed.

        Example:
            >>> @etl.on_completion
            ... def report(flow, flow_run, state):
            ...     print(flow_run.name, state.name)
        """
        return self._add_hook("on_completion", fn)

    def on_failure(self, fn: H) -> H:
        """Call `fn(obj, run, state)` when a run or call of this ends Failed (after its
        retries); `state.data` is the exception."""
        return self._add_hook("on_failure", fn)

    def on_running(self, fn: H) -> H:
        """Call `fn(obj, run, state)` each time a run or call of this starts an attempt."""
        return self._add_hook("on_running", fn)

    def _add_hook(self, kind: str, fn: H) -> H:
        name = getattr(self, "name", "?")
        hook_lists(f"'{name}'", (kind,), **{kind: fn})  # the same check as the option
        self.hooks[kind].append(fn)
        return fn


class FlowHookDecorators(TaskHookDecorators):
    """The decorators of a flow: a task's, and on_crashed, on_cancellation."""

    def on_crashed(self, fn: H) -> H:
        """Call `fn(flow, flow_run, state)` when a run of this flow is recorded Crashed
        (its process was killed or interrupted), by whichever process records it."""
        return self._add_hook("on_crashed", fn)

    def on_cancellation(self, fn: H) -> H:
        """Call `fn(flow, flow_run, state)` when a running run of this flow is cancelled,
        in the process executing it, before it stops."""
        return self._add_hook("on_cancellation", fn)


def _when(at: float | None) -> datetime | None:
    return None if at is None else datetime.fromtimestamp(at, UTC)


@dataclass(slots=True)
class FlowRunInfo:
    """The flow run a flow hook is called about (Prefect's ``flow_run``).

    Example:
        >>> def notify(flow, flow_run, state):
        ...     print(f"{flow_run.flow_name} run {flow_run.id} {state.name}: {state.message}")
    """

    id: str
    name: str
    flow_name: str
    parameters: dict[str, Any]
    tags: list[str] = field(default_factory=list)
    state_name: str = ""
    run_count: int = 0  # attempts of the flow so far
    start_time: datetime | None = None
    end_time: datetime | None = None
    expected_start_time: datetime | None = None
    parent_id: str | None = None
    deployment: str | None = None
    queue: str | None = None

    @classmethod
    def of(cls, run: RunRecord, parameters: dict[str, Any] | None = None) -> FlowRunInfo:
        """The info of `run`; `parameters` default to its recorded (decoded) ones."""
        if parameters is None:
            from stead.core.serialization import decode

            try:
                parameters = dict(decode(run.params))
            except Exception:  # an unreadable value must not keep the hooks from running
                parameters = {}
        try:
            tags = list(json.loads(run.tags or "[]"))
        except ValueError:
            tags = []
        return cls(id=run.id, name=getattr(run, "name", None) or run.id,
                   flow_name=run.flow_name, parameters=parameters, tags=tags,
                   state_name=run.state, run_count=run.attempts,
                   start_time=_when(run.started_at), end_time=_when(run.ended_at),
                   expected_start_time=_when(run.scheduled_for or run.created_at),
                   parent_id=run.parent_id, deployment=run.deployment, queue=run.queue)


@dataclass(slots=True)
class TaskRunInfo:
    """The task call a task hook is called about (Prefect's ``task_run``): `id` is
    "RUN_ID/STEP_KEY", `name` "TASK-STEP_KEY"."""

    id: str
    name: str
    task_name: str
    flow_run_id: str
    step_key: str
    parameters: dict[str, Any]
    tags: list[str] = field(default_factory=list)
    run_count: int = 0  # attempts so far
    start_time: datetime | None = None


# -- calling hooks ---------------------------------------------------------------------------
def call_hooks(hooks: list[Hook], args: tuple[Any, Any, StateValue], kind: str, *,
               store: Store, run_id: str, label: str, fence: Fence | None = None,
               step_key: str | None = None, record: bool = False) -> None:
    """Call each hook with `args`, outside the run's context. A hook that raises is logged
    (run log, with its traceback) and the next one runs. With `record`, one line in the run
    log says which hooks ran (the record of an on_crashed hook run)."""
    ran = []
    run_token, frame_token = current_run.set(None), current_frame.set(None)  # type: ignore[arg-type]
    try:
        for hook in hooks:
            name = getattr(hook, "__qualname__", None) or repr(hook)
            try:
                _call(hook, args)
                ran.append(name)
            except Exception as exc:
                import traceback

                text = (f"{kind} hook '{name}' raised {type(exc).__name__}: {exc}; the run's "
                        f"state stays {args[2].name}\n"
                        + "".join(traceback.format_exception(exc)).rstrip())
                console.say(label, text.splitlines()[0])
                _log(store, run_id, step_key, _ERROR, text, fence)
    finally:
        current_frame.reset(frame_token)
        current_run.reset(run_token)
    if record:
        _log(store, run_id, step_key, _INFO,
             f"{kind} hooks ran: {', '.join(ran) if ran else 'none succeeded'}", fence)


def _call(hook: Hook, args: tuple[Any, ...]) -> None:
    result = hook(*args)
    if inspect.isawaitable(result):  # an async hook: awaited on a loop of its own
        _await_alone(result)


def _await_alone(awaitable: Any) -> None:
    import asyncio

    async def wait() -> None:
        await awaitable

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(wait())
        return
    failure: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(wait())
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="stead-async-hook")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


def _log(store: Store, run_id: str, step_key: str | None, level: int, text: str,
         fence: Fence | None) -> None:
    try:
        store.append_logs([LogRecord(run_id, step_key, time.time(), level, text)], fence)
    except (Exception, LeaseLost) as exc:  # a hook's log line never fails a run or recovery
        console.say("stead", f"could not record a hook's log line for run {run_id}: {exc}")


def flow_hooks(flow: Any, kind: str, run: RunRecord, store: Store, *,
               fence: Fence | None = None, parameters: dict[str, Any] | None = None,
               data: Any = None, message: str | None = None) -> None:
    """Call `flow`'s hooks of `kind` about `run`, which has just entered that hook's state.

    Example:
        >>> flow_hooks(nightly, "on_crashed", run, store, message="lease expired")
    """
    hooks = getattr(flow, "hooks", {}).get(kind)
    if not hooks:
        return
    if message is None and isinstance(data, BaseException):
        message = f"{type(data).__name__}: {data}"
    state = StateValue(HOOK_STATES[kind], message=message, data=data, run_id=run.id)
    call_hooks(hooks, (flow, FlowRunInfo.of(run, parameters), state), kind, store=store,
               run_id=run.id, label=console.run_label(run.flow_name, run.id), fence=fence,
               record=kind == "on_crashed")


# -- task hooks ----------------------------------------------------------------------------
def has_hooks(task: Any) -> bool:
    hooks = getattr(task, "hooks", None)
    return bool(hooks) and any(hooks.values())


def _task_hooks(task: Any, step: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                kind: str, data: Any = None) -> None:
    hooks = task.hooks.get(kind)
    if not hooks:
        return
    ctx = step.ctx
    try:
        parameters = task.bind_arguments(args, kwargs)
    except TypeError:
        parameters = {}
    info = TaskRunInfo(id=f"{ctx.run.id}/{step.key}", name=f"{task.name}-{step.key}",
                       task_name=task.name, flow_run_id=ctx.run.id, step_key=step.key,
                       parameters=parameters, tags=list(getattr(task, "tags", ())),
                       run_count=step.attempts, start_time=_when(step.started or None))
    message = f"{type(data).__name__}: {data}" if isinstance(data, BaseException) else None
    state = StateValue(HOOK_STATES[kind], message=message, data=data,
                      run_id=ctx.run.id)
    call_hooks(hooks, (task, info, state), kind, store=ctx.store, run_id=ctx.run.id,
               label=console.run_label(ctx.run.flow_name, ctx.run.id), fence=ctx.fence,
               step_key=step.key)


def _final_failure(step: Any, exc: BaseException) -> bool:
    """Whether `exc` is the failure `step` recorded as its outcome (not a store outage)."""
    return step.outcome is not None and step.outcome[0] == State.FAILED and \
        step.outcome[1] is exc


def attempts_with_hooks(task: Any, step: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                        body: Callable[..., Any],
                        attempts: Callable[[Callable[..., Any]], Any]) -> Any:
    """Run `attempts(body)` with `task`'s hooks: on_running before each attempt's body,
    on_completion after its success was recorded, on_failure after its final failure."""
    def hooked_body(*a: Any, **k: Any) -> Any:
        _task_hooks(task, step, args, kwargs, "on_running")
        return body(*a, **k)

    try:
        result = attempts(hooked_body if task.hooks.get("on_running") else body)
    except Exception as exc:
        if _final_failure(step, exc):
            _task_hooks(task, step, args, kwargs, "on_failure", exc)
        raise
    _task_hooks(task, step, args, kwargs, "on_completion", result)
    return result


async def async_attempts_with_hooks(task: Any, step: Any, args: tuple[Any, ...],
                                    kwargs: dict[str, Any], attempts: Any) -> Any:
    """`attempts_with_hooks` for an async task: `attempts` is the coroutine of its attempts
    (which call `running_hooks` at the start of each)."""
    try:
        result = await attempts
    except Exception as exc:
        if _final_failure(step, exc):
            _task_hooks(task, step, args, kwargs, "on_failure", exc)
        raise
    _task_hooks(task, step, args, kwargs, "on_completion", result)
    return result


def running_hooks(task: Any, step: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """An async task's on_running hooks, at the start of an attempt."""
    if has_hooks(task):
        _task_hooks(task, step, args, kwargs, "on_running")

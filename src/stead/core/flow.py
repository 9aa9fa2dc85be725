"""`@flow`: a function whose run is recorded, retried, and resumable from its last finished step.

Resuming calls the flow function again from the top with the recorded parameters; task calls
whose steps are recorded Completed return their stored results at once, and the first
unrecorded (or failed) step runs for real. See docs/architecture.md.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable, Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, overload

from stead.core.clock import SYSTEM_CLOCK, Clock
from stead.core.execution import Execution
from stead.core.hooks import FLOW_HOOKS, FlowHookDecorators, HookSpec, hook_lists
from stead.core.masking import declared_secrets, resolve_params
from stead.core.methods import unwrap
from stead.core.naming import NameSpec, RunName, check_version, first_paragraph
from stead.core.retries import DelaySpec, RetryOn, RetryPolicy
from stead.core.runners import TaskRunner
from stead.core.runtime import store_for
from stead.core.serialization import decode, recorded_module_name
from stead.core.task import _has_futures, positional_names
from stead.core.typecheck import ParameterTypes
from stead.errors import ConfigError, ParameterError
from stead.settings import get_settings
from stead.store.base import RunRecord, Store
from stead.store.durability import check_level

if TYPE_CHECKING:
    from stead.core.handles import RunHandle

P = ParamSpec("P")
R = TypeVar("R")

# Set by stead/core/loader.py while it imports a flow's module or script to find the flow
# again (a resume, a worker): a flow started at module level then stops the import instead
# of starting another run.
LOADING: ContextVar[bool] = ContextVar("stead_loading_flow_code", default=False)


class ModuleLevelFlowCall(BaseException):  # a signal to the loader, not an error
    """Raised by a flow call (or enqueue, resume) made while the loader imports its code.

    A BaseException so that the script's own ``except Exception`` does not swallow it; the
    loader catches it, and keeps the module as it was at that point.
    """

    def __init__(self, flow_name: str, what: str) -> None:
        super().__init__(f"{what} of flow '{flow_name}' at module level")
        self.flow_name = flow_name
        self.what = what


_captured_setting: tuple[str, ...] = ()  # the STEAD_LOGGERS whose loggers are captured


def _refuse_while_loading(flow: Flow[Any, Any], what: str) -> None:
    if LOADING.get():
        raise ModuleLevelFlowCall(flow.name, what)


class Flow(FlowHookDecorators, Generic[P, R]):
    """A decorated flow. Calling it starts (or resumes) a recorded run and returns its result.

    Example:
        >>> from stead import flow
        >>> @flow(retries=1)
        ... def nightly(day: str) -> int: ...
        >>> nightly("2026-11-22")                                   # a new run
        >>> nightly.with_options(run_id="nightly-2026-11-22")("2026-11-22")  # idempotent
    """

    def __init__(self, fn: Callable[P, R], *, name: str | None = None, retries: int = 0,
                 retry_delay: DelaySpec = None, retry_on: RetryOn | None = None,
                 timeout: float | None = None, log_prints: bool = False,
                 run_id: str | None = None, clock: Clock | None = None,
                 database_url: str | None = None, task_runner: TaskRunner | None = None,
                 durability: str | None = None,
                 log_loggers: Iterable[str] | None = None,
                 on_completion: HookSpec = None, on_failure: HookSpec = None,
                 on_crashed: HookSpec = None, on_cancellation: HookSpec = None,
                 on_running: HookSpec = None,
                 flow_run_name: NameSpec = None, description: str | None = None,
                 version: str | None = None, validate_parameters: bool = True,
                 **aliases: Any) -> None:
        if aliases:  # Prefect's spellings (retry_delay_seconds=, ...): see core/aliases.py
            given = dict(locals())  # first: the options as passed, nothing else
            from stead.core.aliases import stead_names

            for own in ("self", "fn", "aliases"):
                given.pop(own)
            given.update(stead_names("flow", name or getattr(fn, "__name__", repr(fn)),
                                     aliases, given, Flow.__init__.__kwdefaults__))
            Flow.__init__(self, fn, **given)
            return
        self._decorated = fn  # what with_options copies (a classmethod stays one)
        fn, self.method_kind = unwrap(fn)  # @flow above @classmethod/@staticmethod
        if not callable(fn):
            raise ConfigError(f"@flow needs a function, got {fn!r}")
        self.fn = fn
        self.name = name or getattr(fn, "__name__", repr(fn))
        self.retry = RetryPolicy.build(retries, retry_delay, retry_on, f"flow '{self.name}'")
        if timeout is not None and (not isinstance(timeout, int | float) or timeout <= 0):
            raise ConfigError(f"flow '{self.name}': timeout must be seconds > 0, got {timeout!r}")
        self.timeout = timeout
        self.log_prints = log_prints
        self.run_id = run_id
        self.clock = clock or SYSTEM_CLOCK
        self.database_url = database_url
        if task_runner is not None and not isinstance(task_runner, TaskRunner):
            raise ConfigError(f"flow '{self.name}': task_runner must be a TaskRunner such as "
                              f"ThreadPoolTaskRunner(8), got {task_runner!r}")
        self.task_runner = task_runner
        # None: the parent run's level, else STEAD_DURABILITY (store/durability.py).
        self.durability = (None if durability is None
                           else check_level(durability, f"flow '{self.name}'"))
        self.is_async = inspect.iscoroutinefunction(fn)
        self.signature = inspect.signature(fn)
        self.secret_params = declared_secrets(self.signature.parameters)  # recorded masked
        self.arg_names = positional_names(fn)
        self.parameter_types = ParameterTypes(fn, self.name)  # resolved at the first call
        # Names and metadata (core/naming.py): each run's name, the flow's description and
        # version (recorded on each run), and whether arguments are checked by annotations.
        self.flow_run_name = flow_run_name  # as given (a template or a function)
        self.run_namer = RunName.build(flow_run_name, f"flow '{self.name}'", "flow_run_name",
                                       self.signature)
        self.description = (description if description is not None
                            else first_paragraph(getattr(fn, "__doc__", None)))
        self.version = check_version(version, f"flow '{self.name}'")
        self.validate_parameters = bool(validate_parameters)
        if isinstance(log_loggers, str) or not all(
                isinstance(n, str) for n in log_loggers or ()):
            raise ConfigError(f"flow '{self.name}': log_loggers must be a list of logger names "
                              f"such as ['mylib', 'urllib3'], got {log_loggers!r}")
        self.log_loggers = tuple(log_loggers or ())
        self._loggers_pending = bool(self.log_loggers)  # attached at the first call
        self._options = {"name": name, "retries": retries, "retry_delay": retry_delay,
                         "retry_on": retry_on, "timeout": timeout, "log_prints": log_prints,
                         "run_id": run_id, "clock": clock, "database_url": database_url,
                         "task_runner": task_runner, "durability": durability,
                         "log_loggers": log_loggers, "flow_run_name": flow_run_name,
                         "description": description, "version": version,
                         "validate_parameters": validate_parameters}
        # State change hooks (core/hooks.py); `@flow_obj.on_failure` adds to these lists.
        self.hooks = hook_lists(f"flow '{self.name}'", FLOW_HOOKS, on_completion=on_completion,
                                on_failure=on_failure, on_crashed=on_crashed,
                                on_cancellation=on_cancellation, on_running=on_running)
        self._options.update(self.hooks)
        functools.update_wrapper(self, fn)  # type: ignore[arg-type]

    def with_options(self, **options: Any) -> Flow[P, R]:
        """A copy with options changed: run_id (idempotency key), retries, timeout, clock,
        database_url, log_prints, name, retry_delay, retry_on, task_runner, durability,
        log_loggers, on_completion, on_failure, on_crashed, on_cancellation, on_running,
        flow_run_name, description, version, validate_parameters (the copy starts with this flow's
        hooks; an option given replaces that list)."""
        if options.keys() - self._options.keys():  # Prefect's spellings: core/aliases.py
            from stead.core.aliases import stead_names

            options = stead_names("flow", self.name, options, self._options)
        unknown = set(options) - set(self._options)
        if unknown:
            raise ConfigError(f"flow '{self.name}': unknown option(s) {', '.join(sorted(unknown))};"
                              f" known: {', '.join(self._options)}")
        return Flow(self._decorated, **{**self._options, **options})

    def __repr__(self) -> str:
        return f"<Flow {self.name}>"

    bound_to: Any = None  # the instance (or class) of a flow reached as a method

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        """`@flow` on a method: ``obj.method`` is this flow with ``self`` bound, left out
        of the recorded parameters (core/methods.py)."""
        if obj is None and self.method_kind is None:
            return self
        from stead.core.methods import bind

        return bind(self, obj, objtype)

    @property
    def entrypoint(self) -> str:
        return f"{recorded_module_name(self.fn.__module__)}:{self.fn.__qualname__}"

    @property
    def script_path(self) -> str | None:
        """The file of the script that defines this flow, when it runs as ``__main__``."""
        if recorded_module_name(self.fn.__module__) != "__main__":
            return None
        return getattr(sys.modules.get(self.fn.__module__), "__file__", None)

    def _capture_loggers(self) -> None:
        """Attach the run-log handler to this flow's log_loggers and to STEAD_LOGGERS."""
        global _captured_setting
        if self._loggers_pending:
            from stead.core.runlog import capture_loggers

            capture_loggers(self.log_loggers, self.name)
            self._loggers_pending = False
        names = get_settings().log_loggers
        if names and names != _captured_setting:
            from stead.core.runlog import capture_loggers

            capture_loggers(names)
            _captured_setting = names

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run the flow (a new run, or the run of `run_id`) and return its result.

        ``return_state=True`` returns the run's final state (`stead.states.State`) instead:
        a failed run then returns its Failed state rather than raising.
        """
        _refuse_while_loading(self, "a call")
        return_state = ("return_state" in kwargs and "return_state" not in self.arg_names
                        and kwargs.pop("return_state"))
        self._capture_loggers()
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise ParameterError(f"flow '{self.name}' was called with wrong arguments: {exc}. "
                                 f"It takes {self.name}{self.signature}.") from None
        bound.apply_defaults()
        if _has_futures(bound.args, bound.kwargs):  # a subflow given futures: their values
            from stead.core.dispatch import _resolve

            bound.arguments = {k: {kk: _resolve(vv) for kk, vv in v.items()}
                               if isinstance(v, dict) else _resolve(v)
                               for k, v in bound.arguments.items()}
        if self.validate_parameters:  # the same pydantic rules as a deployment
            self.parameter_types.check(bound.arguments)
        run = Execution(self, bound, self.run_id, explicit_resume=False)
        if return_state:
            from stead.core.returned import run_for_state

            return run_for_state(run, self.is_async)  # type: ignore[no-any-return]
        return run.run_async() if self.is_async else run.run_sync()  # type: ignore[return-value]

    def enqueue(self, *args: Any, queue: str = "default", priority: int = 0,
                run_id: str | None = None, max_recoveries: int | None = None,
                params: dict[str, Any] | None = None, durability: str | None = None,
                **kwargs: Any) -> RunHandle:
        """Record a run of this flow on `queue` for a worker to execute; return its handle.

        The handle is the run id (a `str`) with `state()` and `result(timeout=)`, which waits
        for a worker to finish the run (see `RunHandle`; `stead.get_run(id)` gives one later).

        Higher `priority` runs are claimed first. A `run_id` makes this idempotent:
        enqueueing the same id and parameters again is a no-op. `max_recoveries` (default
        STEAD_MAX_RECOVERIES) caps how often the run is requeued after its worker is lost.
        `durability` (default: the flow's option, else STEAD_DURABILITY) is recorded on the
        run and the worker that executes it commits at that level.
        A flow with a parameter named like one of these options takes its arguments as
        `params={...}`.

        Example:
            >>> run = etl.enqueue(day="2026-11-22", queue="etl", run_id="etl-2026-11-22")
            >>> run
            RunHandle('etl-2026-11-22')
            >>> # then, on any host:  stead worker start --queue etl
            >>> run.result(timeout=600)
            {'rows': 1204}
        """
        from stead.core.enqueue import enqueue_run

        _refuse_while_loading(self, "an enqueue")
        return enqueue_run(self, args, kwargs, queue=queue, priority=priority, run_id=run_id,
                           max_recoveries=max_recoveries, params=params,
                           durability=durability)

    def execute_claimed(self, run: RunRecord, store: Store,
                        params: dict[str, Any] | None = None) -> R:
        """Execute `run`, which a worker claimed from `store` (Running, leased to it), with
        its recorded parameters (or `params`, the same turned into their annotated types).

        Every write is fenced by the claim's lease epoch: if the run is recovered by someone
        else meanwhile, this execution stops with LeaseLost and writes nothing more.
        """
        self._capture_loggers()
        if params is None:
            params = decode(run.params)
        params = resolve_params(params, store, self.name, run.id)
        bound = inspect.BoundArguments(self.signature, params)  # type: ignore[arg-type]
        execution = Execution(self, bound, run.id, explicit_resume=True, claimed=run,
                               store=store)
        if self.is_async:
            import asyncio

            return asyncio.run(execution.run_async())  # type: ignore[no-any-return]
        return execution.run_sync()  # type: ignore[no-any-return]

    def resume(self, run_id: str, *, force: bool = False,
               params: dict[str, Any] | None = None) -> R:
        """Resume the recorded run `run_id` of this flow (crashed, failed or interrupted).

        Completed steps return their recorded results; the rest run. With `force`, a run that
        looks alive on another host is taken over (use only when that host is gone).
        `params` gives values again for parameters that were not recorded: secret values
        masked when the run started (a SecretStr not read with `stead.secret`).

        Example:
            >>> login.resume("a1b2c3", params={"password": SecretStr(getpass())})
        """
        _refuse_while_loading(self, "a resume")
        self._capture_loggers()
        store = store_for(self.database_url)
        stored = store.get_run(run_id)
        recorded = {**decode(stored.params), **(params or {})}
        recorded = resolve_params(recorded, store, self.name, run_id)
        bound = inspect.BoundArguments(self.signature, recorded)  # type: ignore[arg-type]
        run = Execution(self, bound, run_id, explicit_resume=True, force=force)
        return run.run_async() if self.is_async else run.run_sync()  # type: ignore[return-value]

    # -- serving (stead/deployments/serve.py) ----------------------------------------------
    # The engine must not import deployments (schedules, the worker) when it loads: these
    # thin methods import stead.deployments.serve when called.
    def to_deployment(self, name: str | None = None, **options: Any) -> Any:
        """A deployment of this flow for `stead.serve(...)`; the options are those of
        `serve` except limit, pause_on_shutdown and print_starting_message.

        Example:
            >>> stead.serve(etl.to_deployment("nightly", cron="0 2 * * *"),
            ...             etl.to_deployment("hourly-eu", interval=3600,
            ...                               parameters={"region": "eu"}))
        """
        from stead.deployments.serve import to_deployment

        return to_deployment(self, name, **options)

    def serve(self, name: str | None = None, *, limit: int | None = None,
              pause_on_shutdown: bool = True, print_starting_message: bool = True,
              **options: Any) -> None:
        """Deploy this flow as `name` (default: the flow's name) and execute its runs in
        this process until Ctrl-C or SIGTERM: its scheduled runs and those asked for with
        `stead deployments run NAME`. Options: cron, interval (seconds or timedelta), rrule
        (each a value or a list; one kind at a time), schedules (Schedule objects),
        timezone, parameters, tags, description, queue (default: the name), paused, missed,
        global_limit; `limit` caps runs at once (default 4). See docs/guide/deployments.md.

        Example:
            >>> if __name__ == "__main__":
            ...     report.serve("nightly", cron="0 2 * * *", parameters={"region": "eu"})
        """
        from stead.deployments.serve import serve, to_deployment

        _refuse_while_loading(self, "a serve")  # (stead.serve() refuses it too)
        serve(to_deployment(self, name, **options), limit=limit,
              pause_on_shutdown=pause_on_shutdown, print_starting_message=print_starting_message)


@overload
def flow(fn: Callable[P, R], /) -> Flow[P, R]: ...
@overload
def flow(*, name: str | None = None, retries: int = 0, retry_delay: DelaySpec = None,
         retry_on: RetryOn | None = None, timeout: float | None = None,
         log_prints: bool = False, run_id: str | None = None, clock: Clock | None = None,
         database_url: str | None = None, task_runner: TaskRunner | None = None,
         durability: str | None = None, log_loggers: Iterable[str] | None = None,
         on_completion: HookSpec = None, on_failure: HookSpec = None,
         on_crashed: HookSpec = None, on_cancellation: HookSpec = None,
         on_running: HookSpec = None,
         # Prefect's spellings (core/aliases.py)
         retry_delay_seconds: Any = None, timeout_seconds: float | None = None,
         persist_result: bool | None = None, result_serializer: str | None = None,
         flow_run_name: NameSpec = None, description: str | None = None,
         version: str | None = None, validate_parameters: bool = True,
         ) -> Callable[[Callable[P, R]], Flow[P, R]]: ...


def flow(fn: Callable[P, R] | None = None, /, **options: Any) -> Any:
    """Make `fn` a flow. Use bare (``@flow``) or with options (``@flow(retries=1)``).

    Options: name, retries, retry_delay, retry_on, timeout (seconds per attempt),
    log_prints (record print() output as log lines), run_id (fixed id: starting it again
    returns the recorded result or resumes it), clock (for tests), database_url,
    task_runner (where submitted tasks run: ThreadPoolTaskRunner(max_workers) by default,
    ProcessPoolTaskRunner for CPU-bound work), durability (what the run's checkpoints
    survive: "fsync" power loss, "process" a killed process, "batched" steps committed in
    groups, a crash re-running at most the last group; default STEAD_DURABILITY, or the
    parent run's level for a child flow), log_loggers (names of standard-library loggers,
    e.g. ["mylib"], whose lines emitted inside this flow's runs are recorded in the run's
    log, as STEAD_LOGGERS does for every flow), on_completion / on_failure / on_crashed /
    on_cancellation / on_running (a function or a list of functions called as
    hook(flow, flow_run, state) when a run enters that state; docs/guide/hooks.md),
    flow_run_name (each run's name: a template over the parameters such as "etl-{day}", or
    a function of no argument or of the parameters dict; see docs/guide/concepts.md,
    "Naming runs"), description (default: the docstring's first paragraph), version (text
    recorded on each run, e.g. a git commit; default None), validate_parameters (default
    True: arguments are checked and converted by their annotations, "3" to 3 for an int;
    False passes them as given). Prefect's spellings are accepted too:
    retry_delay_seconds, timeout_seconds, persist_result, result_serializer
    (docs/guide/tasks.md, "Prefect's spellings").

    Example:
        >>> from stead import flow, task
        >>> @task
        ... def extract() -> list[int]:
        ...     return [1, 2, 3]
        >>> @flow
        ... def etl() -> int:
        ...     return sum(extract())
        >>> etl()
        6
    """
    if fn is not None:
        return Flow(fn, **options)
    return lambda f: Flow(f, **options)

"""Serving flows: one process that deploys them, schedules their runs and executes them.

`my_flow.serve(name, cron=..., interval=...)` (and `stead.serve(d1, d2)` for several, each
made with `my_flow.to_deployment(...)`) registers each flow as a deployment with its
schedules, on a queue of its own (named after the deployment), then runs in this process,
until Ctrl-C or SIGTERM:
- a scheduler thread that creates the runs of these deployments' schedules and makes them
  due (`scheduler.tick` every `TICK_S`, limited to these deployments);
- a worker (`worker.Worker`, in the main thread) serving their queues, so their scheduled
  runs and the runs asked for with `stead deployments run NAME` execute here, in child
  processes, with heartbeats, cancellation and recovery as for `stead worker start`.

A signal drains the worker as `stead worker start` does (runs in progress get `grace_s` to
finish, a second signal hands them back to their queue at once); then, unless
`pause_on_shutdown=False`, the schedules are paused so that no run waits for a process that
is gone, and the next `serve()` resumes them (counting fire times from then on).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from stead.core import console
from stead.core.flow import LOADING, Flow, ModuleLevelFlowCall
from stead.core.runtime import configure_console, store_for
from stead.deployments.registry import deploy
from stead.deployments.scheduler import tick
from stead.deployments.schedules import MISSED_POLICIES, Schedule
from stead.errors import ConfigError, SteadError
from stead.settings import get_settings
from stead.store.base import Store
from stead.worker.worker import Worker, WorkerOptions

TICK_S = 1.0
"""How often a serving process's scheduler runs: a due run waits at most this long."""
DEFAULT_LIMIT = 4
"""Runs a serving process executes at once unless `limit=` says otherwise."""
GRACE_S = 25.0
"""On Ctrl-C or SIGTERM, how long runs in progress may take to finish."""


@dataclass(frozen=True)
class ServedDeployment:
    """A flow and how to deploy it, made by `Flow.to_deployment`; `stead.serve()` serves it.

    Example:
        >>> nightly = etl.to_deployment("nightly", cron="0 2 * * *")
        >>> hourly = sync.to_deployment("hourly", interval=3600)
        >>> stead.serve(nightly, hourly)       # blocks until Ctrl-C
    """

    flow: Flow[Any, Any]
    name: str
    schedules: tuple[Schedule, ...] = ()
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    description: str | None = None
    queue: str = ""
    paused: bool = False
    missed: str = "latest"
    global_limit: int | None = None


def to_deployment(flow: Flow[Any, Any], name: str | None = None, *,
                  interval: Any = None, cron: str | Sequence[str] | None = None,
                  rrule: str | Sequence[str] | None = None,
                  schedules: Sequence[Schedule] | None = None, timezone: str = "UTC",
                  parameters: dict[str, Any] | None = None,
                  tags: Iterable[str] | None = None, description: str | None = None,
                  queue: str | None = None, paused: bool = False, missed: str = "latest",
                  global_limit: int | None = None, **other: Any) -> ServedDeployment:
    """Check the arguments of `Flow.serve`/`Flow.to_deployment` and build the deployment.

    Example:
        >>> d = to_deployment(etl, "nightly", cron="0 2 * * *", timezone="Europe/Berlin")
        >>> d.queue, [s.describe() for s in d.schedules]
        ('nightly', ['cron 0 2 * * * (Europe/Berlin)'])
    """
    what = f"serve of flow '{flow.name}'"
    _refuse_unsupported(what, other)
    name = flow.name if name is None else name
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{what}: name must be a deployment name such as 'nightly', "
                          f"got {name!r}")
    given = {k: v for k, v in (("cron", cron), ("interval", interval), ("rrule", rrule),
                               ("schedules", schedules)) if v is not None}
    if len(given) > 1:
        first, second = list(given)[:2]
        raise ConfigError(
            f"{what}: {first}= and {second}= were both given; keep one of them: "
            f"{first}={given[first]!r} or {second}={given[second]!r}. For schedules of several "
            "kinds pass schedules=[Schedule.cron(...), Schedule.interval(...)] "
            "(from stead.deployments.schedules import Schedule).")
    if missed not in MISSED_POLICIES:
        raise ConfigError(f"{what}: missed={missed!r}: use one of {', '.join(MISSED_POLICIES)}")
    built = tuple(_schedules(what, cron, interval, rrule, schedules, timezone))
    if not isinstance(parameters, dict | None):
        raise ConfigError(f"{what}: parameters must be a dict of the flow's parameters, "
                          f"e.g. parameters={{'region': 'eu'}}, got {parameters!r}")
    params = dict(parameters or {})
    if built:
        required = [n for n, p in flow.signature.parameters.items()
                    if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        missing = [n for n in required if n not in params]
        if missing:
            raise ConfigError(f"{what}: scheduled runs need a value for every parameter; "
                              f"{missing[0]!r} has no default: pass parameters="
                              f"{{{missing[0]!r}: ...}} or give it a default in the signature")
    if isinstance(tags, str):
        tags = [tags]
    tag_list = tuple(tags or ())
    if not all(isinstance(t, str) for t in tag_list):
        raise ConfigError(f"{what}: tags must be a list of strings, got {tags!r}")
    if global_limit is not None and (isinstance(global_limit, bool) or
                                     not isinstance(global_limit, int) or global_limit < 1):
        raise ConfigError(f"{what}: global_limit must be a whole number of runs >= 1, "
                          f"got {global_limit!r}")
    queue = name if queue is None else queue
    if not isinstance(queue, str) or not queue.strip():
        raise ConfigError(f"{what}: queue must be a non-empty name, got {queue!r}")
    return ServedDeployment(flow, name, built, params, tag_list, description, queue,
                            bool(paused), missed, global_limit)


# Options of Prefect's serve() that Stead does not take, and what to do instead.
_UNSUPPORTED = {
    "version": "Stead numbers a deployment's versions itself (a new one whenever the flow or "
               "its options change): drop version=, or say it in description=",
    "triggers": "served deployments run on schedules and on demand; drop triggers=",
    "webserver": "the API and web UI are `stead server start`; drop webserver=",
    "schedule": "pass schedules=[...] (a list), or cron=, interval= or rrule=",
    "job_variables": "a served run executes in this process's child processes; drop it",
    "entrypoint_type": "the entrypoint is the flow's module or script; drop it",
}


def _refuse_unsupported(what: str, other: dict[str, Any]) -> None:
    if other.pop("enforce_parameter_schema", True) is not True:
        raise ConfigError(f"{what}: enforce_parameter_schema=False: Stead always checks a "
                          "run's parameters against the flow's signature; drop it")
    for key in other:
        advice = _UNSUPPORTED.get(key)
        if advice is not None:
            raise ConfigError(f"{what}: {key}= is not supported: {advice}")
    if other:
        raise ConfigError(f"{what}: unknown option(s) {', '.join(sorted(other))}; known: name, "
                          "cron, interval, rrule, schedules, timezone, parameters, tags, "
                          "description, queue, paused, missed, global_limit, limit, "
                          "pause_on_shutdown, print_starting_message")


def _schedules(what: str, cron: Any, interval: Any, rrule: Any,
               schedules: Sequence[Schedule] | None, timezone: str) -> Iterable[Schedule]:
    if schedules is not None:
        if isinstance(schedules, Schedule):
            schedules = [schedules]
        for s in schedules:
            if not isinstance(s, Schedule):
                raise ConfigError(f"{what}: schedules= takes Schedule objects, e.g. "
                                  f"[Schedule.cron('0 2 * * *')], got {s!r}")
            yield s
    for expression in _listed(cron):
        if not isinstance(expression, str):
            raise ConfigError(f"{what}: cron must be an expression such as '0 2 * * *', got "
                              f"{expression!r}")
        try:
            yield Schedule.cron(expression, timezone)
        except ConfigError as exc:
            raise ConfigError(f"{what}: cron={expression!r}: {exc}") from None
    for every in _listed(interval):
        seconds = every.total_seconds() if isinstance(every, timedelta) else every
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or (
                not math.isfinite(seconds)) or seconds < 1:
            raise ConfigError(f"{what}: interval must be seconds (at least 1) or a "
                              f"timedelta, e.g. interval=3600, got {every!r}")
        yield Schedule.interval(float(seconds), timezone=timezone)
    for rule in _listed(rrule):
        try:
            has_start = isinstance(rule, str) and "DTSTART" in rule.upper()
            yield Schedule.rrule(rule, timezone, None if has_start else time.time())
        except ConfigError as exc:
            raise ConfigError(f"{what}: rrule={rule!r}: {exc}") from None


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def serve(*deployments: ServedDeployment | Flow[Any, Any], limit: int | None = None,
          pause_on_shutdown: bool = True, print_starting_message: bool = True,
          grace_s: float = GRACE_S) -> None:
    """Deploy, schedule and execute these deployments (or flows, deployed under their own
    name without a schedule) in this process until Ctrl-C or SIGTERM.

    `limit` caps the runs executed at once (child processes; default 4). See the module's
    description for what runs where, and docs/guide/deployments.md, "Serving a flow".

    Example:
        >>> stead.serve(etl.to_deployment("nightly", cron="0 2 * * *"),
        ...             sync.to_deployment("hourly", interval=3600), limit=2)
    """
    served = [d if isinstance(d, ServedDeployment) else _as_deployment(d) for d in deployments]
    if LOADING.get() and served:  # a worker's child imports this script to find a flow:
        raise ModuleLevelFlowCall(served[0].flow.name, "a serve")  # serve nothing there
    if not served:
        raise ConfigError("serve() needs at least one deployment: serve(my_flow.to_deployment("
                          "'name', cron='0 2 * * *')) or my_flow.serve('name')")
    names = [d.name for d in served]
    if len(set(names)) != len(names):
        twice = next(n for n in names if names.count(n) > 1)
        raise ConfigError(f"serve(): two deployments are named {twice!r}; give each its own "
                          "name")
    urls = {d.flow.database_url for d in served}
    if len(urls) > 1:
        raise ConfigError("serve(): the flows use different databases (database_url=); one "
                          "process serves one database: serve them from separate processes")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 1):
        raise ConfigError(f"serve(limit={limit!r}): the runs executed at once must be a whole "
                          "number >= 1, e.g. limit=4")
    if not grace_s >= 0:
        raise ConfigError(f"serve(grace_s={grace_s!r}): must be 0 seconds or more")
    if threading.current_thread() is not threading.main_thread():
        raise ConfigError("serve() must be called from the main thread: it handles Ctrl-C "
                          "and SIGTERM to stop cleanly")
    configure_console()
    store = store_for(urls.pop())
    versions = _deploy_all(store, served)
    if print_starting_message:
        print(_starting_message(store, served, versions, limit or DEFAULT_LIMIT, grace_s),
              flush=True)
    stop = threading.Event()
    scheduled = [d.name for d in served if d.schedules]
    thread = None
    if scheduled:
        thread = threading.Thread(target=_schedule_loop, args=(store, scheduled, stop),
                                  name="stead-serve-scheduler", daemon=True)
        thread.start()
    options = WorkerOptions(
        queues=list(dict.fromkeys(d.queue for d in served)),
        concurrency=limit or DEFAULT_LIMIT, name=f"serve-{names[0]}-{os.getpid()}",
        lease_s=get_settings().lease_seconds, grace_s=grace_s)
    try:
        Worker(store, options).run()
    finally:
        stop.set()
        if thread is not None:
            thread.join(TICK_S * 5)
        if pause_on_shutdown and scheduled:
            _pause(store, scheduled)


def _pause(store: Store, names: list[str]) -> None:
    now = time.time()
    try:
        for name in names:
            store.set_schedule_active(name, False, now)
    except SteadError as exc:  # stopping must not fail on it: say what is left to do
        console.say("serve", f"could not pause the schedules ({exc}); pause them with: "
                             f"stead deployments pause {names[0]}")
        return
    console.say("serve", f"paused the schedules of {', '.join(names)} (serve again to "
                         "resume them)")


def _as_deployment(flow: Any) -> ServedDeployment:
    if not isinstance(flow, Flow):
        raise ConfigError(f"serve() takes deployments made with my_flow.to_deployment(...) "
                          f"or flows, got {flow!r}")
    return to_deployment(flow)


def _deploy_all(store: Store, served: list[ServedDeployment]) -> dict[str, int]:
    """Deploy each (a new version only if something changed); their versions by name."""
    now = time.time()
    versions = {}
    for d in served:
        done = deploy(store, d.flow, name=d.name, now=now, params=d.parameters,
                      queue=d.queue, tags=d.tags, description=d.description,
                      schedules=d.schedules, missed=d.missed)
        if d.schedules:
            # Kept schedules keep their paused flag (a previous serve paused them on
            # shutdown): set it as asked; resuming counts fire times from now, so no burst.
            store.set_schedule_active(d.name, not d.paused, now)
        if d.global_limit is not None:
            store.set_queue(d.queue, d.global_limit)
        versions[d.name] = done.deployment.version
    return versions


def _schedule_loop(store: Store, names: list[str], stop: threading.Event) -> None:
    """The scheduler of a serving process: its deployments' runs, every TICK_S seconds."""
    while not stop.is_set():
        try:
            report = tick(store, time.time(), deployments=names)
            for error in report.errors:
                console.say("serve", error)
        except SteadError as exc:  # the store is unreachable: the next round tries again
            console.say("serve", f"scheduler round failed ({exc}); trying again")
        except Exception as exc:  # a bug must not stop the scheduling silently
            console.say("serve", f"scheduler round failed: {type(exc).__name__}: {exc}")
        stop.wait(TICK_S)


def _starting_message(store: Store, served: list[ServedDeployment], versions: dict[str, int],
                      limit: int, grace_s: float) -> str:
    default = f"sqlite:///{(get_settings().home / 'stead.db').resolve()}"
    db = "" if store.url == default else f" --db '{_without_password(store.url)}'"
    lines = []
    for d in served:
        when = ", ".join(s.describe() for s in d.schedules) or "no schedule"
        paused = " (paused)" if d.paused and d.schedules else ""
        lines.append(f"Serving flow '{d.flow.name}' as deployment '{d.name}' (version "
                     f"{versions[d.name]}, queue '{d.queue}'): {when}{paused}")
    first = served[0].name
    lines += [f"  database:    {_without_password(store.url)}",
              f"  run it now:  stead deployments run {first}{db}",
              f"  see runs:    stead runs ls{db}",
              f"  at most {limit} run(s) at once; Ctrl-C stops serving (runs in progress get "
              f"{grace_s:g} s to finish, Ctrl-C again hands them back to the queue)"]
    return "\n".join(lines)


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    user = f"{parts.username}:***@" if parts.username else ""
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}{port}"))

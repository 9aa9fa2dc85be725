"""`stead deploy`, `stead deployments ...` and `stead scheduler start`."""

import json
import time
from typing import Annotated

import typer
from rich.markup import escape

from stead.cli.common import DbOption, database_url, handle_errors, open_db, out
from stead.cli.render import fmt_time, table
from stead.core.runtime import configure_console, store_for
from stead.deployments.timing import AHEAD_S, EVERY_S, GRACE_S, MISSED_AFTER_S
from stead.store.base import RunFilter

deployments_app = typer.Typer(
    name="deployments", no_args_is_help=True,
    help="Deployments: named, versioned flows with default parameters, a queue and "
         "schedules.\n\nExample: [bold]stead deployments run nightly --param day=2026-11-21[/]")
scheduler_app = typer.Typer(
    name="scheduler", no_args_is_help=True,
    help="The scheduler: creates the runs of deployment schedules.\n\n"
         "Example: [bold]stead scheduler start[/]")

ParamOption = Annotated[list[str] | None, typer.Option(
    "--param", "-p", metavar="NAME=VALUE",
    help="A parameter; VALUE is JSON when it parses (5, true, [1,2], \"text\") and text "
         "otherwise. Repeat for several.")]

DEPLOY_HELP = (
    "Register a flow as a deployment: its entrypoint, default parameters, queue, tags and "
    "schedules. Deploying the same name again creates a new version (unless nothing "
    "changed); runs record the version they ran. Schedules are replaced; a schedule that "
    "stays keeps its progress, so no run is created twice, and the runs created ahead for a "
    "schedule that goes are removed.\n\n"
    "The flow's parameters are described from its signature (annotations, pydantic models) "
    "and every run's parameters are checked against them when the run is created.\n\n"
    "Example: [bold]stead deploy flows/etl.py:etl --name nightly --cron \"0 2 * * *\" "
    "--tz Europe/Berlin --queue etl --param region=eu[/]")


def deploy_command(
    entrypoint: Annotated[str, typer.Argument(
        metavar="ENTRYPOINT", help="FILE.py:FUNCTION or MODULE:FUNCTION of a @flow.")],
    name: Annotated[str, typer.Option("--name", "-n", help="The deployment's name.")],
    param: ParamOption = None,
    queue: Annotated[str, typer.Option("--queue", "-q", help="Queue of its runs.")] = "default",
    tag: Annotated[list[str] | None, typer.Option("--tag", help="A tag; repeatable.")] = None,
    cron: Annotated[list[str] | None, typer.Option(
        "--cron", metavar="EXPR", help="A cron schedule, e.g. \"0 2 * * *\"; repeatable.")
    ] = None,
    interval: Annotated[list[float] | None, typer.Option(
        "--interval", metavar="SECONDS", help="An interval schedule; repeatable.")] = None,
    rrule: Annotated[list[str] | None, typer.Option(
        "--rrule", metavar="RULE", help="An RFC 5545 RRULE schedule; repeatable.")] = None,
    tz: Annotated[str, typer.Option("--tz", help="Time zone of the schedules (IANA name).")
                  ] = "UTC",
    missed: Annotated[str, typer.Option(
        "--missed", help="Runs missed during an outage: all, latest or skip.")] = "latest",
    description: Annotated[str | None, typer.Option("--description", "-d")] = None,
    db: DbOption = None,
) -> None:
    from stead.core.loader import load_entrypoint
    from stead.deployments.params import parse_cli_params
    from stead.deployments.registry import deploy
    from stead.deployments.schedules import Schedule

    flow = load_entrypoint(entrypoint)
    schedules = ([Schedule.cron(c, tz) for c in cron or []]
                 + [Schedule.interval(i, timezone=tz) for i in interval or []]
                 + [Schedule.rrule(r, tz) for r in rrule or []])
    store = store_for(database_url(db))
    done = deploy(store, flow, name=name, now=time.time(), params=parse_cli_params(param or []),
                  queue=queue, tags=tag or [], description=description, schedules=schedules,
                  missed=missed)
    dep = done.deployment
    verb = "deployed" if done.created else "unchanged"
    out().print(f"{verb}: {escape(dep.name)} version {dep.version} ({escape(dep.entrypoint)}, "
                f"queue {escape(dep.queue)}, {len(schedules)} schedule(s))")


@deployments_app.command("ls", help="List deployments (latest versions) with their "
                                    "schedules.\n\nExample: [bold]stead deployments ls[/]")
@handle_errors
def list_deployments(db: DbOption = None) -> None:
    from stead.deployments.schedules import Schedule

    store = open_db(db)
    deps = store.list_deployments()
    console = out()
    if not deps:
        console.print("No deployments. Create one with: stead deploy FILE.py:FLOW --name NAME")
        return
    schedules = store.list_schedules()
    tbl = table()
    for column in ("Name", "Version", "Flow", "Queue", "Schedules", "Deployed"):
        tbl.add_column(column, no_wrap=column != "Schedules")
    for dep in deps:
        mine = [s for s in schedules if s.deployment == dep.name]
        text = "; ".join(Schedule.from_json(s.schedule).describe()
                         + ("" if s.active else " (paused)") for s in mine) or "-"
        tbl.add_row(dep.name, str(dep.version), dep.flow_name, dep.queue, text,
                    fmt_time(dep.created_at))
    console.print(tbl)


@deployments_app.command("run", help=(
    "Create a run of a deployment now (off its schedule) with its default parameters, "
    "overridden by --param. A worker serving its queue executes it.\n\n"
    "Example: [bold]stead deployments run nightly --param day=2026-11-21[/]"))
@handle_errors
def run_deployment_command(
    name: Annotated[str, typer.Argument(metavar="NAME")],
    param: ParamOption = None,
    run_id: Annotated[str | None, typer.Option(
        "--run-id", help="An id for the run: running the same id again is a no-op.")] = None,
    version: Annotated[int | None, typer.Option("--version", help="Default: latest.")] = None,
    db: DbOption = None,
) -> None:
    from stead.deployments.params import parse_cli_params
    from stead.deployments.registry import run_deployment

    store = open_db(db)
    run, created = run_deployment(store, name, time.time(), params=parse_cli_params(param or []),
                                  run_id=run_id, version=version)
    if created:
        out().print(f"run {run.id} of {escape(name)} v{run.deployment_version} is "
                    f"{run.state} on queue {escape(run.queue or '')}")
    else:
        out().print(f"run {run.id} exists already ({run.state}); nothing created")


def _set_active(name: str, active: bool, db: str | None) -> None:
    store = open_db(db)
    store.get_deployment(name)  # DeploymentNotFound names the problem
    now = time.time()
    waiting = [r for r in store.list_runs(RunFilter(deployment=name, limit=10_000,
                                                    state=("Scheduled", "Pending", "Late")))
               if r.scheduled_for is not None]
    changed = store.set_schedule_active(name, active, now)
    console = out()
    if active:
        console.print(f"{escape(name)}: {changed} schedule(s) now active; runs are created "
                      "from now on (the fire times that passed while paused are not run)")
        return
    removed = sum(r.state == "Scheduled" for r in waiting)
    due = [r for r in waiting if r.state != "Scheduled"]
    console.print(f"{escape(name)}: {changed} schedule(s) now paused; {removed} scheduled "
                  "run(s) that had not started removed")
    if due:
        console.print(f"{len(due)} run(s) already due still wait in their queue; cancel them "
                      f"with: stead runs cancel {escape(due[0].id)}")


@deployments_app.command("pause", help=(
    "Pause a deployment's schedules: no run of them starts until resumed. The scheduled runs "
    "created ahead that have not started are removed; runs already due (Pending, Late) stay "
    "in their queue (the command lists them; `stead runs cancel` cancels one).\n\n"
    "Example: [bold]stead deployments pause nightly[/]"))
@handle_errors
def pause(name: Annotated[str, typer.Argument(metavar="NAME")], db: DbOption = None) -> None:
    _set_active(name, False, db)


@deployments_app.command("resume", help=(
    "Resume a deployment's paused schedules. Runs are created for the fire times from now on: "
    "those that passed while paused are not missed runs, so a resume starts no burst.\n\n"
    "Example: [bold]stead deployments resume nightly[/]"))
@handle_errors
def resume(name: Annotated[str, typer.Argument(metavar="NAME")], db: DbOption = None) -> None:
    _set_active(name, True, db)


@deployments_app.command("show", help="Show a deployment: versions' entrypoint, parameters "
                                      "and schema, queue, schedules.\n\nExample: [bold]stead "
                                      "deployments show nightly[/]")
@handle_errors
def show(name: Annotated[str, typer.Argument(metavar="NAME")],
         version: Annotated[int | None, typer.Option("--version")] = None,
         db: DbOption = None) -> None:
    from stead.deployments.schedules import Schedule

    store = open_db(db)
    dep = store.get_deployment(name, version)
    console = out()
    console.print(f"[bold]{escape(dep.name)}[/] version {dep.version}, deployed "
                  f"{fmt_time(dep.created_at)}")
    console.print(f"  flow        {escape(dep.flow_name)} ({escape(dep.entrypoint)})")
    if dep.script_path:
        console.print(f"  script      {escape(dep.script_path)}")
    console.print(f"  queue       {escape(dep.queue)}")
    console.print(f"  parameters  {escape(dep.params)}")
    props = json.loads(dep.param_schema).get("properties", {})
    console.print(f"  takes       {escape(', '.join(props) or 'no parameters')}")
    now = time.time()
    for s in store.list_schedules(name):
        schedule = Schedule.from_json(s.schedule)
        last = fmt_time(s.last_fire_at) if s.last_fire_at else "never"
        following = schedule.next_after(now) if s.active else None
        upcoming = f", next run {fmt_time(following)}" if following is not None else ""
        console.print(f"  schedule    {escape(schedule.describe())}, "
                      f"{'active' if s.active else 'paused'}, missed runs: {s.missed}, "
                      f"last created for {last}{upcoming}")


@scheduler_app.command("start", help=(
    "Run the scheduler. Every --every seconds it creates the runs of active schedules for "
    "their next fire times (at most 3 per schedule, none more than --ahead seconds ahead), "
    "makes the runs whose time has come Pending for a worker, applies each schedule's "
    "missed-run policy (--missed of `stead deploy`) to runs not started in time, and marks "
    "due runs not started within --grace seconds Late. "
    "Safe to restart and to run more than one.\n\n"
    "Example: [bold]stead scheduler start --every 5[/]"))
@handle_errors
def start_scheduler(
    every: Annotated[float, typer.Option(
        "--every", metavar="SECONDS",
        help="Seconds between two rounds: a due run is handed to the workers at most "
             "this late.")] = EVERY_S,
    ahead: Annotated[float, typer.Option(
        "--ahead", metavar="SECONDS",
        help="Create runs at most this many seconds before their fire time (and at most the "
             "next 3 per schedule); at least --every, so each is created before it is due."
    )] = AHEAD_S,
    grace: Annotated[float, typer.Option(
        "--grace", metavar="SECONDS",
        help="A due run not started this many seconds after its fire time is marked Late "
             "(it can still run).")] = GRACE_S,
    missed_after: Annotated[float, typer.Option(
        "--missed-after", metavar="SECONDS",
        help="With the missed-run policy skip (--missed of `stead deploy`), a scheduled run "
             "not started this many seconds after its fire time is skipped (the scheduler "
             "or the workers were down). More than --every.")] = MISSED_AFTER_S,
    once: Annotated[bool, typer.Option("--once", help="One round, then exit.")] = False,
    db: DbOption = None,
) -> None:
    from stead.deployments.scheduler import run_scheduler, tick
    from stead.deployments.timing import check_timing

    check_timing(every, ahead, grace, missed_after)
    configure_console()
    store = store_for(database_url(db))
    if once:
        report = tick(store, time.time(), ahead_s=ahead, grace_s=grace,
                      missed_after_s=missed_after)
        out().print(f"created {len(report.created)} runs, {report.promoted} due, "
                    f"{report.skipped} skipped as missed, {report.late} late"
                    + "".join(f"\n{e}" for e in report.errors))
        return
    run_scheduler(store, every_s=every, ahead_s=ahead, grace_s=grace,
                  missed_after_s=missed_after)

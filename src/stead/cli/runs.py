"""`stead runs ...`: list, inspect and resume recorded flow runs."""

import time
from typing import Annotated

import typer
from rich import box
from rich.markup import escape
from rich.table import Table

from stead.cli.common import (
    DB_HELP,
    database_url,
    err,
    fail,
    handle_errors,
    open_db,
    out,
    resolve_run,
)
from stead.cli.render import (
    LIVE_STATES,
    error_summary,
    fmt_time,
    parse_error,
    run_status,
    short_id,
    short_repr,
    span,
    value_summary,
)
from stead.cli.show import render_run
from stead.core.states import State
from stead.store.base import RunFilter

app = typer.Typer(
    name="runs", no_args_is_help=True,
    help="List, inspect and resume flow runs.\n\nExample: [bold]stead runs ls --state Failed[/]")

DbOption = Annotated[str | None, typer.Option("--db", metavar="URL", help=DB_HELP)]
RunIdArg = Annotated[str, typer.Argument(
    metavar="RUN_ID", help="A run id, or a unique prefix of one (e.g. the 12 characters "
                           "`stead runs ls` shows).")]


@app.command("ls")
@handle_errors
def list_runs(
    state: Annotated[str | None, typer.Option(
        "--state", "-s", metavar="STATE",
        help="Only runs in this state (Running, Completed, Failed, Crashed, ...).")] = None,
    flow: Annotated[str | None, typer.Option(
        "--flow", "-f", metavar="NAME", help="Only runs of this flow.")] = None,
    limit: Annotated[int, typer.Option(
        "--limit", "-n", min=1, help="Show at most this many runs.")] = 20,
    db: DbOption = None,
) -> None:
    """List recorded runs, newest first.

    A run still marked Running whose process is gone is shown as [bold red]Crashed?[/]:
    resume it with `stead runs resume RUN_ID`.

    Example: [bold]stead runs ls --flow etl --state Failed --limit 5[/]
    """
    if state is not None:
        state = _state_name(state)
    store = open_db(db)
    runs = store.list_runs(RunFilter(state=state, flow_name=flow, limit=limit))
    if state == "Crashed":  # also the runs still marked live whose process is gone
        for live in LIVE_STATES:
            runs += [r for r in store.list_runs(RunFilter(state=live, flow_name=flow,
                                                          limit=limit)) if run_status(r).gone]
        runs = sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)[:limit]
    console = out()
    if not runs:
        what = " matching the filters" if state or flow else ""
        console.print(f"No runs{what} in {escape(store.url)}.")
        return
    table = Table(box=box.SIMPLE_HEAD)
    for name, justify in (("Run", "left"), ("Flow", "left"), ("State", "left"),
                          ("Started", "left"), ("Duration", "right"), ("Steps", "right"),
                          ("Parent", "left")):
        table.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for run in runs:
        status = run_status(run)
        live = status.state in ("Running", "Retrying") and not status.gone
        parent = short_id(run.parent_id) + f" [{run.parent_step}]" if run.parent_id else ""
        table.add_row(short_id(run.id), run.flow_name, status.text(),
                      fmt_time(run.started_at), span(run.started_at, run.ended_at, live),
                      str(len(store.load_steps(run.id))), parent)
    console.print(table)


def _state_name(text: str) -> str:
    for known in State:
        if known.value.lower() == text.strip().lower():
            return known.value
    raise typer.BadParameter(f"unknown state {text!r}; use one of "
                             f"{', '.join(s.value for s in State)}", param_hint="--state")


@app.command("show")
@handle_errors
def show_run(run_id: RunIdArg, db: DbOption = None) -> None:
    """Show one run: parameters, state timeline, steps in call order, child runs, and the
    failing step with its traceback if the run failed.

    Example: [bold]stead runs show 3f2a9c1e4b5d[/]
    """
    store = open_db(db)
    run = resolve_run(store, run_id)
    console = out()
    for part in render_run(store, run):
        console.print(part)


@app.command("resume")
@handle_errors
def resume_run(
    run_id: RunIdArg,
    force: Annotated[bool, typer.Option(
        "--force", help="Take over a run that looks alive on another host (only when that "
                        "host is gone).")] = False,
    db: DbOption = None,
) -> None:
    """Resume a crashed or failed run in this process: finished steps are reused, the rest
    run. The flow is imported from its recorded module (run stead from the project folder)
    or from the script it was defined in.

    Exit code 0 if the run completes, 1 if it fails again.

    Example: [bold]stead runs resume 3f2a9c1e4b5d[/]
    """
    from stead.core.loader import load_flow  # imports the engine's flow machinery

    store = open_db(db)
    run = resolve_run(store, run_id)
    console = out()
    if run.state in ("Completed", "Cached"):
        console.print(f"Run {run.id} is already {run.state}; result: "
                      f"{escape(value_summary(run.result, run.result_ref))}")
        return
    if run.parent_id:
        root = run.parent_id.partition(":")[0]
        fail(f"run {run.id} is a child run of {run.parent_id}; resume the top-level run "
             f"(stead runs resume {short_id(root)}), which resumes its child runs")
    flow_obj = load_flow(run).with_options(database_url=database_url(db))
    before = len(store.run_history(run.id))
    steps = store.load_steps(run.id)
    done = sum(1 for s in steps.values() if s.state in ("Completed", "Cached"))
    console.print(f"Resuming run [bold]{run.id}[/] of flow '{escape(run.flow_name)}' "
                  f"({run_status(run).label(short=False)}, {done} finished steps will be "
                  "reused)")
    started = time.time()
    try:
        result = flow_obj.resume(run.id, force=force)
    except BaseException as exc:
        after = store.get_run(run.id)
        changed = len(store.run_history(run.id)) > before
        if changed and after.state == "Failed":
            error = parse_error(after.error)
            where = f" in step {error['step']}" if error and error.get("step") else ""
            err().print(f"[bold red]Run {run.id} Failed{where}:[/] "
                        f"[red]{escape(error_summary(error, 500))}[/]  "
                        f"(stead runs show {short_id(run.id)})")
            raise typer.Exit(1) from None
        if isinstance(exc, KeyboardInterrupt):
            err().print(f"Interrupted; run {run.id} is {after.state}. Resume it again with: "
                        f"stead runs resume {short_id(run.id)}")
            raise typer.Exit(130) from None
        raise
    console.print(f"[green]Run {run.id} Completed[/] in {span(started, time.time())}; "
                  f"result: {escape(short_repr(result, 200))}")

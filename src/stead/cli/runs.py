"""`stead runs ...`: list, inspect, resume and prune recorded flow runs."""

import asyncio
import inspect
import json
import time
from typing import Annotated

import typer
from rich.markup import escape

from stead.cli import prune, waits
from stead.cli.common import (
    DbOption,
    database_url,
    describe_url,
    err,
    fail,
    handle_errors,
    open_db,
    out,
    resolve_run,
)
from stead.cli.render import (
    FINAL_STATES,
    LIVE_STATES,
    add_id_column,
    error_summary,
    fmt_time,
    parse_error,
    run_status,
    short_repr,
    span,
    table,
    value_summary,
    wait_text,
)
from stead.cli.show import render_run
from stead.core.process import describe_owner
from stead.core.states import State
from stead.store.base import RunFilter, RunRecord, Store
from stead.store.waits import WaitRecord

app = typer.Typer(
    name="runs", no_args_is_help=True,
    help="List, inspect, resume and prune flow runs; send them messages and input, and read "
         "the status they publish.\n\n"
         "Example: [bold]stead runs ls --state Failed[/]")

RunIdArg = Annotated[str, typer.Argument(
    metavar="RUN_ID", show_default=False,
    help="A run id (as `stead runs ls` shows it), or a unique prefix of one.")]


LS_HELP = (
    "List recorded runs, newest first.\n\n"
    "A run still marked Running whose process is gone is shown as [bold red]Crashed?[/]; "
    "resume it with `stead runs resume RUN_ID`. --state Crashed includes those runs. "
    "Scheduled runs whose time has not come are hidden (the footer counts them); "
    "--upcoming shows them. Runs that wait (a durable sleep, a message, input, a child run, "
    "a retry delay) say for what, and until when, in the column Wait.\n\n"
    "Example: [bold]stead runs ls --flow etl --state Failed --limit 5[/], "
    "[bold]stead runs ls --state Paused[/]")
SHOW_HELP = (
    "Show one run: parameters, state timeline, steps in call order with their results, "
    "child runs, and, if the run failed, the failing step with its exception and traceback."
    "\n\nExample: [bold]stead runs show 3f2a9c1e4b5d[/]")
RESUME_HELP = (
    "Resume a crashed or failed run in this process: finished steps return their recorded "
    "results, the rest run. A recorded failure the flow caught and went past is raised "
    "again, so the flow takes the same path; the failure that ended the run runs again, with "
    "a fresh retry budget.\n\n"
    "An enqueued run (one a worker executed) is not executed here: it is handed back to its "
    "queue, with its lease epoch bumped so its last executor can write nothing more, and a "
    "worker serving that queue resumes it.\n\n"
    "The flow is imported from its recorded module (run stead from the project folder, where "
    "`import your_module` works) or from the script it was defined in. Flows defined inside "
    "functions cannot be resumed from here; call flow.resume(run_id) from Python.\n\n"
    "Exit code: 0 when the run completes, 1 when it fails again, 2 when it cannot be resumed."
    "\n\nExample: [bold]stead runs resume 3f2a9c1e4b5d[/]")


@app.command("ls", help=LS_HELP)
@handle_errors
def list_runs(
    state: Annotated[list[str] | None, typer.Option(
        "--state", "-s", metavar="STATE",
        help="Only runs in this state (Pending, Running, Completed, Failed, Crashed, ...); "
             "repeat for several.")] = None,
    flow: Annotated[str | None, typer.Option(
        "--flow", "-f", metavar="NAME", help="Only runs of this flow.")] = None,
    queue: Annotated[str | None, typer.Option(
        "--queue", "-q", metavar="NAME", help="Only runs enqueued on this queue.")] = None,
    limit: Annotated[int, typer.Option(
        "--limit", "-n", min=1, help="Show at most this many runs.")] = 20,
    upcoming: Annotated[bool, typer.Option(
        "--upcoming", help="Also show the Scheduled runs whose time has not come yet "
                           "(hidden by default).")] = False,
    db: DbOption = None,
) -> None:
    """List recorded runs (see LS_HELP)."""
    states = tuple(dict.fromkeys(_state_name(s) for s in state or ()))
    store = open_db(db)
    now = time.time()
    hidden: set[str] = set()
    if not upcoming and (not states or "Scheduled" in states):
        # Few: the scheduler creates at most the next 3 runs of a schedule ahead.
        hidden = {r.id for r in store.list_runs(RunFilter(state="Scheduled", flow_name=flow,
                                                          queue=queue, limit=100_000))
                  if r.scheduled_for is not None and r.scheduled_for > now}
    runs = [r for r in store.list_runs(RunFilter(state=states or None, flow_name=flow,
                                                 queue=queue, limit=limit + len(hidden)))
            if r.id not in hidden][:limit]
    if "Crashed" in states:  # also the runs still marked live whose process is gone
        seen = {r.id for r in runs}
        live = tuple(LIVE_STATES)
        runs += [r for r in store.list_runs(RunFilter(state=live, flow_name=flow, queue=queue,
                                                      limit=limit))
                 if run_status(r).gone and r.id not in seen]
        runs = sorted(runs, key=lambda r: (r.created_at, r.id), reverse=True)[:limit]
    console = out()
    footer = (f"{len(hidden)} upcoming scheduled run(s) hidden (their time has not come); "
              "--upcoming shows them" if hidden else "")
    if not runs:
        what = " matching the filters" if states or flow or queue else ""
        console.print(f"No runs{what} in {escape(describe_url(store.url))}.")
        if footer:
            console.print(footer)
        return
    rows = []
    counts = store.count_steps([r.id for r in runs])
    waits_of = _waits_of(store, runs)
    for run in runs:
        status = run_status(run)
        live = status.state in ("Running", "Retrying") and not status.gone
        rows.append((run.id, run.flow_name, run.name or "", status.text(),
                     fmt_time(run.created_at),
                     span(run.started_at, run.ended_at, live),
                     str(counts[run.id]), run.queue or "",
                     run.parent_id if run.parent_id else "",
                     wait_text(waits_of[run.id], now)
                     if run.id in waits_of and run.state not in FINAL_STATES else ""))
    # (name, justify, kind): "id" columns are never cut (they fold onto a second line on a
    # very narrow screen), "fixed" ones (states, durations, counts) do not wrap, "text" ones
    # (flow and queue names, the start time: date above time) wrap first.
    columns = [("Run", "left", "id"), ("Flow", "left", "text"), ("Name", "left", "text"),
               ("State", "left", "fixed"), ("Started", "left", "text"),
               ("Duration", "right", "fixed"), ("Steps", "right", "fixed"),
               ("Queue", "left", "text"), ("Parent", "left", "id"),
               ("Wait", "left", "text")]
    # Columns that no listed run uses (a name, a queue, a parent, a wait) are left out.
    optional = {"Name", "Queue", "Parent", "Wait"}
    keep = [i for i, (name, _, _) in enumerate(columns)
            if name not in optional or any(row[i] for row in rows)]
    columns = [columns[i] for i in keep]
    rows = [tuple(row[i] for i in keep) for row in rows]
    tbl = table()
    for i, (name, justify, kind) in enumerate(columns):
        if kind == "id":
            add_id_column(tbl, name, [str(row[i]) for row in rows], justify)
        elif kind == "fixed":
            tbl.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
        else:
            tbl.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    for row in rows:
        tbl.add_row(*row)
    console.print(tbl)
    if footer:
        console.print(footer)
    console.print(f"[dim]store: {escape(describe_url(store.url))}[/]")


def _waits_of(store: Store, runs: list[RunRecord]) -> dict[str, WaitRecord]:
    """What the listed runs wait for (one store call); nothing for a key that may list runs
    but not read waits (a worker's, in remote mode)."""
    from stead.errors import AccessDenied

    try:
        return store.list_waits([r.id for r in runs])  # type: ignore[attr-defined,no-any-return]
    except AccessDenied:
        return {}


def _state_name(text: str) -> str:
    for known in State:
        if known.value.lower() == text.strip().lower():
            return known.value
    raise typer.BadParameter(f"unknown state {text!r}; use one of "
                             f"{', '.join(s.value for s in State)}", param_hint="--state")


@app.command("show", help=SHOW_HELP)
@handle_errors
def show_run(run_id: RunIdArg, db: DbOption = None) -> None:
    """Show one run (see SHOW_HELP)."""
    store = open_db(db)
    run = resolve_run(store, run_id)
    console = out()
    for part in render_run(store, run):
        console.print(part)


@app.command("resume", help=RESUME_HELP)
@handle_errors
def resume_run(
    run_id: RunIdArg,
    force: Annotated[bool, typer.Option(
        "--force", help="Take over a run that looks alive on another host (only when that "
                        "host is gone).")] = False,
    db: DbOption = None,
) -> None:
    """Resume a run (see RESUME_HELP)."""
    from stead.core.loader import load_flow  # imports the engine's flow machinery

    store = open_db(db)
    run = resolve_run(store, run_id)
    console = out()
    if run.state in ("Completed", "Cached"):
        console.print(f"Run {escape(run.id)} is already {run.state}; result: "
                      f"{escape(value_summary(run.result, run.result_ref))}")
        return
    if _is_task_run(run):
        fail(f"run {run.id} is a standalone task run (task '{run.flow_name}' called outside a "
             "flow): it has no flow to resume. Call the task again; to make its work "
             "resumable step by step, call it from a @flow.")
    if run.parent_id:
        root = run.parent_id.partition(":")[0]
        fail(f"run {run.id} is a child run of {run.parent_id}; resume the top-level run "
             f"(stead runs resume {root}), which resumes its child runs")
    if run.queue is not None:  # workers execute it: hand it back, never run it beside one
        _hand_back(store, run, force)
        return
    status = run_status(run)
    if status.alive:  # checked again by the engine; here it saves importing the flow's code
        fail(f"run {run.id} is {run.state} in {describe_owner(run.owner)}, which is alive. "
             "Wait for it to finish, or stop that process and resume the run.")
    flow_obj = load_flow(run).with_options(database_url=database_url(db))
    before = len(store.run_history(run.id))
    steps = store.load_steps(run.id)
    done = sum(1 for s in steps.values() if s.state in ("Completed", "Cached"))
    console.print(f"Resuming run [bold]{escape(run.id)}[/] of flow '{escape(run.flow_name)}' "
                  f"(state {status.label(short=False)}; {done} finished steps will "
                  "be reused)")
    started = time.time()
    try:
        result = flow_obj.resume(run.id, force=force)
        if inspect.iscoroutine(result):  # an async flow
            result = asyncio.run(result)
    except BaseException as exc:
        after = store.get_run(run.id)
        changed = len(store.run_history(run.id)) > before
        if changed and after.state == "Failed":
            error = parse_error(after.error)
            where = f" in step {error['step']}" if error and error.get("step") else ""
            err().print(f"[bold red]Run {escape(run.id)} Failed{escape(where)}:[/] "
                        f"[red]{escape(error_summary(error, 500))}[/]  "
                        f"(stead runs show {run.id})")
            raise typer.Exit(1) from None
        if isinstance(exc, KeyboardInterrupt):
            err().print(escape(f"Interrupted; run {run.id} is {after.state}. Resume it "
                               f"again with: stead runs resume {run.id}"))
            raise typer.Exit(130) from None
        raise
    console.print(f"[green]Run {escape(run.id)} Completed[/] in {span(started, time.time())}; "
                  f"result: {escape(short_repr(result, 200))}")


def _hand_back(store: Store, run: RunRecord, force: bool) -> None:
    """`runs resume` of an enqueued run: hand it back to its queue for a worker to resume.
    If a worker or reaper changed the run between our read and our write (it recovered the
    run itself), look again once: it may be waiting in its queue already."""
    from stead.core.process import owner_is_alive
    from stead.errors import RunConflict

    console = out()
    for attempt in (1, 2):
        if run.state in ("Pending", "Late", "Scheduled"):
            console.print(f"Run [bold]{escape(run.id)}[/] is {run.state}: it waits in queue "
                          f"'{escape(run.queue or '')}' already, and a worker serving it "
                          "resumes it from its last finished step.")
            return
        gone = force or (run.state in LIVE_STATES and owner_is_alive(run.owner) is False)
        try:
            store.requeue_run(run.id, run.lease_epoch, time.time(),
                              "resumed from the command line", executor_gone=gone)
            if run.state in LIVE_STATES:  # we recorded it Crashed: its on_crashed hooks run
                from stead.worker.crash_hooks import start_crash_hooks

                start_crash_hooks(store, [run.id])
            break
        except RunConflict:
            if attempt == 2:
                raise
            run = store.get_run(run.id)
    serving = [w for w in store.list_workers() if w.state == "running"
               and run.queue in json.loads(w.queues)]
    queue = escape(run.queue or "")
    console.print(
        f"Run [bold]{escape(run.id)}[/] handed back to queue '{queue}': a worker serving it "
        "resumes it from its last finished step (its last executor can write nothing more). "
        + (f"{len(serving)} worker(s) serve that queue; " if serving else
           f"No worker serves that queue now: start one with `stead worker start -q {queue}`. ")
        + f"Follow it with: stead runs show {escape(run.id)}")


CANCEL_HELP = (
    "Cancel a run and its child runs. A run waiting in a queue (Scheduled, Pending, Late) "
    "is Cancelled at once. A run a worker executes becomes Cancelling: the worker stops it "
    "(RunCancelled is raised in its code, then the process is killed after the worker's "
    "grace period), records Cancelled and frees its slots.\n\n"
    "A run started directly (not enqueued) whose process is gone is Cancelled at once; if "
    "its process is alive, stop that process (Ctrl-C) yourself.\n\n"
    "Example: [bold]stead runs cancel 3f2a9c1e4b5d[/]")


@app.command("cancel", help=CANCEL_HELP)
@handle_errors
def cancel_run(run_id: RunIdArg, db: DbOption = None) -> None:
    """Cancel a run (see CANCEL_HELP)."""
    from stead.core.process import owner_is_alive

    store = open_db(db)
    run = resolve_run(store, run_id)
    state = store.cancel_run(run.id, time.time(), "cancelled from the command line")
    console = out()
    if state == "Cancelling" and run.worker_id is None and owner_is_alive(run.owner) is False:
        store.finish_cancel(run.id, time.time(), f"{describe_owner(run.owner)} is gone")
        state = "Cancelled"
    if state == "Cancelled":
        console.print(f"run {run.id} Cancelled")
    elif run.worker_id is not None:
        console.print(f"run {run.id} Cancelling: its worker stops it within seconds "
                      "(`stead runs show` follows it)")
    else:
        console.print(f"run {run.id} Cancelling: it runs in {describe_owner(run.owner)}, "
                      "outside a worker; stop that process to end it")


app.command("prune", help=prune.HELP)(prune.prune_runs)
app.command("send", help=waits.SEND_HELP)(waits.send_message)
app.command("input", help=waits.INPUT_HELP)(waits.send_input)
app.command("status", help=waits.STATUS_HELP)(waits.show_status)
app.command("messages", help=waits.MESSAGES_HELP)(waits.list_messages)


def _is_task_run(run: RunRecord) -> bool:
    """Whether `run` is a standalone task run (core/standalone.py tags it `task-run`)."""
    import json

    try:
        return "task-run" in json.loads(run.tags or "[]")
    except ValueError:
        return False

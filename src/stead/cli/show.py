"""`stead runs show`: everything recorded about one run, as Rich renderables."""

from __future__ import annotations

import json
import time

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text

from stead.cli.render import (
    FINAL_STATES,
    RunStatus,
    add_id_column,
    clip,
    error_summary,
    error_type,
    fmt_duration,
    fmt_time,
    input_fields,
    kv_grid,
    params_summary,
    parse_error,
    run_status,
    span,
    state_text,
    step_history,
    step_order,
    table,
    value_summary,
    wait_text,
)
from stead.core.process import describe_owner
from stead.store.base import RunFilter, RunRecord, StepRecord, Store
from stead.store.durability import SURVIVES
from stead.store.waits import WaitRecord


def render_run(store: Store, run: RunRecord) -> list[RenderableType]:
    status = run_status(run)
    steps = sorted(store.load_steps(run.id).values(), key=lambda s: step_order(s.key))
    children = store.list_runs(RunFilter(parent_id=run.id, limit=1000))
    wait = store.get_wait(run.id) if run.state not in FINAL_STATES else None  # type: ignore[attr-defined]
    parts: list[RenderableType] = [header(run, status, len(steps), wait),
                                   timeline(store, run)]
    parts.append(steps_table(steps, status) if steps else Text("No steps recorded.", "dim"))
    retried = [s for s in steps if s.history and s.history != "[]"]
    if retried:
        parts.append(attempts_table(retried))
    if children:
        parts.append(children_table(children))
    if run.state == "Failed" or (run.error and run.state != "Completed"):
        parts.append(failure(run, {s.key: s for s in steps}))
    elif run.state == "Crashed" or status.gone:
        parts.append(Text.assemble(
            ("The run crashed", "bold red"),
            f" ({describe_owner(run.owner)} stopped without finishing it). "
            f"Resume it with: stead runs resume {run.id}"))
    return parts


def header(run: RunRecord, status: RunStatus, n_steps: int,
           wait: WaitRecord | None = None) -> Panel:
    grid = kv_grid()
    grid.add_row("Run", run.id)
    grid.add_row("Flow", run.flow_name)
    if run.name:
        grid.add_row("Name", run.name)
    if run.version:
        grid.add_row("Version", run.version)
    grid.add_row("State", status.text(short=False))
    if wait is not None:
        grid.add_row("Waiting for", waiting_for(run, wait))
    entry = run.entrypoint or "-"
    if run.script_path:
        entry += f"  (script {run.script_path})"
    grid.add_row("Entrypoint", entry)
    grid.add_row("Parameters", params_summary(run.params))
    if run.resumes and run.created_at != run.started_at:
        grid.add_row("Created", fmt_time(run.created_at, ms=True))
    grid.add_row("Started", fmt_time(run.started_at, ms=True))
    grid.add_row("Ended", fmt_time(run.ended_at, ms=True))
    grid.add_row("Duration", span(run.started_at, run.ended_at, live=status.alive is not False
                                  and run.state in ("Running", "Retrying")))
    grid.add_row("Attempts", str(run.attempts))
    grid.add_row("Resumes", str(run.resumes))
    grid.add_row("Steps", str(n_steps))
    grid.add_row("Owner", _owner(run, status))
    grid.add_row("Durability", f"{run.durability}: "
                               f"{SURVIVES.get(run.durability, 'unknown level')}")
    if run.queue is not None:
        queue = f"{run.queue} (priority {run.priority})" if run.priority else run.queue
        grid.add_row("Queue", queue)
        grid.add_row("Recoveries", f"{run.recoveries} of at most {run.max_recoveries} "
                                   "(requeued after its worker was lost)")
    if run.parent_id:
        grid.add_row("Parent", f"{run.parent_id} (step {run.parent_step})")
    if run.state in ("Completed", "Cached"):
        grid.add_row("Result", value_summary(run.result, run.result_ref, limit=200))
    error = parse_error(run.error)
    if error:
        grid.add_row("Error", Text(error_summary(error, 200), style="red"))
    if run.tags and run.tags != "[]":
        grid.add_row("Tags", _tags(run.tags))
    return Panel(grid, title=Text(f"Run {run.id}"), title_align="left",
                 border_style=status.text().style or "none")


def waiting_for(run: RunRecord, wait: WaitRecord, now: float | None = None) -> Text:
    """The "Waiting for" row: the wait in one line, since when, whether the run is parked,
    the time left, and for input the form's fields and the command that answers it."""
    now = time.time() if now is None else now
    text = Text(wait_text(wait, now), style="magenta")
    if wait.wake_at is not None:
        left = wait.wake_at - now
        text.append(f" (in {fmt_duration(left)})" if left > 0 else " (due)", "dim")
    where = ("parked: no process holds it; it is woken when its wait is satisfied"
             if wait.parked else "its process waits in place")
    text.append(f"\nsince {fmt_time(wait.since)}; {where}", "dim")
    if wait.kind == "input":
        fields = input_fields(wait)
        if fields:
            text.append("\nfields:\n" + "\n".join(f"  {f}" for f in fields))
        text.append(f"\nanswer with: stead runs input {run.id} JSON", "dim")
    elif wait.kind == "message":
        text.append(f"\nsend with: stead runs send {run.id} {wait.topic} PAYLOAD", "dim")
    return text


def _tags(recorded: str) -> str:
    """A run's tags column (a JSON list) as "nightly, eu"."""
    try:
        names = json.loads(recorded)
    except ValueError:
        return recorded
    return ", ".join(str(n) for n in names) if isinstance(names, list) else recorded


def _owner(run: RunRecord, status: RunStatus) -> Text:
    text = Text(describe_owner(run.owner))
    if status.alive is True:
        text.append(" (alive)", "green")
    elif status.gone:
        text.append(" (gone: the run crashed)", "bold red")
    elif status.alive is None and run.owner and run.state in ("Running", "Retrying"):
        text.append(" (another host: cannot tell if it is alive)", "yellow")
    return text


def timeline(store: Store, run: RunRecord) -> Table:
    tbl = table("State timeline")
    tbl.add_column("Time", no_wrap=True)
    tbl.add_column("State", no_wrap=True)
    tbl.add_column("After", justify="right", no_wrap=True)
    tbl.add_column("Message", overflow="fold")
    previous: float | None = None
    for change in store.run_history(run.id):
        after = "" if previous is None else "+" + fmt_duration(change.at - previous)
        tbl.add_row(fmt_time(change.at, ms=True), state_text(change.state), after,
                      change.message or "")
        previous = change.at
    return tbl


def steps_table(steps: list[StepRecord], status: RunStatus) -> Table:
    tbl = table("Steps (call order)")
    tbl.add_column("Key", no_wrap=True)
    tbl.add_column("Name", no_wrap=True)
    tbl.add_column("Kind", no_wrap=True)
    tbl.add_column("State", no_wrap=True)
    tbl.add_column("Tries", justify="right", no_wrap=True)
    tbl.add_column("Started", no_wrap=True)
    tbl.add_column("Duration", justify="right", no_wrap=True)
    tbl.add_column("Result / error", overflow="fold", min_width=24)
    run_live = status.state in ("Running", "Retrying") and not status.gone
    for step in steps:
        depth = step.key.count(".")
        first_start = step_history(step)[0][1] or step.started_at
        state = state_text(step.state)
        if step.state in ("Running", "Retrying") and not run_live:
            state = Text(f"{step.state}?", "red")  # the run is not running any more
        name = step.name if not step.run_name else f"{step.run_name} ({step.name})"
        tbl.add_row(step.key, "  " * depth + name, step.kind, state, str(step.attempts),
                      fmt_time(first_start, date=False, ms=True),
                      span(first_start, step.ended_at, live=run_live), _outcome(step))
    return tbl


def _outcome(step: StepRecord) -> Text:
    text = Text()
    if step.child_run_id:
        text.append(f"run {step.child_run_id}", "cyan")
        text.append(" · ")
    if step.depends_on:
        keys = json.loads(step.depends_on)
        shown = ", ".join(keys[:5]) + (f", … ({len(keys)})" if len(keys) > 5 else "")
        text.append(f"after [{shown}] · ", "dim")
    if step.cached_from:
        origin_run, _, origin_step = step.cached_from.rpartition("/")
        text.append(f"cached from {origin_run} [{origin_step}] · ", "magenta")
    if step.state in ("Completed", "Cached"):
        text.append(value_summary(step.result, step.result_ref))
    elif step.error:
        text.append(error_summary(parse_error(step.error)), "red")
    elif step.state == "Running":
        text.append("in progress when last seen", "dim")
    return text


def attempts_table(steps: list[StepRecord]) -> Table:
    tbl = table("Attempt history")
    tbl.add_column("Key", no_wrap=True)
    tbl.add_column("Time", no_wrap=True)
    tbl.add_column("State", no_wrap=True)
    tbl.add_column("Message", overflow="fold")
    for step in steps:
        for i, (state, at, message) in enumerate(step_history(step)):
            tbl.add_row(step.key if i == 0 else "", fmt_time(at, date=False, ms=True),
                          state_text(state), message or "")
    return tbl


def children_table(children: list[RunRecord]) -> Table:
    tbl = table("Child runs")
    add_id_column(tbl, "Run", [child.id for child in children])
    tbl.add_column("Flow", no_wrap=True)
    tbl.add_column("State", no_wrap=True)
    tbl.add_column("Step", no_wrap=True)
    tbl.add_column("Duration", justify="right", no_wrap=True)
    for child in sorted(children, key=lambda c: step_order(c.parent_step or "")):
        status = run_status(child)
        flow = child.flow_name if not child.name else f"{child.flow_name} ({child.name})"
        tbl.add_row(child.id, flow, status.text(),
                      child.parent_step or "-", span(child.started_at, child.ended_at))
    return tbl


def failure(run: RunRecord, steps: dict[str, StepRecord]) -> Panel:
    error = parse_error(run.error) or {}
    grid = kv_grid()
    key = error.get("step")
    if key:
        step = steps.get(str(key))
        shown = step.name if step is None or not step.run_name else \
            f"{step.name}' / '{step.run_name}"
        name = f" '{shown}' ({step.kind})" if step else ""
        where = f"step {key}{name}"
        if step and step.child_run_id:
            where += f", child run {step.child_run_id}"
    else:
        where = "the flow body (not inside a task)"
    grid.add_row("Failed in", where)
    grid.add_row("Exception", Text(error_type(error), style="bold red"))
    grid.add_row("Message", clip(str(error.get("message", "")), 2000))
    if error.get("attempts"):
        grid.add_row("Attempts", str(error["attempts"]))
    grid.add_row("Resume", f"stead runs resume {run.id}")
    parts: list[RenderableType] = [grid]
    tb = str(error.get("traceback") or "").rstrip()
    if tb:
        parts += [Text(""), Syntax(tb, "pytb", theme="ansi_dark", word_wrap=True,
                         background_color="default")]
    return Panel(Group(*parts), title="Failure", title_align="left", border_style="red")

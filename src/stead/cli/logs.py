"""`stead logs`: the log lines a run recorded, oldest first; --follow polls a live run."""

import time
from typing import Annotated

import typer
from rich.text import Text

from stead.cli.common import DbOption, err, handle_errors, open_db, out, resolve_run
from stead.cli.render import FINAL_STATES, fmt_time, run_status
from stead.core.console import level_name
from stead.store.base import LogRecord, RunRecord, Store

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}
LEVEL_STYLES = {10: "dim", 30: "yellow", 40: "red", 50: "bold red"}
POLL_S = 0.5
_BATCH = 10_000  # Store.read_logs' default page size


HELP = (
    "Print the log lines a run recorded (time, level, step key, message), oldest first.\n\n"
    "Lines come from stead's run logger (stead.get_logger()) and, with "
    "@flow(log_prints=True), from print(). With --follow, new lines are printed as they are "
    "stored until the run reaches a final state (or is found crashed).\n\n"
    "Example: [bold]stead logs 3f2a9c1e4b5d --follow --level WARNING[/]")


@handle_errors
def logs(
    run_id: Annotated[str, typer.Argument(
        metavar="RUN_ID", show_default=False, help="A run id, or a unique prefix of one.")],
    follow: Annotated[bool, typer.Option(
        "--follow", "-f", help="Keep printing new lines until the run finishes.")] = False,
    level: Annotated[str | None, typer.Option(
        "--level", "-l", metavar="LEVEL",
        help="Only lines at this level or above: DEBUG, INFO, WARNING, ERROR, CRITICAL.")] = None,
    db: DbOption = None,
) -> None:
    """Print a run\'s log lines (see HELP)."""
    threshold = _threshold(level)
    _print_logs(run_id, follow, threshold, db)


def _threshold(level: str | None) -> int:
    if level is None:
        return 0
    text = level.strip().upper()
    if text.isdigit():
        return int(text)
    if text not in LEVELS:
        raise typer.BadParameter(f"unknown level {level!r}; use DEBUG, INFO, WARNING, ERROR or "
                                 "CRITICAL", param_hint="--level")
    return LEVELS[text]


def _print_logs(run_id: str, follow: bool, threshold: int, db: str | None) -> None:
    store = open_db(db)
    run = resolve_run(store, run_id)
    console = out()
    last_id, shown = 0, 0
    while True:
        # Read the state before the lines: a run stores its last lines before its final state,
        # so once a final state is seen, one more read has every line.
        current = store.get_run(run.id) if follow else run
        for line in _read_all(store, run.id, last_id):
            last_id = line.id or last_id
            if line.level >= threshold:
                console.print(_render(line), soft_wrap=True)
                shown += 1
        if not follow:
            break
        if _stopped(current):
            label = run_status(current).label(short=False)
            err().print(f"run {current.id} is {label}; stopped following", style="dim",
                        markup=False)
            break
        time.sleep(POLL_S)
    if not shown:
        what = " at this level or above" if threshold else ""
        err().print(f"no log lines{what} recorded for run {run.id}", style="dim",
                    markup=False)


def _read_all(store: Store, run_id: str, after_id: int) -> list[LogRecord]:
    lines: list[LogRecord] = []
    while True:
        batch = store.read_logs(run_id, after_id=after_id, limit=_BATCH)
        lines += batch
        if len(batch) < _BATCH:
            return lines
        after_id = batch[-1].id or after_id


def _stopped(run: RunRecord) -> bool:
    """Nothing more will be logged unless someone resumes it: final, crashed, or owner gone."""
    return run.state in FINAL_STATES or run.state == "Crashed" or run_status(run).gone


def _render(line: LogRecord) -> Text:
    text = Text(fmt_time(line.at, ms=True) + " ", style="dim")
    text.append(f"{level_name(line.level):<8}", LEVEL_STYLES.get(line.level, ""))
    text.append(f"[{line.step_key}]" if line.step_key else "[flow]", "cyan")
    text.append(" " + line.message)
    return text

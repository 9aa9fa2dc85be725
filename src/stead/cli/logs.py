"""`stead logs`: the log lines a run and its child runs recorded, in time order; --follow
polls a live run."""

import time
from typing import Annotated

import typer
from rich.text import Text

from stead.cli.common import DbOption, err, handle_errors, open_db, out, resolve_run
from stead.cli.render import FINAL_STATES, fmt_time, run_status, step_order
from stead.core.console import level_name
from stead.store.base import LogRecord, RunFilter, RunRecord, Store

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}
LEVEL_STYLES = {10: "dim", 30: "yellow", 40: "red", 50: "bold red"}
POLL_S = 0.5
_BATCH = 10_000  # Store.read_logs' default page size


HELP = (
    "Print the log lines a run and its child runs recorded (time, level, step key, "
    "message), in time order; a child run's lines show its key first, e.g. [3:1].\n\n"
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
    last_ids: dict[str, int] = {}  # run id -> id of the last line read of that run
    shown = 0
    while True:
        # Read the state before the lines: a run stores its last lines before its final state,
        # so once a final state is seen, one more read has every line.
        current = store.get_run(run.id) if follow else run
        batch: list[tuple[str, LogRecord]] = []
        for one in [run.id, *_descendants(store, run.id)]:
            for line in _read_all(store, one, last_ids.get(one, 0)):
                last_ids[one] = line.id or last_ids.get(one, 0)
                if line.level >= threshold:
                    batch.append((_label(run.id, one), line))
        for label, line in sort_lines(batch):
            console.print(_render(line, label), soft_wrap=True)
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


def sort_lines(lines: list[tuple[str, LogRecord]]) -> list[tuple[str, LogRecord]]:
    """Lines in time order; lines of the same instant by run, then step position, then the
    order they were stored in. Concurrent tasks store their lines in the order they got the
    run's lock, not the order they logged them, so the stored order alone can go back in time.

    Example:
        >>> a = LogRecord("r", "2", 2.0, 20, "b", id=1)
        >>> b = LogRecord("r", "1", 1.0, 20, "a", id=2)
        >>> [line.message for _, line in sort_lines([("", a), ("", b)])]
        ['a', 'b']
    """
    return sorted(lines, key=lambda item: (item[1].at, item[0], step_order(item[1].step_key or "0"),
                                           item[1].id or 0))


def _descendants(store: Store, run_id: str) -> list[str]:
    """The ids of the run's child runs, their child runs, and so on."""
    found: list[str] = []
    parents = [run_id]
    while parents:
        children = [c.id for p in parents
                    for c in store.list_runs(RunFilter(parent_id=p, limit=10_000))]
        found += children
        parents = children
    return found


def _label(root_id: str, run_id: str) -> str:
    """How a line's run is named: "" for the run asked for, else the child's key path."""
    if run_id == root_id:
        return ""
    return run_id.removeprefix(root_id + ":")


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


def _render(line: LogRecord, run_label: str = "") -> Text:
    text = Text(fmt_time(line.at, ms=True) + " ", style="dim")
    text.append(f"{level_name(line.level):<8}", LEVEL_STYLES.get(line.level, ""))
    where = line.step_key or "flow"
    text.append(f"[{run_label}:{where}]" if run_label else f"[{where}]", "cyan")
    text.append(" " + line.message)
    return text

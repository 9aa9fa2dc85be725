"""`stead runs prune`: delete old finished runs with their steps, logs and result files."""

from __future__ import annotations

import re
import sys
import time
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from stead.cli.common import DbOption, err, fail, handle_errors, open_db, out
from stead.cli.render import fmt_time
from stead.core.retention import PruneReport, prune
from stead.core.states import State
from stead.settings import get_settings
from stead.store.audit import prune_old_audit
from stead.store.base import PRUNABLE_STATES, Store

HELP = (
    "Delete finished runs that ended longer ago than --older-than, with their child runs, "
    "steps, state history, log lines, the cache entries they produced, and their large "
    "result files (a file that a newer Cached step still uses is kept).\n\n"
    f"By default runs in {', '.join(PRUNABLE_STATES)} are pruned; --state chooses among "
    "them. Live runs (Pending, Running, ...) are never pruned. Asks before deleting unless "
    "--yes is given (required when stdin is not a terminal).\n\n"
    "Audit log rows older than STEAD_AUDIT_RETENTION_DAYS (default 90; 0 keeps them) are "
    "deleted too, and counted.\n\n"
    "Example: [bold]stead runs prune --older-than 30d --dry-run[/], then "
    "[bold]stead runs prune --older-than 30d --state Failed --yes[/]")

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86_400.0, "w": 604_800.0}


def parse_duration(text: str) -> float:
    """Seconds in "30d", "12h", "90m", "3600s" (or "2w"); typer.BadParameter otherwise."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smhdw])", text.strip().lower())
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a duration; give a number and a unit: "
                                 "30d, 12h, 90m or 3600s", param_hint="--older-than")
    return float(match[1]) * UNITS[match[2]]


def _state_names(texts: list[str] | None) -> tuple[str, ...]:
    names = []
    for text in texts or ():
        known = [s.value for s in State if s.value.lower() == text.strip().lower()]
        if not known:
            raise typer.BadParameter(f"unknown state {text!r}; use one of "
                                     f"{', '.join(PRUNABLE_STATES)}", param_hint="--state")
        names.append(known[0])
    return tuple(dict.fromkeys(names)) or PRUNABLE_STATES


def fmt_bytes(n: int) -> str:
    size, unit = float(n), "bytes"
    for bigger in ("KB", "MB", "GB"):
        if size < 1000:
            break
        size, unit = size / 1000, bigger
    return f"{n} bytes" if unit == "bytes" else f"{size:.1f} {unit}"


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def summary(report: PruneReport, freed: str = "") -> str:
    """"3 runs, 30 steps, 12 log lines, 0 cache entries and 2 result files (1.2 MB)"."""
    entries = "cache entry" if report.cache == 1 else "cache entries"
    return (f"{_plural(report.runs, 'run')}, {_plural(report.steps, 'step')}, "
            f"{_plural(report.logs, 'log line')}, {report.cache:,} {entries} and "
            f"{_plural(report.files, 'result file')} ({fmt_bytes(report.bytes)}{freed})")


def stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


@handle_errors
def prune_runs(
    older_than: Annotated[str, typer.Option(
        "--older-than", metavar="AGE", show_default=False,
        help="Prune runs that ended longer ago than this: 30d, 12h, 90m, 3600s.")],
    state: Annotated[list[str] | None, typer.Option(
        "--state", "-s", metavar="STATE",
        help="Only runs in this final state; repeat for several. Default: "
             f"{', '.join(PRUNABLE_STATES)}.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Only count what would be deleted.")] = False,
    yes: Annotated[bool, typer.Option(
        "--yes", "-y", help="Do not ask for confirmation.")] = False,
    db: DbOption = None,
) -> None:
    """Prune old finished runs (see HELP)."""
    age = parse_duration(older_than)
    states = _state_names(state)
    store = open_db(db)
    if store.url.startswith(("http://", "https://")):
        fail(f"{store.url} is a Stead server: prune where its database and result files are "
             "(on the server, with its own database URL), or set STEAD_RETENTION_DAYS for the "
             "server's retention service")
    now = time.time()
    preview = prune(store, age, now, states, dry_run=True)  # also checks the states
    kind = "finished" if set(states) == set(PRUNABLE_STATES) else "/".join(states)
    what = f"{kind} runs that ended before {fmt_time(preview.before)}"
    console = out()
    audit_days = get_settings().audit_retention_days
    if dry_run:
        expired = prune_old_audit(store, now, audit_days, count_only=True)
        if expired:
            console.print(f"Would delete {_plural(expired, 'audit row')} older than "
                          f"{_days(audit_days)} (STEAD_AUDIT_RETENTION_DAYS).")
    elif not preview.runs:  # the audit log's retention is a setting: applied without asking
        _prune_audit(store, now, audit_days)
    if not preview.runs:
        console.print(f"Nothing to prune: no {escape(what)} in {escape(store.url)}.")
        return
    if dry_run:
        console.print(f"Would prune {escape(summary(preview))}: the {escape(what)}. Nothing "
                      "was deleted; run again without --dry-run to delete them.")
        return
    if not yes:
        if not stdin_is_terminal():
            fail(f"not pruning {preview.runs:,} runs without confirmation: stdin is not a "
                 "terminal to ask on. Pass --yes to prune them (or --dry-run to see what "
                 "would go).")
        if not typer.confirm(f"Delete {summary(preview)}: the {what}?", default=False):
            err().print("Nothing was deleted.")
            raise typer.Exit(1)
    columns = (TextColumn("Pruning runs"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[steps]:,} steps"))
    with Progress(*columns, console=err(), transient=True) as progress:
        bar = progress.add_task("prune", total=preview.runs, steps=0)
        report = prune(store, age, now, states, on_batch=lambda r: progress.update(
            bar, completed=r.runs, steps=r.steps))
    console.print(f"Pruned {escape(summary(report, ' freed'))}: the {escape(what)}.")
    _prune_audit(store, now, audit_days)


def _prune_audit(store: Store, now: float, days: float) -> None:
    """Delete the audit rows older than STEAD_AUDIT_RETENTION_DAYS and say how many went."""
    deleted = prune_old_audit(store, now, days)
    if deleted is not None:
        out().print(f"Deleted {_plural(deleted, 'audit row')} older than {_days(days)} "
                    "(STEAD_AUDIT_RETENTION_DAYS).")


def _days(days: float) -> str:
    return f"{days:g} day{'' if days == 1 else 's'}"

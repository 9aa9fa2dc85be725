"""`stead queues ...` and `stead limits ...`: queues with their limits, and tag limits."""

import time
from typing import Annotated

import typer
from rich.markup import escape

from stead.cli.common import DbOption, database_url, handle_errors, open_db, out
from stead.cli.render import fmt_duration, table
from stead.core.runtime import store_for
from stead.errors import ConfigError
from stead.store.base import Limit

queues_app = typer.Typer(
    name="queues", no_args_is_help=True,
    help="Queues of enqueued runs and their concurrency limits.\n\n"
         "Example: [bold]stead queues ls[/], [bold]stead queues set etl --limit 4[/]")
limits_app = typer.Typer(
    name="limits", no_args_is_help=True,
    help="Global limits on tasks by tag, across every worker and process.\n\n"
         "Example: [bold]stead limits set db --concurrency 5[/], "
         "[bold]stead limits set api --rate 10 --per 1[/]")


@queues_app.command("ls", help="List queues: limit, runs waiting, runs running, and how long "
                               "the oldest has waited.\n\nExample: [bold]stead queues ls[/]")
@handle_errors
def list_queues(db: DbOption = None) -> None:
    store = open_db(db)
    queues = store.list_queues()
    console = out()
    if not queues:
        console.print(f"No queues in {escape(store.url)}: enqueue a run with "
                      "my_flow.enqueue(..., queue='NAME').")
        return
    now = time.time()
    tbl = table()
    for column, justify in (("Queue", "left"), ("Limit", "right"), ("Pending", "right"),
                            ("Running", "right"), ("Oldest waiting", "right")):
        tbl.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for q in queues:
        waited = fmt_duration(now - q.oldest_pending_at) if q.oldest_pending_at else ""
        tbl.add_row(q.name, "-" if q.concurrency_limit is None else
                    str(q.concurrency_limit), str(q.pending), str(q.running), waited)
    console.print(tbl)


@queues_app.command("set", help="Create a queue or change its concurrency limit: at most "
                                "LIMIT of its runs execute at once, across all workers.\n\n"
                                "Example: [bold]stead queues set etl --limit 4[/] "
                                "([bold]--no-limit[/] removes it)")
@handle_errors
def set_queue(
    name: Annotated[str, typer.Argument(metavar="QUEUE", help="The queue's name.")],
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, help="Runs of this queue executing at once.")] = None,
    no_limit: Annotated[bool, typer.Option("--no-limit", help="Remove the limit.")] = False,
    db: DbOption = None,
) -> None:
    if (limit is None) == (not no_limit):
        raise ConfigError("give either --limit N or --no-limit")
    store_for(database_url(db)).set_queue(name, limit)
    out().print(f"queue {escape(name)}: " + (f"at most {limit} runs at once" if limit
                                                else "no limit"))


@limits_app.command("ls", help="List tag limits.\n\nExample: [bold]stead limits ls[/]")
@handle_errors
def list_limits(db: DbOption = None) -> None:
    store = open_db(db)
    limits = store.list_limits()
    console = out()
    if not limits:
        console.print("No tag limits. Set one with: stead limits set TAG --concurrency N")
        return
    tbl = table()
    for column in ("Tag", "Concurrency", "Rate"):
        tbl.add_column(column, no_wrap=True)
    for lim in limits:
        rate = f"{lim.rate} per {lim.period:g} s" if lim.rate and lim.period else "-"
        tbl.add_row(lim.name, "-" if lim.concurrency is None else str(lim.concurrency),
                    rate)
    console.print(tbl)


@limits_app.command("set", help=(
    "Limit the tasks tagged TAG (@task(tags=['TAG'])) across every worker and process: at "
    "most --concurrency at once and/or at most --rate starts per --per seconds. A slot held "
    "by a process that dies is freed when its lease lapses.\n\n"
    "Example: [bold]stead limits set warehouse --concurrency 5 --rate 100 --per 60[/]"))
@handle_errors
def set_limit(
    tag: Annotated[str, typer.Argument(metavar="TAG", help="The tag to limit.")],
    concurrency: Annotated[int | None, typer.Option(
        "--concurrency", min=1, help="Tasks with this tag running at once.")] = None,
    rate: Annotated[int | None, typer.Option(
        "--rate", min=1, help="Starts allowed per period (with --per).")] = None,
    per: Annotated[float | None, typer.Option(
        "--per", metavar="SECONDS", help="The period of --rate, in seconds.")] = None,
    db: DbOption = None,
) -> None:
    if concurrency is None and rate is None:
        raise ConfigError("give --concurrency N, or --rate N --per SECONDS, or both")
    if (rate is None) != (per is None) or (per is not None and per <= 0):
        raise ConfigError("--rate and --per go together, and --per must be > 0 seconds")
    store_for(database_url(db)).set_limit(Limit(tag, concurrency, rate, per))
    out().print(f"tag {escape(tag)}: limit set")


@limits_app.command("rm", help="Remove a tag limit.\n\nExample: [bold]stead limits rm db[/]")
@handle_errors
def remove_limit(
    tag: Annotated[str, typer.Argument(metavar="TAG")],
    db: DbOption = None,
) -> None:
    store_for(database_url(db)).delete_limit(tag)
    out().print(f"tag {escape(tag)}: no limit")

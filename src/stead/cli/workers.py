"""`stead worker start` and `stead workers ls`."""

import json
import time
from typing import Annotated

import typer
from rich.markup import escape
from rich.text import Text

from stead.cli.common import DbOption, database_url, handle_errors, open_db, out
from stead.cli.render import fmt_duration, fmt_time, table
from stead.core.runtime import configure_console, store_for
from stead.errors import ConfigError
from stead.settings import get_settings

worker_app = typer.Typer(
    name="worker", no_args_is_help=True,
    help="Run a worker that executes enqueued flow runs.\n\n"
         "Example: [bold]stead worker start --queue etl --concurrency 8[/]")
workers_app = typer.Typer(
    name="workers", no_args_is_help=True,
    help="See the workers that serve this database.\n\nExample: [bold]stead workers ls[/]")

START_HELP = (
    "Claim runs from queues and execute them in child processes (one run per child at a "
    "time; the children are reused, and replaced if one dies).\n\n"
    "Runs are enqueued from Python with [bold]my_flow.enqueue(..., queue='etl')[/]. The flow "
    "is imported from its recorded module (start the worker where `import your_module` works) "
    "or from the script it was defined in.\n\n"
    "Many workers on many hosts can share one PostgreSQL database; SQLite suits workers on "
    "one host. A worker that stops heartbeating for --lease seconds loses its runs: they are "
    "marked Crashed and resumed by another worker from their last finished step.\n\n"
    "SIGTERM or Ctrl-C drains: no new runs, runs in progress get --grace seconds to finish, "
    "then are handed back to their queues. A second signal hands them back at once.\n\n"
    "Example: [bold]STEAD_DATABASE_URL=postgresql://db/stead stead worker start -q etl -c 8[/]")


@worker_app.command("start", help=START_HELP)
@handle_errors
def start(
    queue: Annotated[list[str], typer.Option(
        "--queue", "-q", metavar="NAME",
        help="A queue to take runs from; repeat for several.")] = ["default"],  # noqa: B006
    concurrency: Annotated[int, typer.Option(
        "--concurrency", "-c", min=1, help="Runs executed at once (child processes).")] = 4,
    name: Annotated[str | None, typer.Option(
        "--name", help="Name shown by `stead workers ls` (default HOST-PID).")] = None,
    lease: Annotated[float | None, typer.Option(
        "--lease", metavar="SECONDS",
        help="Lease on each run, renewed every third of it (default STEAD_LEASE_SECONDS, "
             "30).")] = None,
    grace: Annotated[float, typer.Option(
        "--grace", metavar="SECONDS",
        help="On SIGTERM, how long runs in progress may take to finish.")] = 25.0,
    poll: Annotated[float, typer.Option(
        "--poll", metavar="SECONDS", help="How often an idle worker looks for runs.")] = 0.1,
    max_runs: Annotated[int | None, typer.Option(
        "--max-runs", min=1, help="Stop after executing this many runs.")] = None,
    db: DbOption = None,
) -> None:
    """Start a worker (see START_HELP)."""
    from stead.worker.worker import Worker, WorkerOptions

    lease_s = lease if lease is not None else get_settings().lease_seconds
    if lease_s <= 0 or grace < 0 or poll <= 0:
        raise ConfigError("--lease and --poll must be > 0 seconds and --grace >= 0")
    configure_console()
    store = store_for(database_url(db))
    options = WorkerOptions(queues=list(dict.fromkeys(queue)), concurrency=concurrency,
                            name=name, lease_s=lease_s, poll_s=poll, grace_s=grace,
                            max_runs=max_runs)
    raise typer.Exit(Worker(store, options).run())


@workers_app.command("ls", help="List workers: name, host, queues, state, runs in progress "
                                "last heartbeat and lease. A worker silent for longer than "
                                "its own lease (`worker start --lease`) is shown as "
                                "[bold red]lost[/]: its runs are recovered elsewhere.\n\nExample: "
                                "[bold]stead workers ls --all[/]")
@handle_errors
def list_workers(
    all_: Annotated[bool, typer.Option(
        "--all", "-a", help="Include workers that stopped.")] = False,
    db: DbOption = None,
) -> None:
    """List workers."""
    store = open_db(db)
    default_lease = get_settings().lease_seconds
    now = time.time()
    workers = [w for w in store.list_workers() if all_ or w.state != "stopped"]
    console = out()
    if not workers:
        console.print(f"No workers{'' if all_ else ' running'} in {escape(store.url)}"
                      f"{'' if all_ else ' (--all includes stopped ones)'}.")
        return
    tbl = table()
    for column, justify in (("Name", "left"), ("Host", "left"), ("PID", "right"),
                            ("Queues", "left"), ("State", "left"), ("Runs", "right"),
                            ("Heartbeat", "right"), ("Lease", "right"), ("Started", "left")):
        tbl.add_column(column, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    for w in workers:
        silent = now - w.heartbeat_at
        state: str | Text = w.state
        if w.is_lost(now, default_lease):
            state = Text("lost", style="bold red")
        lease = f"{w.lease_s:g} s" if w.lease_s is not None else f"{default_lease:g} s?"
        tbl.add_row(w.name, w.host, str(w.pid), ", ".join(json.loads(w.queues)), state,
                    f"{w.running}/{w.concurrency}", f"{fmt_duration(max(silent, 0))} ago",
                    lease, fmt_time(w.started_at))
    console.print(tbl)
    if any(w.lease_s is None for w in workers):
        console.print("[dim]Lease?: a worker of an older Stead that did not record its "
                      "lease; this reader's STEAD_LEASE_SECONDS is assumed.[/]")

"""`stead db status` and `stead db upgrade`: a database's schema, shown and migrated.

Commands that read (`stead runs ls`, `show`, `logs`, ...) never change a schema; the engine
and workers create a new database's schema and upgrade an old one only while no worker is
live there (store/migrate.py). `stead db upgrade` is the explicit way.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.markup import escape

from stead.cli.common import DbOption, database_url, err, handle_errors, out, quiet_pool_logs
from stead.settings import get_settings

db_app = typer.Typer(
    name="db", no_args_is_help=True,
    help="Show and upgrade the database's schema.\n\n"
         "Example: [bold]stead db status[/], then [bold]stead db upgrade[/]")

STATUS_HELP = (
    "Show where the database is (the resolved file path, or the PostgreSQL server), its "
    "schema revision, the revision this Stead uses, and the migrations `stead db upgrade` "
    "would apply. Changes nothing. Exit code 0 when the schema is up to date, 1 when it is "
    "missing, out of date or newer than this Stead.\n\n"
    "Example: [bold]stead db status --db sqlite:///data/stead.db[/]")
UPGRADE_HELP = (
    "Create the schema of a new database, or migrate an out-of-date one to this Stead's "
    "revision, and print what was done. Workers of an older Stead still using the database "
    "refuse it once upgraded: upgrade them too (their names are printed).\n\n"
    "Example: [bold]stead db upgrade --db postgresql://stead@db/stead[/]")


@db_app.command("status", help=STATUS_HELP)
@handle_errors
def status(
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the status as one JSON object.")] = False,
    db: DbOption = None,
) -> None:
    """Show the schema status (see STATUS_HELP)."""
    from stead.store.migrate import read_status

    quiet_pool_logs()
    st = read_status(database_url(db), get_settings().cli_wait_seconds)
    if as_json:
        typer.echo(json.dumps({
            "database": st.where, "state": st.state, "revision": st.current, "head": st.head,
            "pending": [m.revision for m in st.pending], "live_workers": st.live_workers}))
    else:
        console = out()
        console.print(f"database   {escape(st.where)}")
        console.print(f"revision   {st.current or '-'}  ({st.state})")
        console.print(f"head       {st.head}  (this Stead)")
        for i, m in enumerate(st.pending):
            label = "pending   " if i == 0 else "          "
            console.print(f"{label} {m.revision}  {escape(m.summary)}", soft_wrap=True)
        if st.state == "newer":
            console.print("Written by a newer Stead: upgrade Stead (pip install -U stead).")
        elif st.state in ("out of date", "no schema"):
            console.print("Run [bold]stead db upgrade[/] to apply the pending migrations.")
        elif st.state == "no database":
            console.print("Nothing has been recorded there yet.")
    raise typer.Exit(0 if st.state == "up to date" else 1)


@db_app.command("upgrade", help=UPGRADE_HELP)
@handle_errors
def upgrade(db: DbOption = None) -> None:
    """Create or migrate the schema (see UPGRADE_HELP)."""
    from stead.store import open_store
    from stead.store.migrate import SCHEMA_HEAD, read_status

    quiet_pool_logs()
    url = database_url(db)
    wait_s = get_settings().cli_wait_seconds
    before = read_status(url, wait_s)
    console = out()
    if before.state == "up to date":
        console.print(f"{escape(before.where)} is up to date (revision {SCHEMA_HEAD}): "
                      "nothing to do.")
        return
    steps = before.pending
    # Opened here, not through the process's cache: this open is the upgrade (a schema newer
    # than this Stead raises SchemaMismatch, naming both revisions).
    open_store(url, durability="process", schema="upgrade", connect_wait_s=wait_s).close()
    after = read_status(url, wait_s)
    verb = "Created the schema of" if before.current is None else "Upgraded"
    console.print(f"{verb} {escape(after.where)}: revision {before.current or '(none)'} -> "
                  f"{after.current}, {len(steps)} migration(s):")
    for m in steps:
        console.print(f"  {m.revision}  {escape(m.summary)}", soft_wrap=True)
    if before.live_workers:
        err().print(f"[yellow]note:[/] {len(before.live_workers)} live worker(s) were started "
                    f"on the old schema: {escape(', '.join(before.live_workers))}. They run an "
                    "older Stead: upgrade and restart them.")

"""`stead audit ls`: who changed what, when and from where (the audit log of store/audit.py)."""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer
from rich.markup import escape

from stead.cli.common import DbOption, handle_errors, open_db, out
from stead.cli.prune import parse_duration
from stead.cli.render import fmt_time, table
from stead.errors import ConfigError
from stead.store.audit import AuditFilter, AuditRecord, as_dict, audit_log

audit_app = typer.Typer(
    name="audit", no_args_is_help=True,
    help="The audit log: every state-changing or refused request to the server, and local "
         "key changes.\n\nExample: [bold]stead audit ls --since 1d --denied[/]")

LS_HELP = (
    "List audit rows, newest first: when, who (the API key's name and id; local:USER for a "
    "command on this host), from which address, the action, its target and its outcome (the "
    "HTTP status). Filters combine. Workers' execution traffic (steps, heartbeats, claims) "
    "appears only when it failed or was refused, unless the server runs with "
    "STEAD_AUDIT_EXECUTION=1.\n\n"
    "Example: [bold]stead audit ls --since 7d --key ci --failed[/], "
    "[bold]stead audit ls --action cancel --json[/]")


def who(record: AuditRecord) -> str:
    """"ci (3f2a9c1e4b5d)", "local:alice", or "-" when no key was accepted."""
    if record.key_name is None:
        return "-"
    return f"{record.key_name} ({record.key_id})" if record.key_id else record.key_name


@audit_app.command("ls", help=LS_HELP)
@handle_errors
def list_audit(
    since: Annotated[str | None, typer.Option(
        "--since", metavar="AGE", help="Only rows of the last AGE: 1h, 7d, 90m.")] = None,
    key: Annotated[str | None, typer.Option(
        "--key", "-k", help="Only requests with this API key (its id or name).")] = None,
    action: Annotated[str | None, typer.Option(
        "--action", "-a", help="Only actions containing this text, e.g. cancel, store.")
    ] = None,
    denied: Annotated[bool, typer.Option(
        "--denied", help="Only refused requests (401, 403).")] = False,
    failed: Annotated[bool, typer.Option(
        "--failed", help="Only requests that failed (status 400 or more).")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, max=10_000,
                                       help="At most this many rows.")] = 50,
    before: Annotated[int | None, typer.Option(
        "--before", metavar="ID", min=1, help="Only rows older than this id (the next page).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON list instead of a table.")
                       ] = False,
    db: DbOption = None,
) -> None:
    """List the audit log (see LS_HELP)."""
    if denied and failed:
        raise ConfigError("give --denied or --failed, not both (every denied request failed)")
    age = parse_duration(since) if since is not None else None
    store = open_db(db)
    rows = audit_log(store).list_audit(AuditFilter(
        since=time.time() - age if age is not None else None, key=key, action=action,
        outcome="denied" if denied else "failed" if failed else None, limit=limit,
        before_id=before))
    if as_json:
        typer.echo(json.dumps([as_dict(r) for r in rows], indent=2))
        return
    console = out()
    if not rows:
        console.print(f"No audit rows in {escape(store.url)} match.")
        return
    tbl = table()
    for column, justify, wrap in (("ID", "right", False), ("Time", "left", False),
                                  ("Who", "left", True), ("Address", "left", False),
                                  ("Action", "left", True), ("Target", "left", True),
                                  ("Outcome", "right", False), ("Detail", "left", True)):
        tbl.add_column(column, justify=justify, no_wrap=not wrap)  # type: ignore[arg-type]
    for r in rows:
        tbl.add_row(str(r.id), fmt_time(r.at), who(r), r.address or "-", r.action,
                    r.target or "", str(r.outcome), r.detail or "")
    console.print(tbl)
    if len(rows) == limit:
        console.print(f"(more may be older: stead audit ls --before {rows[-1].id} ...)")

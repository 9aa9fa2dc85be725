"""`stead server start` (the HTTP API) and `stead keys ...` (its API keys)."""

import ipaddress
import logging
import time
from typing import Annotated

import typer
from rich.markup import escape

from stead.cli.common import DbOption, database_url, err, handle_errors, open_db, out
from stead.cli.render import fmt_time, table
from stead.core.runtime import configure_console, store_for
from stead.errors import ConfigError
from stead.settings import get_settings
from stead.store.audit import record_local_action

server_app = typer.Typer(
    name="server", no_args_is_help=True,
    help="The HTTP API over the database, with the scheduler and the lease reaper.\n\n"
         "Example: [bold]stead server start[/]")
keys_app = typer.Typer(
    name="keys", no_args_is_help=True,
    help="API keys of the HTTP server.\n\nExample: [bold]stead keys create ci[/]")

START_HELP = (
    "Serve the HTTP API (JSON under /api/v1; the OpenAPI document at /openapi.json) over "
    "this database, and run the deployment scheduler, the lease reaper and (with "
    "STEAD_RETENTION_DAYS) hourly retention in the background (--no-services: only the "
    "API).\n\n"
    "On a loopback address (127.0.0.1, ::1, localhost) requests need no key unless "
    "--require-auth; on any other address every request except GET /health needs an API key: "
    "[bold]Authorization: Bearer stead_...[/] (see [bold]stead keys create[/]).\n\n"
    "Requests must name the server by one of its own host names (DNS rebinding): the "
    "address it listens on, the loopback names on loopback (and on 0.0.0.0 or ::, with the "
    "machine's name), and each --allowed-host (or STEAD_ALLOWED_HOSTS, comma-separated); "
    "others get 421. Web pages of other origins can change nothing (docs/security.md).\n\n"
    "Example: [bold]stead server start --host 0.0.0.0 --port 4300 --allowed-host "
    "stead.example.com[/]")


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback address (127.0.0.0/8, ::1) or "localhost"."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@server_app.command("start", help=START_HELP)
@handle_errors
def start(
    host: Annotated[str | None, typer.Option(
        "--host", help="Address to listen on (default STEAD_SERVER_HOST, 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(
        "--port", min=1, max=65535,
        help="Port to listen on (default STEAD_SERVER_PORT, 4300).")] = None,
    require_auth: Annotated[bool, typer.Option(
        "--require-auth", help="Require API keys on a loopback address too.")] = False,
    no_services: Annotated[bool, typer.Option(
        "--no-services", help="Serve the API only: no scheduler, reaper or retention.")
    ] = False,
    allowed_host: Annotated[list[str] | None, typer.Option(
        "--allowed-host", metavar="NAME",
        help="A host name clients use for this server (repeat for several; added to "
             "STEAD_ALLOWED_HOSTS; \"*\": any). Requests naming another host get 421.")
    ] = None,
    db: DbOption = None,
) -> None:
    """Start the server (see START_HELP)."""
    import uvicorn

    from stead.server.app import create_app
    from stead.server.guard import server_hosts
    from stead.server.services import Services

    settings = get_settings()
    host = host or settings.server_host
    port = port or settings.server_port
    auth = require_auth or not is_loopback(host)
    hosts = server_hosts(host, [*settings.allowed_hosts, *(allowed_host or [])])
    configure_console()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s:  %(name)s: %(message)s")
    logging.getLogger("stead.server").setLevel(logging.INFO)
    store = store_for(database_url(db))
    if auth and not any(k.revoked_at is None for k in store.list_api_keys()):
        err().print("[yellow]warning:[/] this server needs API keys and there is none yet: "
                    "make one with [bold]stead keys create NAME[/]")
    shown = f"[{host}]" if ":" in host else host
    err().print(f"Stead API on http://{escape(shown)}:{port} for {escape(store.url)} "
                f"({'API keys required' if auth else 'no API key needed: loopback only'}"
                f"{'' if no_services else '; scheduler, lease reaper and retention running'})")
    err().print(f"answering to the host names {escape(', '.join(hosts))} (more: --allowed-host)")
    services = Services(store)
    if not no_services:
        services.start()
    server = uvicorn.Server(uvicorn.Config(
        create_app(store, require_auth=auth, allowed_hosts=hosts), host=host, port=port,
        log_level="info", timeout_graceful_shutdown=5, server_header=False))
    try:
        server.run()
    finally:
        services.stop()


@keys_app.command("create", help=(
    "Make an API key and print it once: only its hash is stored, it cannot be shown again.\n\n"
    "Every key has a role: [bold]admin[/] (everything, keys included), [bold]operator[/] "
    "(deploy, run, cancel; queues, limits, schedules), [bold]worker[/] (only what executing "
    "runs needs: claim from its queues and record the runs it holds), [bold]reader[/] (look "
    "only) or [bold]webhook[/] (post to its hook only). A key touches only its namespaces.\n\n"
    "Examples:\n\n[bold]stead keys create etl-worker --role worker --queue etl "
    "--namespace team-a[/]\n\n[bold]stead keys create ci --role operator[/]\n\n"
    "[bold]stead keys create ops --role admin --namespace '*'[/]"))
@handle_errors
def create_key(
    name: Annotated[str, typer.Argument(metavar="NAME", help="What the key is for.")],
    role: Annotated[str, typer.Option(
        "--role", metavar="ROLE", help="admin, operator, worker, reader or webhook.")],
    namespaces: Annotated[list[str] | None, typer.Option(
        "--namespace", "-n", metavar="NAMESPACE",
        help="A namespace the key may touch (repeat for several; '*' for every one). "
             "Default: default.")] = None,
    queues: Annotated[list[str] | None, typer.Option(
        "--queue", "-q", metavar="QUEUE",
        help="A queue the key may claim runs from (repeat for several). Default: any.")] = None,
    db: DbOption = None,
) -> None:
    from stead.errors import ConfigError
    from stead.server.apikeys import new_api_key
    from stead.server.policy import DEFAULT_NAMESPACE, ROLE_NAMES

    if role not in ROLE_NAMES:
        raise ConfigError(f"--role {role!r} is not a role; choose one of: "
                          f"{', '.join(ROLE_NAMES)}")
    spaces = list(dict.fromkeys(namespaces or [DEFAULT_NAMESPACE]))
    bad = [n for n in spaces if not n or (n != "*" and not n.replace("-", "").replace(
        "_", "").replace(".", "").isalnum())]
    if bad:
        raise ConfigError(f"--namespace {bad[0]!r} is not a namespace name: use letters, "
                          "digits, '-', '_' and '.', or '*' for every namespace")
    key, record = new_api_key(name, time.time(), role=role, namespaces=tuple(spaces),
                              queues=tuple(dict.fromkeys(queues)) if queues else None)
    store = store_for(database_url(db))
    store.create_api_key(record)
    record_local_action(store, "keys create", record.id,
                        detail=f"name {name[:80]!r}, role {role}")
    typer.echo(key)
    scope = f"namespaces {', '.join(spaces)}" + (f"; queues {', '.join(queues)}" if queues
                                                 else "")
    err().print(f"API key {record.id} ({escape(name)}, {role}; {escape(scope)}) created. Save "
                "it now: it will not be shown again. Send it as the header 'Authorization: "
                "Bearer <key>'.")


@keys_app.command("ls", help="List API keys (their prefixes, never the keys).\n\n"
                             "Example: [bold]stead keys ls[/]")
@handle_errors
def list_keys(db: DbOption = None) -> None:
    import json

    from stead.server.apikeys import shown_prefix

    store = open_db(db)
    keys = store.list_api_keys()
    console = out()
    if not keys:
        console.print("No API keys. Make one with: stead keys create NAME --role ROLE")
        return
    tbl = table()
    for column in ("ID", "Name", "Key", "Role", "Namespaces", "Queues", "Created",
                   "Last used", "Revoked"):
        tbl.add_column(column, no_wrap=True)
    for k in keys:
        queues = ", ".join(json.loads(k.queues)) if k.queues else "any"
        tbl.add_row(k.id, escape(k.name), shown_prefix(k), k.role,
                    escape(", ".join(json.loads(k.namespaces))), escape(queues),
                    fmt_time(k.created_at),
                    fmt_time(k.last_used_at) if k.last_used_at else "never",
                    fmt_time(k.revoked_at) if k.revoked_at else "")
    console.print(tbl)


@keys_app.command("revoke", help="Revoke an API key: requests carrying it are refused "
                                 "(401) from now on.\n\nExample: [bold]stead keys revoke "
                                 "3f2a9c1e4b5d[/]")
@handle_errors
def revoke_key(
    key: Annotated[str, typer.Argument(
        metavar="ID_OR_PREFIX", help="The key's id, or its prefix as `keys ls` shows it.")],
    db: DbOption = None,
) -> None:
    now = time.time()
    store = open_db(db)
    try:
        record = store.revoke_api_key(key, now)
    except ConfigError as exc:  # no such key, or an ambiguous prefix: an attempt worth noting
        # not the text given as the target: it might be a whole key pasted by mistake
        record_local_action(store, "keys revoke", None, 404, type(exc).__name__, now)
        raise
    record_local_action(store, "keys revoke", record.id,
                        detail=None if record.revoked_at == now else "already revoked", now=now)
    when = "" if record.revoked_at == now else f" (already, at {fmt_time(record.revoked_at)})"
    out().print(f"revoked API key {record.id} ({escape(record.name)}){when}")

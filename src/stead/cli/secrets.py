"""`stead secrets set/ls/rm/rotate`: secrets stored encrypted where the database is.

A value is read from a prompt that does not echo it, or from stdin when stdin is not a
terminal; never from the command line, where shell history and `ps` would keep it.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated

import typer
from rich.markup import escape

from stead.cli.common import DbOption, database_url, err, fail, handle_errors, open_db, out
from stead.cli.render import fmt_time, table
from stead.core.runtime import store_for
from stead.errors import SecretNotFound
from stead.secrets import crypto
from stead.store.base import Store

secrets_app = typer.Typer(
    name="secrets", no_args_is_help=True,
    help="Secrets, stored encrypted (key: STEAD_SECRETS_KEY or $STEAD_HOME/secrets.key) and "
         "read in flows with stead.secret(\"NAME\").\n\n"
         "Example: [bold]printf %s \"$PW\" | stead secrets set DB_PASSWORD[/]")
NamespaceOption = Annotated[str, typer.Option(
    "--namespace", "-n", help="The secret's namespace.")]
ARGUMENT_REFUSED = (
    "a secret's value is never taken from the command line (shell history and `ps` would "
    "keep it): run `stead secrets set {name}` and type it at the prompt, or pipe it in: "
    "printf %s \"$VALUE\" | stead secrets set {name}")


def _local_store(db: str | None, what: str) -> Store:
    url = database_url(db)
    if url.startswith(("http://", "https://")):
        fail(f"secrets are {what} where the database and the key are (on the server's host, "
             f"with its STEAD_DATABASE_URL), not through a Stead server ({url})")
    return store_for(url)


def _read_value(name: str) -> str:
    if sys.stdin.isatty():
        value: str = typer.prompt(f"Value of {name}", hide_input=True,
                                  confirmation_prompt=True, err=True)
    else:
        value = sys.stdin.read()
        value = value[:-2] if value.endswith("\r\n") else value.removesuffix("\n")
    if not value:
        fail(f"no value given for {name}: nothing was stored")
    return value


@secrets_app.command("set", help=(
    "Store a secret (or replace its value). The value is read from a prompt without echo, "
    "or from stdin when it is not a terminal, never from an argument. Creates the key file "
    "(mode 0600) when no key is configured.\n\n"
    "Example: [bold]stead secrets set DB_PASSWORD[/], or "
    "[bold]printf %s \"$PW\" | stead secrets set DB_PASSWORD --namespace etl[/]"),
    context_settings={"allow_extra_args": True})  # to refuse a value with a clear message
@handle_errors
def set_secret(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The secret's name.")],
    namespace: NamespaceOption = "default",
    db: DbOption = None,
) -> None:
    if ctx.args:
        fail(ARGUMENT_REFUSED.format(name=name))
    store = _local_store(db, "set")
    plain = _read_value(name)
    created = crypto.ensure_key()
    if created is not None:
        err().print(f"created a new secrets key in {escape(str(created))} (mode 0600). Back "
                    "it up: without it the stored secrets cannot be read.")
    store.set_secret(name, namespace, crypto.encrypt(plain, name, namespace), time.time())
    err().print(f"secret {escape(name)} set in namespace {escape(namespace)}")


@secrets_app.command("ls", help="List secrets: names, namespaces and times, never values."
                                "\n\nExample: [bold]stead secrets ls --all-namespaces[/]")
@handle_errors
def list_secrets(
    namespace: NamespaceOption = "default",
    all_namespaces: Annotated[bool, typer.Option(
        "--all-namespaces", "-A", help="List the secrets of every namespace.")] = False,
    db: DbOption = None,
) -> None:
    records = open_db(db).list_secrets(None if all_namespaces else namespace)
    console = out()
    if not records:
        console.print("No secrets. Set one with: stead secrets set NAME")
        return
    tbl = table()
    for column in ("Namespace", "Name", "Created", "Updated"):
        tbl.add_column(column, no_wrap=True)
    for r in records:
        tbl.add_row(escape(r.namespace), escape(r.name), fmt_time(r.created_at),
                    fmt_time(r.updated_at))
    console.print(tbl)


@secrets_app.command("rm", help="Delete a secret.\n\nExample: [bold]stead secrets rm "
                                "DB_PASSWORD[/]")
@handle_errors
def remove_secret(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The secret's name.")],
    namespace: NamespaceOption = "default",
    db: DbOption = None,
) -> None:
    open_db(db)
    if not _local_store(db, "deleted").delete_secret(name, namespace):
        raise SecretNotFound(f"no secret {name!r} in namespace {namespace!r}; "
                             "`stead secrets ls -A` lists them")
    out().print(f"deleted secret {escape(name)} from namespace {escape(namespace)}")


@secrets_app.command("rotate", help=(
    "Re-encrypt every stored secret with the first configured key. Put the new key first "
    "and keep the old ones after it (STEAD_SECRETS_KEY=NEW,OLD, or one key a line in the "
    "key file); once rotated, the old keys can be removed.\n\n"
    "Example: [bold]STEAD_SECRETS_KEY=$NEW,$OLD stead secrets rotate[/]"))
@handle_errors
def rotate_secrets(db: DbOption = None) -> None:
    open_db(db)
    count = _local_store(db, "rotated").rotate_secrets(crypto.reencrypt, time.time())
    out().print(f"re-encrypted {count} secret{'s' if count != 1 else ''} with the first key "
                f"of {escape(crypto.key_source())}; keys after it are no longer needed")

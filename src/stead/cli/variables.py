"""`stead variables ls/get/set/unset`: named JSON values for configuration (store/variables.py),
read in flows with `Variable.get("NAME")`.

Works where the database is and in remote mode (STEAD_DATABASE_URL=https://SERVER, with an
operator key to write). A change made where the database is goes to the audit log as
`variables set` / `variables unset` by local:USER; through a server, the server records it.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Annotated, Any

import typer
from rich.markup import escape

from stead.cli.common import DbOption, database_url, fail, handle_errors, open_db, out
from stead.cli.render import clip, fmt_time, table
from stead.core.runtime import store_for
from stead.errors import InvalidVariable, VariableExists
from stead.settings import get_settings
from stead.store.audit import AuditLog, record_local_action
from stead.store.variables import VariableRecord, check_name, check_value_json

variables_app = typer.Typer(
    name="variables", no_args_is_help=True,
    help="Variables: named JSON values (numbers, strings, lists, objects ...) for "
         "configuration that changes without a deploy, read in flows with "
         "Variable.get(\"NAME\"). Not encrypted: use `stead secrets` for passwords.\n\n"
         "Example: [bold]stead variables set batch_size 500[/], then "
         "[bold]stead variables get batch_size[/]")
NamespaceOption = Annotated[str | None, typer.Option(
    "--namespace", "-n", help="The variable's namespace. Default: STEAD_NAMESPACE, else "
                              "'default'.")]
NameArgument = Annotated[str, typer.Argument(
    metavar="NAME", help="The name: lowercase letters, digits, '_' and '-' (up to 255).")]


def _namespace(namespace: str | None) -> str:
    return namespace if namespace is not None else get_settings().namespace


def _shown(value: Any) -> str:
    """A value as a person (or a shell script) reads it: a string as itself, else JSON."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _as_dict(r: VariableRecord) -> dict[str, Any]:
    return {"namespace": r.namespace, "name": r.name, "value": r.value, "tags": r.tags,
            "created_at": r.created_at, "updated_at": r.updated_at}


def parse_value(text: str, as_string: bool) -> str:
    """The JSON text of a value given on the command line: `text` itself when it is JSON
    (500, true, null, [1, 2], {"a": 1}, "quoted"), else (or with `as_string`) the string.

    >>> parse_value("500", False), parse_value("eu-west-1", False), parse_value("500", True)
    ('500', '"eu-west-1"', '"500"')
    """
    if not as_string:
        try:
            return check_value_json(text.strip())
        except InvalidVariable as exc:
            if "not JSON text" not in str(exc):
                raise  # JSON, but too large or not storable: say so, do not store a string
    return check_value_json(json.dumps(text, ensure_ascii=False))


def _audit(store: Any, action: str, name: str, namespace: str, outcome: int = 200,
           detail: str | None = None) -> None:
    if isinstance(store, AuditLog):  # where the database is; a server audits its own
        note = detail if namespace == "default" else f"namespace {namespace}" + (
            f"; {detail}" if detail else "")
        record_local_action(store, action, name, outcome, note)


@variables_app.command("ls", help=(
    "List variables with their values (shortened; `get` shows one whole) and tags.\n\n"
    "Example: [bold]stead variables ls --prefix etl_[/], [bold]stead variables ls -A --json[/]"))
@handle_errors
def list_variables(
    prefix: Annotated[str | None, typer.Option(
        "--prefix", "-p", help="Only names starting with this.")] = None,
    namespace: NamespaceOption = None,
    all_namespaces: Annotated[bool, typer.Option(
        "--all-namespaces", "-A", help="List the variables of every namespace.")] = False,
    as_json: Annotated[bool, typer.Option(
        "--json", help="One JSON list of the whole records instead of a table.")] = False,
    db: DbOption = None,
) -> None:
    records = open_db(db).list_variables(
        None if all_namespaces else _namespace(namespace), prefix or None)
    if as_json:
        typer.echo(json.dumps([_as_dict(r) for r in records], indent=2, ensure_ascii=False))
        return
    console = out()
    if not records:
        console.print("No variables. Set one with: stead variables set NAME VALUE")
        return
    tbl = table()
    for column in ("Namespace", "Name", "Value", "Tags", "Updated"):
        tbl.add_column(column, no_wrap=column != "Value")
    for r in records:
        tbl.add_row(escape(r.namespace), escape(r.name), escape(clip(_shown(r.value), 80)),
                    escape(", ".join(r.tags)), fmt_time(r.updated_at))
    console.print(tbl)


@variables_app.command("get", help=(
    "Print a variable's value: a string as it is, anything else as JSON. Exit code 2 (and "
    "a message on stderr) when there is no such variable.\n\n"
    "Example: [bold]stead variables get batch_size[/], "
    "[bold]HOSTS=$(stead variables get hosts --json)[/]"))
@handle_errors
def get_variable(
    name: NameArgument,
    namespace: NamespaceOption = None,
    as_json: Annotated[bool, typer.Option(
        "--json", help="Print the value as JSON, strings too (quoted).")] = False,
    db: DbOption = None,
) -> None:
    ns = _namespace(namespace)
    record = open_db(db).get_variable(check_name(name), ns)
    if record is None:
        fail(f"no variable {name!r} in namespace {ns!r}; `stead variables ls -A` lists them")
    typer.echo(json.dumps(record.value, ensure_ascii=False) if as_json else _shown(
        record.value))


@variables_app.command("set", help=(
    "Create a variable, or replace its value with --overwrite. VALUE is read as JSON when it "
    "is JSON (500, 2.5, true, null, '[\"a\", \"b\"]', '{\"k\": 1}'), else as a string "
    "(eu-west-1); --string always takes it as a string. A VALUE of - reads it from stdin. "
    "Put -- before a VALUE that starts with a dash (-- -5).\n\n"
    "Example: [bold]stead variables set regions '[\"eu-west-1\", \"us-east-1\"]' --tag "
    "deploy[/], [bold]stead variables set batch_size 1000 --overwrite[/]"))
@handle_errors
def set_variable(
    name: NameArgument,
    value: Annotated[str, typer.Argument(metavar="VALUE", help="JSON, or a string; - for "
                                                               "stdin.")],
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace the value of an existing variable (else that is an "
                            "error and nothing changes).")] = False,
    tags: Annotated[list[str] | None, typer.Option(
        "--tag", "-t", metavar="TAG", help="A tag (repeat for more); replaces its tags. "
                                           "Without --tag, a replaced variable keeps its "
                                           "tags.")] = None,
    as_string: Annotated[bool, typer.Option(
        "--string", "-s", help="Store VALUE as a string even if it reads as JSON (\"500\").")
    ] = False,
    namespace: NamespaceOption = None,
    db: DbOption = None,
) -> None:
    ns = _namespace(namespace)
    check_name(name)
    text = sys.stdin.read().removesuffix("\n") if value == "-" else value
    value_json = parse_value(text, as_string)
    store = store_for(database_url(db))  # a new database is created, as a flow would
    try:
        record = store.set_variable(name, ns, value_json, tags, time.time(),  # type: ignore
                                    overwrite)
    except VariableExists:
        _audit(store, "variables set", name, ns, 409, "VariableExists")
        raise
    _audit(store, "variables set", name, ns)
    done = "created" if record.created_at == record.updated_at else "replaced"
    out().print(f"{done} variable {escape(name)} in namespace {escape(ns)}: "
                f"{escape(clip(json.dumps(record.value, ensure_ascii=False), 120))}")


@variables_app.command("unset", help=(
    "Delete a variable. Exit code 2 when there is no such variable.\n\n"
    "Example: [bold]stead variables unset batch_size[/]"))
@handle_errors
def unset_variable(name: NameArgument, namespace: NamespaceOption = None,
                   db: DbOption = None) -> None:
    ns = _namespace(namespace)
    store = open_db(db)
    if not store.delete_variable(check_name(name), ns):  # type: ignore[attr-defined]
        _audit(store, "variables unset", name, ns, 404, "not found")
        fail(f"no variable {name!r} in namespace {ns!r}; `stead variables ls -A` lists them")
    _audit(store, "variables unset", name, ns)
    out().print(f"deleted variable {escape(name)} from namespace {escape(ns)}")

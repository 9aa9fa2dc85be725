"""What every command shares: consoles, opening the database, resolving run ids, errors."""

from __future__ import annotations

import functools
import logging
import os
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from stead.core.runtime import store_for
from stead.errors import SteadError, StoreError
from stead.settings import get_settings
from stead.store.base import RunRecord, Store
from stead.store.urls import parse_database_url

F = TypeVar("F", bound=Callable[..., Any])
DB_HELP = ("Database URL: sqlite:///relative/path.db (relative to the current directory), "
           "sqlite:////absolute/path.db, a file path, or postgresql://USER@HOST/DB. "
           "Default: STEAD_DATABASE_URL, else $STEAD_HOME/stead.db.")
DbOption = Annotated[str | None, typer.Option("--db", metavar="URL", help=DB_HELP)]


def _colour_options() -> dict[str, Any]:
    """Rich console options for STEAD_COLOR: always forces colour (also through a pipe),
    never turns every style off; auto lets Rich decide (a terminal, unless NO_COLOR is set)."""
    try:
        mode = get_settings().color
    except SteadError:  # a bad setting: reported by the command itself, in plain colour here
        mode = "auto"
    if mode == "always":
        return {"force_terminal": True, "no_color": False, "color_system": "standard"}
    if mode == "never":
        return {"color_system": None}
    return {}


def out() -> Console:
    """The console for results (stdout). Made per command, so COLUMNS and tty are read afresh."""
    return Console(highlight=False, **_colour_options())


def err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True, **_colour_options())


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one red ``error: ...`` line on stderr and exit with `code`."""
    err().print(f"[bold red]error:[/] [red]{escape(message)}[/]")
    raise typer.Exit(code)


def handle_errors(fn: F) -> F:
    """Turn Stead's errors (and database/OS errors) into one red line and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except SteadError as exc:
            fail(str(exc))
        except BrokenPipeError:  # `stead logs ID | head`: stop quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(0) from None
        except (sqlite3.Error, OSError) as exc:
            fail(f"{type(exc).__name__}: {exc}")
        except KeyboardInterrupt:
            err().print("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


class _Options:
    top_db: str | None = None  # `stead --db URL ...`, set by the top-level callback
    opened_url: str | None = None  # the database this command reads (for its result files)


OPTIONS = _Options()


def database_url(db: str | None) -> str:
    """The URL to use: the command's --db, else the top-level --db, else the settings."""
    return db or OPTIONS.top_db or get_settings().database_url


def describe_url(url: str) -> str:
    """Where `url` points, resolved: ``sqlite /abs/path/x.db``, ``postgresql user@host/db``."""
    try:
        return parse_database_url(url).describe()
    except SteadError:
        return url


def open_db(db: str | None) -> Store:
    """The store of a command that reads or changes existing records: a missing SQLite file
    is an error (not created), the schema is never changed (an out-of-date one is refused,
    naming `stead db upgrade`), and an unreachable server fails within STEAD_CLI_WAIT_SECONDS
    with one line."""
    url = OPTIONS.opened_url = database_url(db)
    where = parse_database_url(url)
    if where.path is not None and not where.path.exists():
        relative = ("" if _is_absolute(url) else
                    f" ({url} is relative to the current directory, {Path.cwd()}; "
                    "sqlite:////ABS/PATH.db is absolute)")
        raise StoreError(f"no Stead database at {where.path}{relative}: nothing has been "
                         "recorded there yet. Set STEAD_DATABASE_URL or pass --db to read "
                         "another database.")
    quiet_pool_logs()
    return store_for(url, schema="read", connect_wait_s=get_settings().cli_wait_seconds)


def _is_absolute(url: str) -> bool:
    path = url[len("sqlite:///"):] if url.startswith("sqlite:///") else url
    return path.startswith(("/", "~"))


def quiet_pool_logs() -> None:
    """psycopg_pool logs each failed background connection attempt; a command reports an
    unreachable server in its own one line instead."""
    logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)


def resolve_run(store: Store, text: str) -> RunRecord:
    """The run named by a full id, a unique id prefix, or a shortened child id "ROOT:KEY"."""
    return store.get_run(store.resolve_run_id(text))

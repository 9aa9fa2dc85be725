"""The `stead` command line: runs, logs, workers, queues and tag limits.

Run as ``stead ...`` (installed script) or ``python -m stead.cli.main ...``.
"""

import signal
from typing import Annotated, Any

import typer
from typer.core import TyperGroup, TyperOption

from stead.cli import audit, db, deployments, queues, runs, secrets, server, variables, workers
from stead.cli import logs as logs_cmd
from stead.cli.common import DB_HELP, OPTIONS, err, handle_errors

HELP_NAMES = ["-h", "--help"]


def plain_flags(command: Any) -> None:
    """Show boolean flags as ``--force``, not ``--force <bool>``: Typer's Rich help prints a
    type for every option, flags included (an empty metavar replaces it)."""
    help_option = command.get_help_option(typer.Context(command, help_option_names=HELP_NAMES))
    for param in [*getattr(command, "params", ()), help_option]:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        plain_flags(sub)


class SteadGroup(TyperGroup):
    """The root command: plain flags in every --help, and Ctrl-C anywhere in a command ends
    it with one line ("interrupted") and exit code 130 instead of a traceback."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        plain_flags(self)
        return super().main(*args, **kwargs)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            err().print("interrupted")
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=SteadGroup,
    name="stead",
    help="Stead: run workers, and inspect and resume recorded flow runs.\n\n"
         "Runs are read from STEAD_DATABASE_URL (default $STEAD_HOME/stead.db, "
         "$STEAD_HOME defaults to ~/.stead); --db chooses another database.\n\n"
         "Example: [bold]stead runs ls[/], then [bold]stead runs show RUN_ID[/]",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": HELP_NAMES},
)
app.add_typer(runs.app, name="runs")
app.add_typer(workers.worker_app, name="worker")
app.add_typer(workers.workers_app, name="workers")
app.add_typer(queues.queues_app, name="queues")
app.add_typer(queues.limits_app, name="limits")
app.command("deploy", help=deployments.DEPLOY_HELP)(handle_errors(deployments.deploy_command))
app.add_typer(deployments.deployments_app, name="deployments")
app.add_typer(deployments.scheduler_app, name="scheduler")
app.add_typer(server.server_app, name="server")
app.add_typer(server.keys_app, name="keys")
app.add_typer(audit.audit_app, name="audit")
app.add_typer(secrets.secrets_app, name="secrets")
app.add_typer(variables.variables_app, name="variables")
app.add_typer(db.db_app, name="db")
app.command("logs", help=logs_cmd.HELP)(logs_cmd.logs)


def _version(value: bool) -> None:
    if value:
        from stead import __version__

        typer.echo(f"stead {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    db: Annotated[str | None, typer.Option(
        "--db", metavar="URL", help=DB_HELP + " A command's own --db wins.")] = None,
    version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
) -> None:
    """Stead: inspect and resume recorded flow runs."""
    OPTIONS.top_db = db


def main() -> None:
    """The `stead` command."""
    signal.signal(signal.SIGINT, signal.default_int_handler)  # see stead/cli/__init__.py
    app()


if __name__ == "__main__":
    main()

"""The ``meterhouse`` command: one root that mounts each part's own command group.

Each part keeps its commands next to its code (``ingestion/cli.py``, ``api/cli.py``, ...); this
module only assembles them, so ``meterhouse --help`` lists everything.
"""

from __future__ import annotations

import importlib
import sys

import typer

app = typer.Typer(
    name="meterhouse",
    help="Usage metering and billing on ClickHouse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# (command group name, "module:typer_app"), imported at start so every group shows in --help;
# a command of one group imports only that group (the others pull in FastAPI, Dagster,
# Streamlit: seconds of CPU that `meterhouse rate run` and the like need not pay).
COMMAND_GROUPS: list[tuple[str, str]] = [
    ("warehouse", "warehouse.cli:app"),
    ("api", "api.cli:app"),
    ("ingest", "ingestion.cli:app"),
    ("orgs", "meterhouse.orgs_cli:app"),
    ("rate", "meterhouse.rating:app"),
    ("demo", "meterhouse.demo.cli:app"),
    ("orchestration", "orchestration.cli:app"),
    ("bill", "orchestration.cli:bill_app"),
    ("dashboards", "dashboards.cli:app"),
    ("docs", "dashboards.cli:docs_app"),
]


def _mount_commands(argv: list[str]) -> None:
    requested = [group for group in COMMAND_GROUPS if argv[1:2] == [group[0]]]
    for name, target in requested or COMMAND_GROUPS:
        module_name, _, attr = target.partition(":")
        app.add_typer(getattr(importlib.import_module(module_name), attr), name=name)
    # `up` supervises every service, so its module imports the API, the demo loader and the Lago
    # client (~2 CPU-s): a command of one group (`meterhouse rate run` on every rating) skips it.
    if not requested:
        app.command("up")(importlib.import_module("meterhouse.supervisor").up)


def main() -> None:
    """Run the command: a warehouse that does not answer, or has no database yet, is one line
    naming it, not a traceback."""
    try:
        app()
    except Exception as error:
        message = warehouse_problem(error)
        if message is None:
            raise
        typer.echo(f"error: {message}", err=True)
        raise SystemExit(1) from None


def warehouse_problem(error: Exception) -> str | None:
    """What an error of the warehouse client says to an operator, or None for any other error."""
    # Looked up rather than imported: a command that never loaded the client (`rate run` hands
    # its queries to dbt) cannot have raised its errors, and need not pay the import.
    exceptions = sys.modules.get("clickhouse_connect.driver.exceptions")
    if exceptions is None or not isinstance(error, exceptions.DatabaseError):
        return None
    from warehouse.client import is_unknown_database
    from warehouse.settings import get_settings

    settings = get_settings()
    if isinstance(error, exceptions.OperationalError):
        return f"the warehouse at {settings.warehouse_url} cannot be reached: {error}"
    if is_unknown_database(error):
        return (
            f"the warehouse at {settings.warehouse_url} has no database "
            f"{settings.warehouse_database}: `meterhouse warehouse migrate` creates it"
        )
    return None


_mount_commands(sys.argv)

if __name__ == "__main__":
    main()

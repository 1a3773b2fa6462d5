"""``meterhouse warehouse ...``: run the embedded server, migrate, manage its users."""

from __future__ import annotations

import logging
import re
import secrets
from pathlib import Path
from typing import Annotated

import typer

from warehouse.settings import get_settings

USER_NAME = re.compile(r"[A-Za-z0-9_.-]+")

app = typer.Typer(help="The warehouse: embedded ClickHouse server, migrations, users.")


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(help="Port (default: from WAREHOUSE_URL)")] = None,
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    data_dir: Annotated[
        Path | None, typer.Option(help="chDB data directory (default: MH_WAREHOUSE_DATA_DIR)")
    ] = None,
    log_level: Annotated[str, typer.Option(help="Python log level")] = "WARNING",
) -> None:
    """Start the embedded warehouse (chDB) behind the ClickHouse HTTP interface."""
    from warehouse.embedded.server import serve as serve_embedded

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    settings = get_settings()
    serve_embedded(
        settings,
        host=host,
        port=settings.warehouse_port if port is None else port,
        data_dir=data_dir or settings.warehouse_data_dir,
    )


@app.command()
def migrate() -> None:
    """Apply pending schema migrations (warehouse/migrations/*.sql) to the configured warehouse."""
    from warehouse.client import get_client
    from warehouse.migrate import migrate as apply_migrations

    settings = get_settings()
    applied = apply_migrations(get_client(settings, database=""), settings.warehouse_database)
    for migration in applied:
        typer.echo(f"applied {migration.version}_{migration.name}")
    typer.echo(f"database {settings.warehouse_database!r} is up to date")


user_app = typer.Typer(help="Users of the embedded warehouse.")
app.add_typer(user_app, name="user")


@user_app.command("add")
def add_user(
    name: Annotated[str, typer.Argument(help="User name")],
    role: Annotated[str, typer.Option(help="admin, writer or analyst")] = "analyst",
    password: Annotated[
        str | None, typer.Option(help="Password (default: generate and print one)")
    ] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Data directory of the server")] = None,
) -> None:
    """Add a user, or reset its role and password. A running server picks it up at once."""
    from warehouse.embedded.users import Role, UserStore

    if not USER_NAME.fullmatch(name):
        # Basic auth splits at the first colon, and an empty name is read as `default`.
        raise typer.BadParameter(
            f"{name!r}: use letters, digits, '_', '-' and '.' only", param_hint="NAME"
        )
    try:
        chosen_role = Role(role)
    except ValueError:
        raise typer.BadParameter(
            f"unknown role {role!r}: use admin, writer or analyst", param_hint="--role"
        ) from None
    settings = get_settings()
    store = UserStore(
        settings.warehouse_users_file or (data_dir or settings.warehouse_data_dir) / "users.yaml"
    )
    chosen_password = password or secrets.token_urlsafe(18)
    store.set_user(name, chosen_role, chosen_password)
    shown = "" if password else f" with password: {chosen_password}"
    typer.echo(f"user {name!r} ({chosen_role.value}) saved{shown}")

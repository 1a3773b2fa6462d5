"""The one place that builds ClickHouse clients (HTTP interface, clickhouse-connect)."""

from __future__ import annotations

from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError

from warehouse.settings import Settings, get_settings


def get_client(
    settings: Settings | None = None,
    *,
    database: str | None = None,
    user: str | None = None,
    password: str | None = None,
    **kwargs: Any,
) -> Client:
    """A client for the configured warehouse.

    ``database=""`` connects without selecting a database (used before it exists).
    """
    settings = settings or get_settings()
    return clickhouse_connect.get_client(
        host=settings.warehouse_host,
        port=settings.warehouse_port,
        secure=settings.warehouse_secure,
        username=user or settings.warehouse_user,
        password=settings.effective_warehouse_password() if password is None else password,
        database=settings.warehouse_database if database is None else database,
        **kwargs,
    )


def is_unknown_table(error: DatabaseError) -> bool:
    """Whether the warehouse refused a query for naming a table that does not exist (yet), as the
    dbt models do before their first run."""
    return "UNKNOWN_TABLE" in str(error)


def is_unknown_database(error: DatabaseError) -> bool:
    """Whether the warehouse refused the client's database: one no migration has created."""
    return "UNKNOWN_DATABASE" in str(error)


def has_table(client: Client, name: str) -> bool:
    """Whether the client's database holds a table or view ``name`` (a dbt model is only there
    once its first run built it)."""
    found = client.query(
        "SELECT count() FROM system.tables"
        " WHERE database = currentDatabase() AND name = {name:String}",
        parameters={"name": name},
    ).result_rows
    return bool(found[0][0])

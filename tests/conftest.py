"""Shared fixtures: one warehouse per test session, the real thing.

Without ``WAREHOUSE_URL`` the session starts the embedded server (``meterhouse warehouse serve``)
on a free port with a fresh data directory. With ``WAREHOUSE_URL`` set, the tests run against that
ClickHouse server instead (credentials from ``MH_WAREHOUSE_USER``/``MH_WAREHOUSE_PASSWORD``), in a
database of their own, and tests marked ``embedded`` are skipped.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from tests.support.processes import ServiceProcess, free_port, meterhouse_command
from warehouse.client import get_client
from warehouse.migrate import migrate
from warehouse.settings import Settings

EXTERNAL_WAREHOUSE_URL = os.environ.get("WAREHOUSE_URL")


@dataclass(frozen=True)
class Warehouse:
    """A running warehouse and how to reach it."""

    url: str
    user: str
    password: str
    database: str
    analyst_user: str | None
    analyst_password: str | None
    server: ServiceProcess | None  # the embedded server, None for an external ClickHouse
    data_dir: Path | None = None  # the embedded server's data directory

    @property
    def env(self) -> dict[str, str]:
        """Environment for processes (ingest API, billing API, dbt, ...) that use this warehouse."""
        return {
            "WAREHOUSE_URL": self.url,
            "MH_WAREHOUSE_USER": self.user,
            "MH_WAREHOUSE_PASSWORD": self.password,
            "MH_WAREHOUSE_DATABASE": self.database,
        }

    def settings(self) -> Settings:
        return Settings(
            warehouse_url=self.url,
            warehouse_user=self.user,
            warehouse_password=self.password,
            warehouse_database=self.database,
        )

    def client(self, **kwargs: object) -> Client:
        return get_client(self.settings(), **kwargs)  # type: ignore[arg-type]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not EXTERNAL_WAREHOUSE_URL:
        return
    skip = pytest.mark.skip(reason="about the embedded server; WAREHOUSE_URL is a real ClickHouse")
    for item in items:
        if "embedded" in item.keywords:
            item.add_marker(skip)


def start_embedded_server(data_dir: Path, log_path: Path) -> tuple[ServiceProcess, str, str, str]:
    port = free_port()
    admin_password = secrets.token_urlsafe(16)
    analyst_password = secrets.token_urlsafe(16)
    server = ServiceProcess(
        meterhouse_command("warehouse", "serve", "--port", str(port), "--data-dir", str(data_dir)),
        f"http://127.0.0.1:{port}/ping",
        env={
            "MH_WAREHOUSE_ADMIN_PASSWORD": admin_password,
            "MH_WAREHOUSE_ANALYST_PASSWORD": analyst_password,
        },
        log_path=log_path,
    ).start()
    return server, f"http://127.0.0.1:{port}", admin_password, analyst_password


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    if EXTERNAL_WAREHOUSE_URL:
        wh = Warehouse(
            url=EXTERNAL_WAREHOUSE_URL,
            user=os.environ.get("MH_WAREHOUSE_USER", "default"),
            password=os.environ.get("MH_WAREHOUSE_PASSWORD", ""),
            database=f"mh_test_{secrets.token_hex(4)}",
            analyst_user=None,
            analyst_password=None,
            server=None,
        )
        migrate(wh.client(database=""), wh.database)
        yield wh
        wh.client(database="").command(f"DROP DATABASE IF EXISTS `{wh.database}`")
        return
    root = tmp_path_factory.mktemp("warehouse")
    server, url, admin_password, analyst_password = start_embedded_server(
        root / "data", root / "server.log"
    )
    wh = Warehouse(
        url,
        "admin",
        admin_password,
        "meterhouse",
        "analyst",
        analyst_password,
        server,
        root / "data",
    )
    try:
        migrate(wh.client(database=""), wh.database)
        yield wh
    finally:
        server.stop()


@pytest.fixture(scope="session")
def admin_client(warehouse: Warehouse) -> Client:
    return warehouse.client()

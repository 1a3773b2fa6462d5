"""Shared fixtures: one warehouse per test session, the real thing.

Without ``WAREHOUSE_URL`` the session starts the embedded server (``meterhouse warehouse serve``)
on a free port with a fresh data directory. With ``WAREHOUSE_URL`` set, the tests run against that
ClickHouse server instead (credentials from ``MH_WAREHOUSE_USER``/``MH_WAREHOUSE_PASSWORD``), in a
database of their own, and tests marked ``embedded`` are skipped.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from meterhouse.rating_server import SOCKET_NAME, answers
from tests.support.processes import REPO_ROOT, ServiceProcess, free_port, meterhouse_command
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


@pytest.fixture(scope="module")
def unbuilt_database(warehouse: Warehouse) -> Iterator[str]:
    """A database migrated but never rated nor built by dbt, as a new deployment starts."""
    database = f"mh_unbuilt_{secrets.token_hex(4)}"
    migrate(warehouse.client(database=""), database)
    yield database
    warehouse.client(database="").command(f"DROP DATABASE IF EXISTS `{database}`")


@dataclass
class Rater:
    """Runs the rating CLI as a user would, with its own dbt target and log directories (and
    Meterhouse home, where a rating server may listen)."""

    warehouse: Warehouse
    target_path: Path
    home: Path | None = None

    @property
    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            **self.warehouse.env,
            **({"MH_HOME": str(self.home)} if self.home else {}),
            "DBT_TARGET_PATH": str(self.target_path),
            "DBT_LOG_PATH": str(self.target_path / "logs"),
        }

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            meterhouse_command("rate", "run", "--no-progress", *args),
            env=self.environment,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
        if check and result.returncode != 0:
            raise AssertionError(f"meterhouse rate run failed:\n{result.stdout}\n{result.stderr}")
        return result


@pytest.fixture(scope="session")
def rater(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rater]:
    """The rating CLI, handing its runs to one warm rating process for the session (`meterhouse
    rate serve`, as `meterhouse up` starts it): each run starts dbt's models ~3 s sooner than a
    new process would. The in-process path has tests of its own (test_rate_command.py,
    test_rating_server.py, and the tests that rate a warehouse of their own)."""
    root = tmp_path_factory.mktemp("rating")
    rater = Rater(warehouse, root / "dbt_target", root / "home")
    socket = rater.home / SOCKET_NAME
    server = ServiceProcess(
        meterhouse_command("rate", "serve"),
        f"unix:{socket}",
        env=rater.environment,
        log_path=root / "server.log",
        startup_timeout=600,
        ready=lambda: answers(socket),
    )
    server.start()
    try:
        yield rater
    finally:
        server.stop()

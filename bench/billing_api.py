"""A fresh embedded warehouse with the billing API in front of it, for the benchmarks that call
the API, and `meterhouse rate run` over it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from clickhouse_connect.driver.client import Client

from tests.conftest import start_embedded_server
from tests.support.processes import REPO_ROOT, ServiceProcess, free_port, meterhouse_command
from warehouse.client import get_client
from warehouse.migrate import migrate
from warehouse.settings import Settings


@dataclass(frozen=True)
class BillingApi:
    url: str  # the billing API's base URL
    client: Client  # the warehouse's admin, on the migrated database
    env: dict[str, str]  # how `meterhouse` commands reach the warehouse
    warehouse_pid: int
    root: Path

    def rate(self) -> float:
        """`meterhouse rate run` as a user runs it; its wall time in seconds."""
        started = time.perf_counter()
        rating = subprocess.run(
            meterhouse_command("rate", "run", "--no-progress", "--no-tests"),
            env={**os.environ, **self.env, "DBT_TARGET_PATH": f"{self.root}/dbt",
                 "DBT_LOG_PATH": f"{self.root}/dbt/logs"},
            cwd=REPO_ROOT, capture_output=True, text=True,
        )  # fmt: skip
        if rating.returncode != 0:
            sys.exit(f"meterhouse rate run failed:\n{rating.stdout[-3000:]}{rating.stderr}")
        return time.perf_counter() - started


@contextmanager
def billing_api(root: Path) -> Iterator[BillingApi]:
    """A migrated embedded warehouse in ``root`` and `meterhouse api serve` on it, stopped on the
    way out."""
    server, url, password, _ = start_embedded_server(root / "data", root / "wh.log")
    assert server.process is not None
    settings = Settings(warehouse_url=url, warehouse_user="admin", warehouse_password=password)
    env = {"WAREHOUSE_URL": url, "MH_WAREHOUSE_USER": "admin", "MH_WAREHOUSE_PASSWORD": password}
    api = None
    try:
        migrate(get_client(settings, database=""), settings.warehouse_database)
        port = free_port()
        api = ServiceProcess(
            meterhouse_command("api", "serve", "--port", str(port)),
            f"http://127.0.0.1:{port}/health",
            env=env,
            log_path=root / "api.log",
        ).start()
        yield BillingApi(
            f"http://127.0.0.1:{port}", get_client(settings), env, server.process.pid, root
        )
    finally:
        if api is not None:
            api.stop()
        server.stop()

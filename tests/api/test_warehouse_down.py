"""The billing API while its warehouse is down: 503 warehouse_unavailable with Retry-After on
every route (health included), then normal answers once the warehouse is back at its address."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest

from meterhouse.orgs import create_organization
from tests.support.processes import ServiceProcess, free_port, meterhouse_command
from warehouse.client import get_client
from warehouse.migrate import migrate
from warehouse.settings import Settings

pytestmark = pytest.mark.embedded


def embedded_warehouse(port: int, data_dir: Path, password: str, log_path: Path) -> ServiceProcess:
    return ServiceProcess(
        meterhouse_command("warehouse", "serve", "--port", str(port), "--data-dir", str(data_dir)),
        f"http://127.0.0.1:{port}/ping",
        env={
            "MH_WAREHOUSE_ADMIN_PASSWORD": password,
            "MH_WAREHOUSE_ANALYST_PASSWORD": secrets.token_urlsafe(16),
        },
        log_path=log_path,
    )


def test_warehouse_down_gives_503_with_retry_after_then_recovers(tmp_path: Path) -> None:
    port, password = free_port(), secrets.token_urlsafe(16)
    warehouse = embedded_warehouse(port, tmp_path / "data", password, tmp_path / "wh.log").start()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(warehouse_url=url, warehouse_password=password)
    migrate(get_client(settings, database=""), settings.warehouse_database)
    _, api_key = create_organization(get_client(settings), "Warehouse down")
    api_port = free_port()
    api = f"http://127.0.0.1:{api_port}"
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        with ServiceProcess(
            meterhouse_command("api", "serve", "--port", str(api_port)),
            f"{api}/health",
            env={"WAREHOUSE_URL": url, "MH_WAREHOUSE_PASSWORD": password,
                 "MH_INGEST_RETRY_AFTER_S": "3"},
            log_path=tmp_path / "api.log",
        ):  # fmt: skip
            assert httpx.get(f"{api}/api/v1/customers", headers=headers).status_code == 200
            warehouse.stop()
            for path in ("/health", "/api/v1/customers", "/api/v1/plans"):
                down = httpx.get(f"{api}{path}", headers=headers, timeout=60)
                assert down.status_code == 503, (path, down.text)
                assert down.headers["retry-after"] == "3"
                assert down.json()["code"] == "warehouse_unavailable"
            warehouse = embedded_warehouse(
                port, tmp_path / "data", password, tmp_path / "wh2.log"
            ).start()
            back = httpx.get(f"{api}/api/v1/customers", headers=headers)
            assert back.status_code == 200
            assert back.json()["customers"] == []
    finally:
        warehouse.stop()

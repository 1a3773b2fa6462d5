"""The billing API while its warehouse is down: it starts anyway, answers 503
warehouse_unavailable with Retry-After on every route (health included), and answers normally
once the warehouse is back at its address, however often it goes away."""

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


def answers_unavailable(health_url: str) -> bool:
    try:
        return httpx.get(health_url, timeout=1.0).status_code == 503
    except httpx.HTTPError:  # not listening yet
        return False


def assert_unavailable(api: str, headers: dict[str, str]) -> None:
    for path in ("/health", "/api/v1/customers", "/api/v1/plans"):
        down = httpx.get(f"{api}{path}", headers=headers, timeout=60)
        assert down.status_code == 503, (path, down.text)
        assert down.headers["retry-after"] == "3"
        assert down.json()["code"] == "warehouse_unavailable"


def test_warehouse_down_gives_503_with_retry_after_then_recovers(tmp_path: Path) -> None:
    port, password = free_port(), secrets.token_urlsafe(16)
    data = tmp_path / "data"
    warehouse = embedded_warehouse(port, data, password, tmp_path / "wh1.log").start()
    url = f"http://127.0.0.1:{port}"
    settings = Settings(warehouse_url=url, warehouse_password=password)
    migrate(get_client(settings, database=""), settings.warehouse_database)
    _, api_key = create_organization(get_client(settings), "Warehouse down")
    warehouse.stop()
    api = f"http://127.0.0.1:{free_port()}"
    headers = {"Authorization": f"Bearer {api_key}"}
    try:
        with ServiceProcess(
            meterhouse_command("api", "serve", "--port", api.rsplit(":", 1)[1]),
            f"{api}/health",
            env={"WAREHOUSE_URL": url, "MH_WAREHOUSE_PASSWORD": password,
                 "MH_INGEST_RETRY_AFTER_S": "3"},
            log_path=tmp_path / "api.log",
            # Started before its warehouse: up, but unavailable.
            ready=lambda: answers_unavailable(f"{api}/health"),
        ):  # fmt: skip
            assert_unavailable(api, headers)
            warehouse = embedded_warehouse(port, data, password, tmp_path / "wh2.log").start()
            assert httpx.get(f"{api}/api/v1/customers", headers=headers).json()["customers"] == []
            warehouse.stop()  # and away again once connected
            assert_unavailable(api, headers)
            warehouse = embedded_warehouse(port, data, password, tmp_path / "wh3.log").start()
            assert httpx.get(f"{api}/health").status_code == 200
    finally:
        warehouse.stop()

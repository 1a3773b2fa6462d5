"""The billing API started as a user starts it, and Lago clients for two organizations."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client as WarehouseClient
from lago_python_client.client import Client as LagoClient

from meterhouse.orgs import create_organization
from orchestration.webhooks import new_rsa_private_key
from tests.conftest import Warehouse
from tests.support.processes import ServiceProcess, free_port, meterhouse_command


@dataclass(frozen=True)
class Tenant:
    """An organization with its API key and a Lago client using it."""

    organization_id: str
    api_key: str
    lago: LagoClient


# The deployment's key of JWT-signed webhooks, whose public key the API serves.
WEBHOOK_RSA_PRIVATE_KEY = new_rsa_private_key()


@pytest.fixture(scope="session")
def api_url(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log_path: Path = tmp_path_factory.mktemp("api") / "api.log"
    server = ServiceProcess(
        meterhouse_command("api", "serve", "--port", str(port)),
        f"http://127.0.0.1:{port}/health",
        env={**warehouse.env, "MH_WEBHOOK_RSA_PRIVATE_KEY": WEBHOOK_RSA_PRIVATE_KEY},
        log_path=log_path,
    ).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def make_tenant(admin_client: WarehouseClient, api_url: str) -> Tenant:
    organization, api_key = create_organization(admin_client, f"org-{secrets.token_hex(4)}")
    return Tenant(
        str(organization.organization_id), api_key, LagoClient(api_key=api_key, api_url=api_url)
    )


@pytest.fixture
def tenant(admin_client: WarehouseClient, api_url: str) -> Tenant:
    """A fresh organization per test, so tests never see each other's records."""
    return make_tenant(admin_client, api_url)


@pytest.fixture
def other_tenant(admin_client: WarehouseClient, api_url: str) -> Tenant:
    return make_tenant(admin_client, api_url)


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"

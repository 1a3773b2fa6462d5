"""Fixtures of the ingestion tests: an organization with its API key, a running ingest API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from meterhouse.orgs import Organization, create_organization
from tests.conftest import Warehouse
from tests.support.processes import ServiceProcess, free_port, meterhouse_command


@dataclass(frozen=True)
class IngestService:
    url: str
    api_key: str
    organization: Organization
    process: ServiceProcess

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=30.0,
            **kwargs,  # type: ignore[arg-type]
        )


def start_ingest(
    env: dict[str, str], log_path: Path, *, workers: int = 1, port: int | None = None
) -> tuple[ServiceProcess, str]:
    port = port or free_port()
    process = ServiceProcess(
        meterhouse_command("ingest", "serve", "--port", str(port), "--workers", str(workers)),
        f"http://127.0.0.1:{port}/health",
        env=env,
        log_path=log_path,
    ).start()
    return process, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="session")
def organization_and_key(admin_client: Client) -> tuple[Organization, str]:
    return create_organization(admin_client, f"ingest-tests-{uuid.uuid4().hex[:8]}")


@pytest.fixture(scope="session")
def ingest(
    warehouse: Warehouse,
    organization_and_key: tuple[Organization, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[IngestService]:
    organization, api_key = organization_and_key
    log_path = tmp_path_factory.mktemp("ingest") / "ingest.log"
    process, url = start_ingest(warehouse.env, log_path)
    try:
        yield IngestService(url, api_key, organization, process)
    finally:
        process.stop()


def stored_events(client: Client, organization_id: uuid.UUID, subscription: str) -> list[dict]:
    """The subscription's events as readers see them: deduplicated with FINAL."""
    result = client.query(
        "SELECT transaction_id, code, timestamp, properties, precise_total_amount_cents, "
        "external_customer_id, raw FROM events FINAL "
        "WHERE organization_id = {org:UUID} AND external_subscription_id = {sub:String} "
        "ORDER BY transaction_id",
        parameters={"org": organization_id, "sub": subscription},
    )
    return list(result.named_results())


def unique_subscription() -> str:
    return f"sub-{uuid.uuid4().hex[:12]}"

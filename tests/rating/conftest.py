"""Rating fixtures: read fees back; the billing API and tenants that send events through it."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from lago_python_client.client import Client as LagoClient

from meterhouse.orgs import create_organization
from tests.conftest import Rater, Warehouse
from tests.support.processes import ServiceProcess, free_port, meterhouse_command

FeeRow = dict[str, Any]


def fees_of(client: Client, organization_id: uuid.UUID, where: str = "1") -> list[FeeRow]:
    """The fees of one organization, ordered for stable assertions."""
    result = client.query(
        f"SELECT * FROM fct_fees FINAL WHERE organization_id = {{org:UUID}} AND ({where}) "
        "ORDER BY fee_type, billable_metric_code, period_from, source_transaction_id, "
        "toString(grouped_by), toString(charge_filter_id)",
        parameters={"org": organization_id},
    )
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


def january_charge_fees(fees: list[FeeRow], subscription: uuid.UUID, code: str) -> list[FeeRow]:
    """The charge fees of one subscription and metric for January's period."""
    return [
        fee
        for fee in fees
        if fee["fee_type"] == "charge"
        and fee["subscription_id"] == subscription
        and fee["billable_metric_code"] == code
        and fee["period_from"].month == 1
    ]


FeesReader = Callable[..., list[FeeRow]]


@pytest.fixture(scope="session")
def billing_api(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The billing API (which also serves Lago's event routes), started as a user starts it."""
    port = free_port()
    server = ServiceProcess(
        meterhouse_command("api", "serve", "--port", str(port)),
        f"http://127.0.0.1:{port}/health",
        env=warehouse.env,
        log_path=tmp_path_factory.mktemp("billing_api") / "api.log",
    ).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def rating_views(rater: Rater) -> None:
    """The dbt views current usage reads exist once the project has run (no dbt run later)."""
    rater.run("--no-tests")


@dataclass(frozen=True)
class Tenant:
    organization_id: uuid.UUID
    api_key: str
    api_url: str
    lago: LagoClient


def new_tenant(admin_client: Client, billing_api: str) -> Tenant:
    """A new organization with a Lago client on the billing API."""
    organization, api_key = create_organization(admin_client, f"rating-{secrets.token_hex(4)}")
    lago = LagoClient(api_key=api_key, api_url=billing_api)
    return Tenant(organization.organization_id, api_key, billing_api, lago)


@pytest.fixture
def tenant(admin_client: Client, billing_api: str) -> Tenant:
    """A fresh organization per test with a Lago client on the billing API."""
    return new_tenant(admin_client, billing_api)

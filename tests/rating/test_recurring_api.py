"""Recurring metrics, prorated charges and metric expressions end to end, as a Lago user drives
them: the catalog through the billing API with the official Lago client, events through the
event routes, `meterhouse rate run` for the closed periods, current usage for the open one."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from lago_python_client.models import BillableMetric, Charge, Charges, Event, Plan, Subscription

from tests.conftest import Rater
from tests.rating.conftest import Tenant, fees_of

pytestmark = pytest.mark.usefixtures("rating_views")

GRADUATED = {
    "graduated_ranges": [
        {"from_value": 0, "to_value": 5, "per_unit_amount": "1", "flat_amount": "0"},
        {"from_value": 6, "to_value": None, "per_unit_amount": "2", "flat_amount": "3"},
    ]
}
HOURS = "round((event.properties.ended_at - event.properties.started_at) / 3600, 2)"


def create_catalog(tenant: Tenant) -> None:
    lago = tenant.lago
    metrics = [
        BillableMetric(
            name="Seats", code="seats", aggregation_type="unique_count_agg",
            field_name="user", recurring=True,
        ),
        BillableMetric(
            name="Storage", code="storage", aggregation_type="sum_agg",
            field_name="gb", recurring=True,
        ),
        BillableMetric(
            name="Hours", code="hours", aggregation_type="sum_agg", field_name="hours",
            expression=HOURS,
        ),
    ]  # fmt: skip
    ids = {}
    for metric in metrics:
        created = lago.billable_metrics.create(metric)
        assert created is not None
        ids[metric.code] = created.lago_id
    charges = [
        Charge(
            billable_metric_id=ids["seats"], charge_model="standard", prorated=True,
            properties={"amount": "10"},
        ),
        Charge(
            billable_metric_id=ids["storage"], charge_model="graduated", prorated=True,
            properties=GRADUATED,
        ),
        Charge(
            billable_metric_id=ids["hours"], charge_model="standard", properties={"amount": "2"}
        ),
    ]  # fmt: skip
    lago.plans.create(
        Plan(
            name="Team", code="team", interval="monthly", amount_cents=0, amount_currency="USD",
            charges=Charges(__root__=charges),
        )
    )  # fmt: skip
    subscribe(tenant, "team", "2024-05-01T00:00:00Z")


def subscribe(tenant: Tenant, plan_code: str, subscription_at: str) -> None:
    """Customer "cust" subscribes to a plan as subscription "sub", calendar billing."""
    tenant.lago.subscriptions.create(
        Subscription(
            external_customer_id="cust", plan_code=plan_code, external_id="sub",
            subscription_at=subscription_at, billing_time="calendar",
        )
    )  # fmt: skip


def send(tenant: Tenant, code: str, at: str, properties: dict[str, Any]) -> None:
    timestamp = int(datetime.fromisoformat(at).replace(tzinfo=UTC).timestamp())
    tenant.lago.events.create(
        Event(
            transaction_id=str(uuid.uuid4()), external_subscription_id="sub", code=code,
            timestamp=timestamp, properties=properties,
        )
    )  # fmt: skip


def current_usage_by_metric(tenant: Tenant) -> dict[str, dict[str, Any]]:
    """Subscription "sub"'s current usage through the billing API, per metric code."""
    response = httpx.get(
        f"{tenant.api_url}/api/v1/customers/cust/current_usage",
        params={"external_subscription_id": "sub"},
        headers={"Authorization": f"Bearer {tenant.api_key}"},
        timeout=120,
    )
    assert response.status_code == 200, response.text
    charges = response.json()["customer_usage"]["charges_usage"]
    return {charge["billable_metric"]["code"]: charge for charge in charges}


def wait_for_events(client: Client, tenant: Tenant, count: int) -> None:
    """The ingest API batches its writes: wait until every event sent is stored."""
    deadline = time.monotonic() + 60
    while True:
        stored = client.query(
            "SELECT count() FROM events WHERE organization_id = {org:UUID}",
            parameters={"org": tenant.organization_id},
        ).result_rows[0][0]
        if stored >= count:
            return
        assert time.monotonic() < deadline, f"only {stored} of {count} events stored after 60 s"
        time.sleep(0.5)


def test_recurring_prorated_and_expression_metrics_bill_as_lago(
    tenant: Tenant, rater: Rater, admin_client: Client
) -> None:
    create_catalog(tenant)
    send(tenant, "seats", "2024-05-01T09:00:00", {"user": "a"})
    send(tenant, "seats", "2024-05-11T09:00:00", {"user": "b"})
    send(tenant, "storage", "2024-05-11T09:00:00", {"gb": 10})
    send(tenant, "hours", "2024-05-02T09:00:00", {"started_at": 0, "ended_at": 5000})
    send(tenant, "hours", "2024-05-03T09:00:00", {"started_at": 100, "ended_at": 7300})
    wait_for_events(admin_client, tenant, 5)

    rater.run("--as-of", "2024-07-01T00:00:00", "--no-tests")
    fees = fees_of(admin_client, tenant.organization_id, "fee_type = 'charge'")
    by_metric: dict[str, list[int]] = {}
    for fee in fees:
        by_metric.setdefault(fee["billable_metric_code"], []).append(fee["amount_cents"])
    assert by_metric == {
        # May 3.39 h (5000 s rounded to 1.39 h, + 2 h) x 2.00 = 6.78; none in June.
        "hours": [678, 0],
        # May: a for 31 of 31 days, b for 21: 1.67742 seats x 10.00 = 16.7742. June: both
        # carried all month, 2 x 10.00.
        "seats": [1677, 2000],
        # May: 10 GB from May 11 (21 days): tiers 0-5 at 1 and 6+ at 2 give (5 + 10) x 21/31
        # = 10.1613 + the 6+ flat 3.00 = 13.1613. June: carried all month, 15 + 3 = 18.00.
        "storage": [1316, 1800],
    }

    # The open period carries everything and serves it whole: the same prices as June, with
    # the full units shown as Lago shows them.
    usage = {
        code: (charge["units"], charge["amount_cents"])
        for code, charge in current_usage_by_metric(tenant).items()
    }
    assert usage == {"seats": ("2.0", 2000), "storage": ("10.0", 1800), "hours": ("0.0", 0)}

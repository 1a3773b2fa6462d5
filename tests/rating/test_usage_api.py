"""Current and past usage through the billing API with the official Lago client: the catalog is
created over the API, events go through the event routes, and current usage reflects them at
once, without a dbt run in between (the dbt views price the open period on read)."""

from __future__ import annotations

import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from lago_python_client.models import (
    BillableMetric,
    Charge,
    Charges,
    Event,
    Plan,
    Subscription,
    Tax,
)
from lago_python_client.models.customer_usage import CustomerUsageResponse

from api.services.usage import UsageNotAvailable, current_usage_rows
from api.storage.catalog import CatalogStore
from tests.conftest import Rater, Warehouse
from tests.rating.conftest import Tenant
from warehouse.migrate import migrate

pytestmark = pytest.mark.usefixtures("rating_views")

GRADUATED = {
    "graduated_ranges": [
        {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "2"},
        {"from_value": 11, "to_value": None, "per_unit_amount": "0.5", "flat_amount": "0"},
    ]
}


def create_catalog(
    tenant: Tenant,
    *,
    plan_tax_codes: list[str] | None = None,
    calls_tax_codes: list[str] | None = None,
    subscription_at: str | None = None,
    pay_in_advance: bool = False,
    billing_time: str = "calendar",
) -> None:
    calls = tenant.lago.billable_metrics.create(
        BillableMetric(
            name="API calls", code="calls", aggregation_type="sum_agg", field_name="value"
        )
    )
    seats = tenant.lago.billable_metrics.create(
        BillableMetric(name="Seats", code="seats", aggregation_type="count_agg")
    )
    assert calls is not None and seats is not None
    charges = [
        Charge(
            billable_metric_id=calls.lago_id,
            charge_model="graduated",
            properties=GRADUATED,
            tax_codes=calls_tax_codes,
        ),
        Charge(
            billable_metric_id=seats.lago_id,
            charge_model="standard",
            properties={"amount": "3", "grouped_by": ["region"]},
        ),
    ]
    plan = Plan(
        name="Usage", code="usage", interval="monthly", amount_cents=1000, amount_currency="EUR",
        charges=Charges(__root__=charges), tax_codes=plan_tax_codes, pay_in_advance=pay_in_advance,
    )  # fmt: skip
    tenant.lago.plans.create(plan)
    tenant.lago.subscriptions.create(
        Subscription(
            external_customer_id="cust",
            plan_code="usage",
            external_id="sub",
            subscription_at=subscription_at,
            billing_time=billing_time,
        )
    )


def create_taxes(tenant: Tenant) -> None:
    """Two taxes for the plan and the calls charge, and an organization default that neither
    fee falls back to."""
    taxes = (("vat", 8.25, False), ("levy", 12.5, False), ("default", 5.0, True))
    for code, rate, applied_to_organization in taxes:
        tenant.lago.taxes.create(
            Tax(name=code, code=code, rate=rate, applied_to_organization=applied_to_organization)
        )


def send(tenant: Tenant, code: str, properties: dict[str, Any], at: datetime | None = None) -> None:
    tenant.lago.events.create(
        Event(
            transaction_id=str(uuid.uuid4()),
            external_subscription_id="sub",
            code=code,
            timestamp=int((at or datetime.now(UTC)).timestamp()),
            properties=properties,
        )
    )


def get_usage(tenant: Tenant, customer: str, subscription: str) -> httpx.Response:
    # Rating the open period on read takes seconds on a loaded 2-core machine, beyond the Lago
    # client's 5 s default timeout: fetch with a longer one and parse with Lago's own model.
    return httpx.get(
        f"{tenant.api_url}/api/v1/customers/{customer}/current_usage",
        params={"external_subscription_id": subscription},
        headers={"Authorization": f"Bearer {tenant.api_key}"},
        timeout=120,
    )


def current_usage_when(tenant: Tenant, events: int) -> CustomerUsageResponse:
    """Current usage once the ingest API has committed ``events`` events (it batches writes)."""
    deadline = time.monotonic() + 60
    while True:
        response = get_usage(tenant, "cust", "sub")
        assert response.status_code == 200, response.text
        usage = CustomerUsageResponse.parse_obj(response.json()["customer_usage"])
        if sum(charge.events_count for charge in usage.charges_usage) >= events:
            return usage
        assert time.monotonic() < deadline, f"only {usage} after 60 s"
        time.sleep(0.5)


def test_current_usage_prices_the_open_period_fresh_to_the_last_event(tenant: Tenant) -> None:
    create_catalog(tenant)
    send(tenant, "calls", {"value": 7})
    send(tenant, "calls", {"value": 8})
    for region in ("eu", "eu", "us"):
        send(tenant, "seats", {"region": region})

    usage = current_usage_when(tenant, 5)
    by_code = {charge.billable_metric.code: charge for charge in usage.charges_usage}
    # 15 calls: 10 x 1 + 2 (first tier) + (15 - 11 + 1) x 0.5 = 14.50.
    assert (by_code["calls"].units, by_code["calls"].amount_cents) == ("15.0", 1450)
    assert by_code["calls"].charge.charge_model == "graduated"
    # Seats grouped by region at 3.00 each: eu 6.00, us 3.00.
    groups = {
        group.grouped_by["region"]: group.amount_cents for group in by_code["seats"].grouped_usage
    }
    assert groups == {"eu": 600, "us": 300}
    assert usage.amount_cents == 1450 + 900
    assert usage.currency == "EUR"
    # The subscription started today: its first (calendar) period is served from today on.
    today = datetime.now(UTC).date()
    assert usage.from_datetime == f"{today.isoformat()}T00:00:00Z"
    assert usage.to_datetime.endswith("T23:59:59Z")

    send(tenant, "calls", {"value": 1})
    usage = current_usage_when(tenant, 6)
    calls = next(c for c in usage.charges_usage if c.billable_metric.code == "calls")
    assert (calls.units, calls.amount_cents) == ("16.0", 1500)


def test_current_usage_is_taxed_as_its_invoice_would_be(tenant: Tenant) -> None:
    create_taxes(tenant)
    create_catalog(tenant, plan_tax_codes=["vat"], calls_tax_codes=["levy"])
    send(tenant, "calls", {"value": 15})
    for region in ("eu", "eu", "us"):
        send(tenant, "seats", {"region": region})

    usage = current_usage_when(tenant, 4)
    assert usage.amount_cents == 1450 + 900
    # The calls charge has its own tax: 12.5% of 14.50 = 1.8125. The seats charge has none, so
    # the plan's applies, once on both groups' fees: 8.25% of 6.00 + 3.00 = 0.7425 (rounded per
    # fee it would be 0.50 + 0.25). The organization's default applies to neither.
    assert usage.taxes_amount_cents == 181 + 74
    assert usage.total_amount_cents == 2350 + 255


def test_current_usage_lists_pay_in_advance_charges_at_their_running_peak(tenant: Tenant) -> None:
    storage = tenant.lago.billable_metrics.create(
        BillableMetric(name="Storage", code="storage", aggregation_type="sum_agg", field_name="gb")
    )
    seats = tenant.lago.billable_metrics.create(
        BillableMetric(name="Seats", code="seats", aggregation_type="count_agg")
    )
    calls = tenant.lago.billable_metrics.create(
        BillableMetric(name="Calls", code="calls", aggregation_type="count_agg")
    )
    assert storage is not None and seats is not None and calls is not None
    charges = [
        Charge(
            billable_metric_id=storage.lago_id, charge_model="graduated", properties=GRADUATED,
            pay_in_advance=True, invoiceable=True,
        ),
        Charge(
            billable_metric_id=seats.lago_id, charge_model="standard", properties={"amount": "3"},
            pay_in_advance=True, invoiceable=True,
        ),
        Charge(
            billable_metric_id=calls.lago_id, charge_model="standard", properties={"amount": "1"}
        ),
    ]  # fmt: skip
    tenant.lago.plans.create(
        Plan(
            name="Mixed",
            code="mixed",
            interval="monthly",
            amount_cents=0,
            amount_currency="EUR",
            charges=Charges(__root__=charges),
        )
    )
    tenant.lago.subscriptions.create(
        Subscription(external_customer_id="cust", plan_code="mixed", external_id="sub")
    )
    start = datetime.now(UTC) - timedelta(seconds=60)
    # Running totals 5, 15, 11, 13: the peak is 15, and the fees priced on it never refund the
    # decrease.
    for offset, gb in enumerate((5, 10, -4, 2)):
        send(tenant, "storage", {"gb": gb}, at=start + timedelta(seconds=offset))
    send(tenant, "calls", {}, at=start)

    usage = current_usage_when(tenant, 5)
    by_code = {charge.billable_metric.code: charge for charge in usage.charges_usage}
    # Graduated at the peak of 15: 10 x 1 + 2 (first tier) + (15 - 11 + 1) x 0.5 = 14.50, which
    # is also the sum of the fees: cost(5) = 7.00, then cost(15) - cost(5) = 7.50, then nothing.
    assert (by_code["storage"].units, by_code["storage"].events_count) == ("15.0", 4)
    assert by_code["storage"].amount_cents == 1450
    # A pay-in-advance charge without events is listed, at zero, as Lago lists every charge.
    assert (by_code["seats"].units, by_code["seats"].amount_cents) == ("0.0", 0)
    assert (by_code["calls"].units, by_code["calls"].amount_cents) == ("1.0", 100)
    assert usage.amount_cents == 1450 + 100


def test_before_any_rating_run_current_usage_is_unavailable(warehouse: Warehouse) -> None:
    # A database migrated but never rated: no view to rate the open period with, nor the staging
    # views the pay-in-advance check reads.
    database = f"unrated_{secrets.token_hex(4)}"
    migrate(warehouse.client(database=""), database)
    store = CatalogStore(warehouse.client(database=database))
    try:
        # With the pay-in-advance charges (current usage) and without (wallets).
        for pay_in_advance in (True, False):
            with pytest.raises(UsageNotAvailable) as unavailable:
                current_usage_rows(
                    store, uuid.uuid4(), ["cust"], "sub", pay_in_advance=pay_in_advance
                )
            assert (unavailable.value.status, unavailable.value.code) == (
                503,
                "usage_not_available",
            )
    finally:
        warehouse.client(database="").command(f"DROP DATABASE IF EXISTS `{database}`")


def test_unknown_customer_or_subscription_is_a_404(tenant: Tenant) -> None:
    create_catalog(tenant)
    unknown_customer = get_usage(tenant, "nobody", "sub")
    assert unknown_customer.status_code == 404
    assert unknown_customer.json()["code"] == "customer_not_found"
    unknown_subscription = get_usage(tenant, "cust", "other")
    assert unknown_subscription.status_code == 404
    assert unknown_subscription.json()["code"] == "subscription_not_found"


def test_missing_subscription_parameter_is_a_422(tenant: Tenant) -> None:
    response = httpx.get(
        f"{tenant.api_url}/api/v1/customers/cust/current_usage",
        headers={"Authorization": f"Bearer {tenant.api_key}"},
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_errors"


def test_past_usage_is_empty_before_any_period_closes(tenant: Tenant) -> None:
    create_catalog(tenant)
    past = tenant.lago.customers.past_usage("cust", "sub")
    assert past["usage_periods"] == []


def test_past_usage_lists_the_closed_periods_with_their_taxes(tenant: Tenant, rater: Rater) -> None:
    today = datetime.now(UTC).date()
    last_month = (today.replace(day=1) - timedelta(days=1)).replace(day=1)
    create_taxes(tenant)
    create_catalog(
        tenant,
        plan_tax_codes=["vat"],
        calls_tax_codes=["levy"],
        subscription_at=f"{last_month.isoformat()}T00:00:00Z",
    )
    during_last_month = datetime(last_month.year, last_month.month, 15, 10, tzinfo=UTC)
    send(tenant, "calls", {"value": 15}, at=during_last_month)
    for region in ("eu", "eu", "us"):
        send(tenant, "seats", {"region": region}, at=during_last_month)
    rater.run("--no-tests")

    past = tenant.lago.customers.past_usage("cust", "sub")
    [period] = past["usage_periods"]
    assert period.from_datetime == f"{last_month.isoformat()}T00:00:00Z"
    assert period.amount_cents == 1450 + 900
    # As in current usage: 12.5% of 14.50 on the calls, 8.25% once on both seats groups.
    assert period.taxes_amount_cents == 181 + 74
    assert period.total_amount_cents == 2350 + 255

"""POST /api/v1/events/estimate_fees through the official Lago client: the fees an event would
produce now on pay-in-advance charges, priced by the rating's macros over the open period
(cost(after) - cost(running peak before), never negative), and nothing stored. Expected fees are
derived by hand below."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from lago_python_client.events import clients as event_clients
from lago_python_client.exceptions import LagoApiError
from lago_python_client.models import (
    BillableMetric,
    BillableMetricFilter,
    Charge,
    Charges,
    Event,
    Plan,
    Subscription,
    Tax,
)
from lago_python_client.models.billable_metric import BillableMetricFilters
from lago_python_client.models.charge import ChargeFilter, ChargeFilters
from lago_python_client.models.fee import FeeResponse

from meterhouse.orgs import create_organization
from tests.rating.conftest import Tenant

pytestmark = pytest.mark.usefixtures("rating_views")

SUBSCRIPTION = "sub_est"


def metric(tenant: Tenant, code: str, aggregation: str, **fields: Any) -> str:
    created = tenant.lago.billable_metrics.create(
        BillableMetric(name=code, code=code, aggregation_type=aggregation, **fields)
    )
    assert created is not None
    return str(created.lago_id)


def in_advance(metric_id: str, model: str, properties: dict[str, Any], **fields: Any) -> Charge:
    return Charge(
        billable_metric_id=metric_id, charge_model=model, pay_in_advance=True,
        invoiceable=True, properties=properties, **fields,
    )  # fmt: skip


@pytest.fixture
def catalog(tenant: Tenant) -> Tenant:
    """One EUR plan taxed 20 % with a pay-in-advance charge per model, a filtered one and an
    arrears one, subscribed today (its open period runs from today to the month's end)."""
    tenant.lago.taxes.create(Tax(name="VAT", code="vat", rate=20.0))
    charges = [
        in_advance(metric(tenant, "std", "sum_agg", field_name="n"), "standard",
                   {"amount": "0.125"}),
        in_advance(metric(tenant, "grad", "sum_agg", field_name="n"), "graduated", {
            "graduated_ranges": [
                {"from_value": 0, "to_value": 10, "per_unit_amount": "1", "flat_amount": "2"},
                {"from_value": 11, "to_value": None, "per_unit_amount": "0.5",
                 "flat_amount": "3"},
            ]}),
        in_advance(metric(tenant, "pkg", "sum_agg", field_name="n"), "package",
                   {"amount": "5", "package_size": 10, "free_units": 0}),
        in_advance(metric(tenant, "pct", "sum_agg", field_name="amount"), "percentage",
                   {"rate": "2.5", "fixed_amount": "0.10"}),
        in_advance(
            metric(tenant, "calls", "count_agg", filters=BillableMetricFilters(__root__=[
                BillableMetricFilter(key="region", values=["eu", "us"])])),
            "standard", {"amount": "1"},
            filters=ChargeFilters(__root__=[
                ChargeFilter(values={"region": ["eu"]}, properties={"amount": "3"})]),
        ),
        Charge(billable_metric_id=metric(tenant, "arrears", "count_agg"),
               charge_model="standard", properties={"amount": "1"}),
    ]  # fmt: skip
    tenant.lago.plans.create(
        Plan(name="Est", code="est", interval="monthly", amount_cents=0, amount_currency="EUR",
             tax_codes=["vat"], charges=Charges(__root__=charges))
    )  # fmt: skip
    tenant.lago.subscriptions.create(
        Subscription(external_customer_id="cust_est", plan_code="est", external_id=SUBSCRIPTION)
    )
    # Usage already in the open period (a 2xx from the ingest route means it is committed).
    for code, properties in [
        ("std", {"n": 4}), ("grad", {"n": 8}), ("pkg", {"n": 12}), ("pct", {"amount": 100}),
    ]:  # fmt: skip
        tenant.lago.events.create(
            Event(transaction_id=str(uuid.uuid4()), external_subscription_id=SUBSCRIPTION,
                  code=code, timestamp=int(time.time()), properties=properties)
        )  # fmt: skip
    return tenant


Estimate = Callable[..., list[FeeResponse]]


@pytest.fixture
def estimate(catalog: Tenant, monkeypatch: pytest.MonkeyPatch) -> Estimate:
    # The estimate rates the open period on read, like current usage: on a loaded 2-core machine
    # the query takes seconds, beyond the 5 s httpx default the client's estimate_fees uses (it
    # takes no timeout). Only the timeout changes; the client builds and parses as it ships.
    post_with_default_timeout = event_clients.send_post_request
    monkeypatch.setattr(
        event_clients, "send_post_request",
        lambda url, **kwargs: post_with_default_timeout(url, timeout=120, **kwargs),
    )  # fmt: skip

    def estimate(code: str, properties: dict[str, Any], **fields: Any) -> list[FeeResponse]:
        event = Event(
            transaction_id="what-if", external_subscription_id=SUBSCRIPTION, code=code,
            properties=properties, **fields,
        )  # fmt: skip
        return list(catalog.lago.events.estimate_fees(event)["fees"])

    return estimate


def only(fees: list[FeeResponse]) -> FeeResponse:
    assert len(fees) == 1, fees
    return fees[0]


def test_standard_rounds_the_marginal_fee_once_half_up(estimate: Estimate) -> None:
    fee = only(estimate("std", {"n": 3}))
    # 0.125 per unit: cost(4 + 3) - cost(4) = 0.875 - 0.5 = 0.375 EUR, half-up to 38 cents.
    assert (fee.units, fee.amount_cents, fee.precise_amount) == ("3.0", 38, "0.375")
    # Taxed 20 % on the rounded fee: 38 x 0.2 = 7.6 -> 8; total 46.
    assert (fee.taxes_amount_cents, fee.total_amount_cents, fee.taxes_rate) == (8, 46, 20.0)
    assert fee.applied_taxes is not None
    assert [(t.tax_code, t.amount_cents) for t in fee.applied_taxes.__root__] == [("vat", 8)]
    assert fee.pay_in_advance is True and fee.events_count == 1
    assert fee.amount_currency == "EUR" and fee.lago_id is None
    assert fee.event_transaction_id == "what-if"
    assert fee.item is not None and fee.item.code == "std"
    # The open charge period: from today (the subscription's first day) to the month's end.
    today = datetime.now(UTC).date().isoformat()
    assert fee.from_date == f"{today}T00:00:00Z"
    assert fee.to_date is not None and fee.to_date.endswith("T23:59:59Z")


def test_graduated_bills_the_tier_entered_and_its_flat_fee(estimate: Estimate) -> None:
    # Tiers 0-10 at 1 + flat 2, 11-inf at 0.5 + flat 3; 8 units already used: cost(8) = 10.
    # The first tier ends at cost(10) = 10 x 1 + 2 = 12.
    # +3 -> 11 units enters the second tier: cost(11) = 12 + 1 x 0.5 + 3 = 15.5; fee 5.50.
    assert only(estimate("grad", {"n": 3})).amount_cents == 550
    # +5 -> 13 units: cost(13) = 12 + 3 x 0.5 + 3 = 16.5; fee 6.50.
    fee = only(estimate("grad", {"n": 5}))
    assert (fee.units, fee.amount_cents, fee.taxes_amount_cents) == ("5.0", 650, 130)


def test_package_bills_only_started_packages(estimate: Estimate) -> None:
    # 10 units a package at 5; 12 units used = 2 packages (10.00).
    # +5 -> 17: still 2 packages, nothing to bill.
    assert only(estimate("pkg", {"n": 5})).amount_cents == 0
    # +9 -> 21: 3 packages = 15.00; fee 5.00.
    assert only(estimate("pkg", {"n": 9})).amount_cents == 500


def test_percentage_adds_the_rate_and_the_fixed_fee_per_event(estimate: Estimate) -> None:
    # 2.5 % + 0.10 per event; 100 used in one event: cost = 2.50 + 0.10 = 2.60.
    # +40 -> 140 in two events: 3.50 + 0.20 = 3.70; fee 1.10.
    assert only(estimate("pct", {"amount": 40})).amount_cents == 110


def test_decreases_are_not_refunded(estimate: Estimate) -> None:
    # 8 units used, -3 -> 5: below the running peak, the fee is 0 (never negative).
    fee = only(estimate("grad", {"n": -3}))
    assert (fee.units, fee.amount_cents, fee.total_amount_cents) == ("0.0", 0, 0)


def test_an_event_matching_a_filter_takes_its_price(estimate: Estimate, catalog: Tenant) -> None:
    eu = only(estimate("calls", {"region": "eu"}))
    us = only(estimate("calls", {"region": "us"}))
    # One call: 3.00 at the eu filter's price, 1.00 at the default price.
    assert (eu.amount_cents, us.amount_cents) == (300, 100)
    plan = httpx.get(
        f"{catalog.api_url}/api/v1/plans/est",
        headers={"Authorization": f"Bearer {catalog.api_key}"},
    ).json()["plan"]
    charge = next(charge for charge in plan["charges"] if charge["filters"])
    assert eu.lago_charge_id == us.lago_charge_id == charge["lago_id"]
    assert eu.lago_charge_filter_id == charge["filters"][0]["lago_id"]
    assert us.lago_charge_filter_id is None


def test_nothing_is_stored(estimate: Estimate, catalog: Tenant, admin_client: Client) -> None:
    def stored() -> int:
        return int(
            admin_client.command(
                "SELECT count() FROM events WHERE organization_id = {org:UUID}",
                parameters={"org": catalog.organization_id},
            )
        )

    before = stored()
    estimate("grad", {"n": 1})
    assert stored() == before
    # And the next estimate still starts from the stored usage only: 8 -> 13 bills 6.50.
    assert only(estimate("grad", {"n": 5})).amount_cents == 650


def lago_error(call: Callable[[], object]) -> LagoApiError:
    with pytest.raises(LagoApiError) as raised:
        call()
    return raised.value


def post(catalog: Tenant, event: dict[str, Any], api_key: str | None = None) -> httpx.Response:
    return httpx.post(
        f"{catalog.api_url}/api/v1/events/estimate_fees",
        json={"event": event},
        headers={"Authorization": f"Bearer {api_key or catalog.api_key}"},
        timeout=120,
    )


def test_errors_in_lagos_shapes(estimate: Estimate, catalog: Tenant, tenant: Tenant) -> None:
    unknown_subscription = post(catalog, {"code": "std", "external_subscription_id": "nope"})
    assert unknown_subscription.status_code == 404
    assert unknown_subscription.json() == {
        "status": 404, "error": "Not Found", "code": "subscription_not_found",
    }  # fmt: skip
    assert lago_error(lambda: estimate("nope", {})).status_code == 404
    unknown_metric = post(catalog, {"code": "nope", "external_subscription_id": SUBSCRIPTION})
    assert unknown_metric.json()["code"] == "billable_metric_not_found"

    arrears = post(catalog, {"code": "arrears", "external_subscription_id": SUBSCRIPTION})
    assert arrears.status_code == 422
    assert arrears.json() == {
        "status": 422, "error": "Unprocessable Entity", "code": "validation_errors",
        "error_details": {"code": ["does_not_match_an_instant_charge"]},
    }  # fmt: skip
    not_a_number = post(
        catalog, {"code": "grad", "external_subscription_id": SUBSCRIPTION,
                  "properties": {"n": "lots"}, "precise_total_amount_cents": "1e99"},
    )  # fmt: skip
    assert not_a_number.status_code == 422
    assert not_a_number.json()["error_details"] == {
        "properties": ["value_is_not_valid_number"],
        "precise_total_amount_cents": ["invalid_decimal"],
    }
    missing = post(catalog, {"properties": []})
    assert missing.status_code == 422
    assert set(missing.json()["error_details"]) == {
        "code", "external_subscription_id", "properties",
    }  # fmt: skip


def test_another_organizations_key_sees_no_subscription(
    catalog: Tenant, admin_client: Client
) -> None:
    _, stranger_key = create_organization(admin_client, f"stranger-{uuid.uuid4().hex[:8]}")
    response = post(catalog, {"code": "std", "external_subscription_id": SUBSCRIPTION},
                    api_key=stranger_key)  # fmt: skip
    assert response.status_code == 404
    assert response.json()["code"] == "subscription_not_found"

"""Credit notes of ended pay-in-advance subscriptions (billing-semantics.md, "Termination credit
note"): the days after the last billed day at the day price, coupon share off, then taxed, the
sub-total and taxes rounded once each; issued once by the invoicing run, and taken by the
customer's next invoice."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest
from clickhouse_connect.driver.client import Client
from dagster import DagsterInstance, materialize

from orchestration.invoices.assets import invoices, invoicing_run_config
from orchestration.invoices.billing import bill_day
from tests.conftest import Warehouse
from tests.invoicing.catalog import T0, Catalog, insert, warehouse_resource
from tests.invoicing.stripe_support import webhook_catcher
from tests.invoicing.test_webhooks import add_endpoint

APRIL = date(2024, 4, 1)  # a 30-day period
PLAN_CENTS = 58_000
TERMINATED = datetime(2024, 4, 22, 15, tzinfo=UTC)
CLOSING_DAY = date(2024, 4, 23)


@pytest.fixture
def catalog(client: Client) -> Catalog:
    catalog = Catalog(client)
    catalog.organization()
    catalog.tax("vat", "25")
    return catalog


def paid_in_advance(catalog: Catalog, external_id: str, **subscription: Any) -> UUID:
    """A customer whose subscription's April fee was invoiced on April 1st, then ended."""
    customer = catalog.customer(external_id)
    subscription_id = uuid4()
    insert(catalog.client, "subscriptions", {
        "organization_id": catalog.organization_id, "id": subscription_id,
        "external_id": f"sub-{external_id}", "customer_id": customer, "plan_id": uuid4(),
        "billing_time": "calendar", "status": "terminated", "subscription_at": T0,
        "started_at": T0, "terminated_at": TERMINATED, "created_at": T0, "updated_at": T0,
        "version": 1, **subscription,
    })  # fmt: skip
    start = datetime.combine(APRIL, datetime.min.time(), UTC)
    catalog.fee(
        customer, PLAN_CENTS, APRIL, tax_codes=("vat",), subscription_id=subscription_id,
        pay_in_advance=1, period_from=start,
        period_to=start + timedelta(days=30) - timedelta(milliseconds=1),
    )  # fmt: skip
    return customer


def notes(client: Client) -> list[dict[str, Any]]:
    return list(
        client.query(
            "SELECT customer_id, reason, sub_total_excluding_taxes_amount_cents AS sub_total, "
            "taxes_amount_cents AS taxes, total_amount_cents AS total, credit_amount_cents, "
            "refund_amount_cents FROM credit_notes FINAL ORDER BY total"
        ).named_results()
    )


def run_invoicing(warehouse: Warehouse, client: Client, day: date) -> None:
    result = materialize(
        [invoices],
        partition_key=day.isoformat(),
        resources={"warehouse": warehouse_resource(warehouse, client)},
        instance=DagsterInstance.ephemeral(),
        run_config=invoicing_run_config(f"{day.isoformat()}T06:00:00+00:00"),
    )
    assert result.success


def test_an_ended_subscription_gets_its_unused_days_back_once(
    warehouse: Warehouse, client: Client, catalog: Catalog
) -> None:
    terminated = paid_in_advance(catalog, "terminated")
    upgraded = paid_in_advance(catalog, "upgraded", next_subscription_id=uuid4())
    insert(client, "subscriptions", {  # the upgrade's new subscription, started that day
        "organization_id": catalog.organization_id,
        "id": client.query("SELECT next_subscription_id FROM subscriptions FINAL "
                           "WHERE next_subscription_id IS NOT NULL").result_rows[0][0],
        "external_id": "sub-upgraded", "customer_id": upgraded, "plan_id": uuid4(),
        "billing_time": "calendar", "status": "active", "subscription_at": TERMINATED,
        "started_at": TERMINATED, "created_at": T0, "updated_at": T0, "version": 1,
    })  # fmt: skip
    paid_in_advance(catalog, "skipped", on_termination_credit_note="skip")
    bill_day(client, APRIL, now=datetime(2024, 4, 1, 6, tzinfo=UTC))
    catalog.fee(terminated, 10_000, CLOSING_DAY, fee_type="charge", tax_codes=("vat",))

    with webhook_catcher() as catcher:
        add_endpoint(catalog, catcher.url, ["credit_note.created"])
        run_invoicing(warehouse, client, CLOSING_DAY)
    sent = [json.loads(body)["credit_note"] for body, _ in catcher.received]
    assert sorted(note["total_amount_cents"] for note in sent) == [19_334, 21_750]
    # 8 unused days (Apr 23-30) of 58,000 over 30: 15,466.67 + 25% tax, rounded apart.
    # The upgrade's old plan also gives back the upgrade day: 9 days, 17,400 + 4,350.
    assert notes(client) == [
        {"customer_id": terminated, "reason": "order_cancellation", "sub_total": 15_467,
         "taxes": 3_867, "total": 19_334, "credit_amount_cents": 19_334,
         "refund_amount_cents": 0},
        {"customer_id": upgraded, "reason": "order_change", "sub_total": 17_400,
         "taxes": 4_350, "total": 21_750, "credit_amount_cents": 21_750,
         "refund_amount_cents": 0},
    ]  # fmt: skip
    # The closing invoice (10,000 + 25% tax) takes 12,500 of the credit.
    closing = client.query(
        "SELECT credit_notes_amount_cents, total_amount_cents FROM invoices FINAL "
        "WHERE billing_date = %(day)s",
        parameters={"day": CLOSING_DAY},
    ).result_rows
    assert closing == [(12_500, 0)]

    run_invoicing(warehouse, client, CLOSING_DAY)
    assert len(notes(client)) == 2


def test_a_refund_goes_back_up_to_what_was_paid(
    warehouse: Warehouse, client: Client, catalog: Catalog
) -> None:
    paid_in_advance(catalog, "refunded", on_termination_credit_note="refund")
    bill_day(client, APRIL, now=datetime(2024, 4, 1, 6, tzinfo=UTC))
    client.command(
        "INSERT INTO invoices SELECT * REPLACE (10_000 AS total_paid_amount_cents, "
        "version + 1 AS version) FROM invoices FINAL"
    )
    run_invoicing(warehouse, client, CLOSING_DAY)
    [note] = notes(client)
    assert (note["total"], note["refund_amount_cents"], note["credit_amount_cents"]) == (
        19_334,
        10_000,
        9_334,
    )

"""The Dagster invoice assets, materialized in-process, pushing to localstripe.

localstripe lacks some Stripe routes; the test harness (orchestration/stripe/local_stripe.py)
adds them following Stripe's API reference (see its docstring). They exist in the harness only.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import stripe
from clickhouse_connect.driver.client import Client
from dagster import AssetKey, DagsterInstance, ExecuteInProcessResult, materialize

from orchestration.invoices.assets import invoice_payments, invoices, invoicing_run_config
from orchestration.invoices.payments import apply_payment_event
from orchestration.resources import PaymentProvidersResource, WarehouseResource
from orchestration.stripe.stripe_provider import StripeProvider
from tests.conftest import Warehouse
from tests.invoicing.catalog import Catalog, fresh_database, warehouse_resource
from tests.invoicing.stripe_support import (
    STRIPE_TEST_KEY,
    WebhookCatcher,
    fail_next_calls,
    localstripe,
    register_webhook,
    webhook_catcher,
)

DAY = date(2024, 3, 1)
WEBHOOK_SECRET = "whsec_assets"


@pytest.fixture
def stripe_url(tmp_path: Path) -> Iterator[str]:
    with localstripe(tmp_path) as url:
        yield url


@pytest.fixture
def catcher(stripe_url: str) -> Iterator[WebhookCatcher]:
    with webhook_catcher() as caught:
        register_webhook(stripe_url, caught.url, WEBHOOK_SECRET)
        yield caught


def resources(warehouse: Warehouse, database: str, stripe_url: str) -> dict[str, Any]:
    return {
        "warehouse": WarehouseResource(
            url=warehouse.url, user=warehouse.user, password=warehouse.password, database=database
        ),
        "payment_providers": PaymentProvidersResource(
            stripe_api_key=STRIPE_TEST_KEY,
            stripe_api_base=stripe_url,
            stripe_webhook_secret=WEBHOOK_SECRET,
            max_attempts=2,
        ),
    }


def run_day(
    warehouse: Warehouse, client: Client, stripe_url: str, instance: DagsterInstance
) -> ExecuteInProcessResult:
    return materialize(
        [invoices, invoice_payments],
        partition_key=DAY.isoformat(),
        resources=resources(warehouse, client.database or "", stripe_url),
        instance=instance,
        run_config=invoicing_run_config("2024-03-01T06:00:00+00:00"),
        raise_on_error=True,
    )


def stripe_invoices(stripe_url: str) -> list[Any]:
    client = stripe.StripeClient(STRIPE_TEST_KEY, base_addresses={"api": stripe_url})
    return list(client.v1.invoices.list().data)


def test_partition_is_invoiced_pushed_paid_and_idempotent(
    warehouse: Warehouse, stripe_url: str, catcher: WebhookCatcher
) -> None:
    client = fresh_database(warehouse)
    catalog = Catalog(client)
    catalog.organization()
    catalog.tax("vat", "20")
    acme = catalog.customer("acme", payment_provider="stripe")
    catalog.fee(acme, 10_000, DAY, tax_codes=("vat",))
    catalog.fee(acme, 2_345, DAY, fee_type="charge", tax_codes=("vat",))
    manual = catalog.customer("manual-co")
    catalog.fee(manual, 500, DAY)
    instance = DagsterInstance.ephemeral()

    result = run_day(warehouse, client, stripe_url, instance)
    assert result.success
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    rows = list(client.query(
        "SELECT customer_id, status, provider_sync_status, total_amount_cents, id "
        "FROM invoices FINAL ORDER BY total_amount_cents"
    ).named_results())  # fmt: skip
    assert [(r["status"], r["provider_sync_status"], r["total_amount_cents"]) for r in rows] == [
        ("finalized", "none", 500),
        ("finalized", "synced", 14_814),  # 12 345 + 20 % (2 469) once on the invoice
    ]
    (remote,) = stripe_invoices(stripe_url)
    assert remote.total == 14_814 and remote.status == "open"
    assert remote.metadata["meterhouse_invoice_id"] == str(rows[1]["id"])

    # Paid at Stripe: the signed webhook updates our payment status.
    StripeProvider(STRIPE_TEST_KEY, api_base=stripe_url).mark_paid_out_of_band(
        remote.id, rows[1]["id"]
    )
    body, signature = catcher.wait_for('"invoice.paid"')
    event = StripeProvider(
        STRIPE_TEST_KEY, api_base=stripe_url, webhook_secret=WEBHOOK_SECRET
    ).parse_webhook(body, signature)
    assert apply_payment_event(client, "stripe", event)
    paid = client.query(
        "SELECT payment_status, total_paid_amount_cents, status FROM invoices FINAL "
        "WHERE id = %(i)s",
        parameters={"i": rows[1]["id"]},
    ).result_rows
    assert paid == [("succeeded", 14_814, "finalized")]

    # Re-materializing the partition: no second invoice, number, or Stripe invoice.
    assert run_day(warehouse, client, stripe_url, instance).success
    assert int(client.command("SELECT count() FROM invoices FINAL")) == 2  # type: ignore[arg-type]
    assert len(stripe_invoices(stripe_url)) == 1
    assert (
        instance.get_latest_materialization_event(AssetKey(["invoicing", "invoices"])) is not None
    )


def test_provider_outage_leaves_a_visible_failed_state_then_recovers(
    warehouse: Warehouse, stripe_url: str
) -> None:
    client = fresh_database(warehouse)
    catalog = Catalog(client)
    catalog.organization()
    acme = catalog.customer("acme", payment_provider="stripe")
    catalog.fee(acme, 1_000, DAY)
    instance = DagsterInstance.ephemeral()
    fail_next_calls(stripe_url, 100)
    result = run_day(warehouse, client, stripe_url, instance)
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed
    state = client.query(
        "SELECT provider_sync_status, provider_error FROM invoices FINAL"
    ).result_rows
    assert state[0][0] == "failed" and "stripe" in (state[0][1] or "")
    fail_next_calls(stripe_url, 0)
    result = run_day(warehouse, client, stripe_url, instance)
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
    assert client.query("SELECT provider_sync_status FROM invoices FINAL").result_rows == [
        ("synced",)
    ]
    assert len(stripe_invoices(stripe_url)) == 1


def test_customer_of_an_unconfigured_provider_fails_the_check(warehouse: Warehouse) -> None:
    client = fresh_database(warehouse)
    catalog = Catalog(client)
    catalog.organization()
    catalog.fee(catalog.customer("acme", payment_provider="gocardless"), 1_000, DAY)
    result = materialize(
        [invoices, invoice_payments],
        partition_key=DAY.isoformat(),
        resources={
            "warehouse": warehouse_resource(warehouse, client),
            "payment_providers": PaymentProvidersResource(),
        },
        instance=DagsterInstance.ephemeral(),
        run_config=invoicing_run_config("2024-03-01T06:00:00+00:00"),
    )
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed
    assert check.metadata["unconfigured_provider"].value == 1

"""End to end: catalog through lago-python-client, events through the event API, rating with
``meterhouse rate run``, the invoice partition materialized by Dagster, pushed to localstripe,
paid, and the signed webhook updating the invoice through the billing API.

localstripe lacks some Stripe routes; the test harness (orchestration/stripe/local_stripe.py)
adds them following Stripe's API reference. They exist in the test harness only.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pytest
import stripe
from clickhouse_connect.driver.client import Client
from dagster import DagsterInstance, materialize
from lago_python_client.client import Client as LagoClient
from lago_python_client.models import BillableMetric, Customer, Event, Plan, Subscription, Tax

from meterhouse.orgs import create_organization
from orchestration.invoices.assets import invoice_payments, invoices, invoicing_run_config
from orchestration.resources import PaymentProvidersResource, WarehouseResource
from orchestration.stripe.provider import PaymentProvider, ProviderInvoice, PushResult
from orchestration.stripe.stripe_provider import StripeProvider
from tests.conftest import Rater, Warehouse
from tests.invoicing.stripe_support import STRIPE_TEST_KEY, localstripe, register_webhook
from tests.support.processes import ServiceProcess, free_port, meterhouse_command

WEBHOOK_SECRET = "whsec_end_to_end"
MARCH_BILLING_DAY = date(2023, 4, 1)
APRIL_BILLING_DAY = date(2023, 5, 1)


@dataclass
class Stack:
    warehouse: Warehouse
    client: Client
    lago: Any  # lago-python-client's mixins are not typed precisely enough for mypy
    stripe_url: str
    rater: Rater
    organization_id: uuid.UUID

    def rate(self, as_of: str) -> None:
        self.rater.run("--no-tests", "--as-of", as_of)

    def resources(self, provider: PaymentProvidersResource | None = None) -> dict[str, Any]:
        return {
            "warehouse": WarehouseResource(
                url=self.warehouse.url,
                user=self.warehouse.user,
                password=self.warehouse.password,
                database=self.warehouse.database,
            ),
            "payment_providers": provider
            or PaymentProvidersResource(
                stripe_api_key=STRIPE_TEST_KEY, stripe_api_base=self.stripe_url, max_attempts=2
            ),
        }

    def materialize(self, day: date, as_of: str, **kwargs: Any) -> Any:
        return materialize(
            [invoices, invoice_payments],
            partition_key=day.isoformat(),
            resources=self.resources(**kwargs),
            instance=DagsterInstance.ephemeral(),
            run_config=invoicing_run_config(as_of),
            raise_on_error=False,
        )

    def our_invoices(self) -> list[dict[str, Any]]:
        return list(
            self.client.query(
                "SELECT * FROM invoices FINAL WHERE organization_id = %(org)s "
                "ORDER BY billing_date",
                parameters={"org": self.organization_id},
            ).named_results()
        )

    def stripe_invoices(self) -> list[Any]:
        client = stripe.StripeClient(STRIPE_TEST_KEY, base_addresses={"api": self.stripe_url})
        return list(client.v1.invoices.list().data)


@pytest.fixture(scope="module")
def stack(
    warehouse: Warehouse,
    admin_client: Client,
    rater: Rater,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    logs = tmp_path_factory.mktemp("end_to_end")
    with localstripe(logs) as stripe_url:
        port = free_port()
        api = ServiceProcess(
            meterhouse_command("api", "serve", "--port", str(port)),
            f"http://127.0.0.1:{port}/health",
            env={
                **warehouse.env,
                "MH_STRIPE_API_KEY": STRIPE_TEST_KEY,
                "MH_STRIPE_API_BASE": stripe_url,
                "MH_STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            },
            log_path=logs / "api.log",
        )
        with api:
            api_url = f"http://127.0.0.1:{port}"
            register_webhook(stripe_url, f"{api_url}/webhooks/stripe", WEBHOOK_SECRET)
            organization, api_key = create_organization(admin_client, f"e2e-{uuid.uuid4().hex[:8]}")
            lago = LagoClient(api_key=api_key, api_url=api_url)
            yield Stack(
                warehouse,
                admin_client,
                lago,
                stripe_url,
                rater,
                organization.organization_id,
            )


def build_catalog(lago: Any) -> None:
    lago.taxes.create(
        Tax.parse_obj(
            {"name": "VAT", "code": "vat20", "rate": 20.0, "applied_to_organization": True}
        )
    )
    calls = lago.billable_metrics.create(
        BillableMetric.parse_obj(
            {"name": "API calls", "code": "calls", "aggregation_type": "sum_agg", "field_name": "n"}
        )
    )
    lago.plans.create(
        Plan.parse_obj(
            {
                "name": "Starter",
                "code": "starter",
                "interval": "monthly",
                "amount_cents": 1_000,
                "amount_currency": "EUR",
                "pay_in_advance": False,
                "charges": [
                    {
                        "billable_metric_id": calls.lago_id,
                        "charge_model": "standard",
                        "properties": {"amount": "0.5"},
                    }
                ],
            }
        )
    )
    lago.customers.create(
        Customer.parse_obj(
            {
                "external_id": "acme",
                "name": "Acme",
                "email": "billing@acme.test",
                "currency": "EUR",
                "billing_configuration": {"payment_provider": "stripe", "sync": True},
            }
        )
    )
    lago.subscriptions.create(
        Subscription.parse_obj(
            {
                "external_customer_id": "acme",
                "plan_code": "starter",
                "external_id": "acme-starter",
                "billing_time": "calendar",
                "subscription_at": "2023-03-01T00:00:00Z",
            }
        )
    )


def send_usage(lago: Any, day: str, values: list[int]) -> None:
    for n, value in enumerate(values):
        timestamp = int(datetime.fromisoformat(f"{day}T12:00:00+00:00").timestamp()) + n
        lago.events.create(
            Event.parse_obj(
                {
                    "transaction_id": f"{day}-{n}",
                    "external_subscription_id": "acme-starter",
                    "code": "calls",
                    "timestamp": timestamp,
                    "properties": {"n": value},
                }
            )
        )


class CrashAfterPush:
    """Stripe answers, then the process dies before recording the answer (as a kill -9 would)."""

    name = "stripe"

    def __init__(self, real: StripeProvider) -> None:
        self.real = real

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.real, attribute)

    def push_invoice(self, invoice: ProviderInvoice, provider_customer_id: str) -> PushResult:
        self.real.push_invoice(invoice, provider_customer_id)
        raise SystemExit("killed mid-run")


class CrashingProviders(PaymentProvidersResource):
    def providers(self) -> list[PaymentProvider]:
        real = StripeProvider(STRIPE_TEST_KEY, api_base=self.stripe_api_base)
        return [CrashAfterPush(real)]


def wait_for(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.25)


def test_catalog_events_rating_invoice_stripe_payment(stack: Stack) -> None:
    build_catalog(stack.lago)
    send_usage(stack.lago, "2023-03-10", [100, 250, 37])  # 387 calls at 0.50 EUR
    send_usage(stack.lago, "2023-04-20", [20])  # next period: not on the March invoice
    stack.rate("2023-04-01T12:00:00")
    result = stack.materialize(MARCH_BILLING_DAY, "2023-04-01T12:00:00+00:00")
    assert result.success
    (invoice,) = stack.our_invoices()
    assert invoice["status"] == "finalized" and invoice["currency"] == "EUR"
    assert invoice["fees_amount_cents"] == 1_000 + 387 * 50
    assert invoice["taxes_amount_cents"] == (1_000 + 387 * 50) // 5
    assert invoice["total_amount_cents"] == 24_420
    assert invoice["provider_sync_status"] == "synced"
    (remote,) = stack.stripe_invoices()
    assert remote.total == 24_420

    # Paid at Stripe: the signed webhook reaches the billing API, which records the payment.
    StripeProvider(STRIPE_TEST_KEY, api_base=stack.stripe_url).mark_paid_out_of_band(
        remote.id, invoice["id"]
    )
    lago_id = str(invoice["id"])
    wait_for(lambda: stack.lago.invoices.find(lago_id).payment_status == "succeeded")
    assert stack.lago.invoices.find(lago_id).total_due_amount_cents == 0

    # Re-materializing the partition duplicates nothing, here or at Stripe.
    assert stack.materialize(MARCH_BILLING_DAY, "2023-04-02T00:00:00+00:00").success
    assert len(stack.our_invoices()) == 1 and len(stack.stripe_invoices()) == 1


def test_run_killed_mid_push_then_retried(stack: Stack) -> None:
    stack.rate("2023-05-01T12:00:00")
    crashing = CrashingProviders(stripe_api_base=stack.stripe_url)
    killed = stack.materialize(APRIL_BILLING_DAY, "2023-05-01T12:00:00+00:00", provider=crashing)
    assert not killed.success
    assert len(stack.stripe_invoices()) == 2  # Stripe got it; we never recorded the answer
    assert stack.materialize(APRIL_BILLING_DAY, "2023-05-01T12:00:00+00:00").success
    april = [i for i in stack.our_invoices() if i["billing_date"] == APRIL_BILLING_DAY]
    assert len(april) == 1
    assert april[0]["provider_sync_status"] == "synced"
    assert april[0]["fees_amount_cents"] == 1_000 + 20 * 50
    assert len(stack.stripe_invoices()) == 2  # one per invoice: the retry reused the first

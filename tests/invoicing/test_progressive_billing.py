"""Progressive billing and pay-in-advance invoices as events arrive, end to end: catalog and
events through lago-python-client, the views built by ``meterhouse rate run``, the Dagster assets
materialized as their sensors request them, and the period-end invoice after the period closes.

The open period is the current one (the views rate it at the server's now), so events are sent
with timestamps of a minute ago.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from dagster import (
    DagsterInstance,
    RunRequest,
    SkipReason,
    build_sensor_context,
    materialize,
)
from lago_python_client.client import Client as LagoClient
from lago_python_client.models import (
    BillableMetric,
    Customer,
    Event,
    Plan,
    Subscription,
    Tax,
    Wallet,
)

from meterhouse.orgs import create_organization
from orchestration.invoices.assets import pay_in_advance_invoices, progressive_billing_invoices
from orchestration.invoices.billing import bill_day
from orchestration.invoices.jobs import pay_in_advance_events, usage_threshold_crossings
from orchestration.resources import WarehouseResource
from tests.conftest import Rater, Warehouse
from tests.support.processes import ServiceProcess, free_port, meterhouse_command

NOW = datetime.now(UTC)
MONTH_START = NOW.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
NEXT_MONTH_START = (MONTH_START + timedelta(days=32)).replace(day=1)


@dataclass
class Tenant:
    warehouse: Warehouse
    client: Client
    lago: Any  # lago-python-client's mixins are not typed precisely enough for mypy
    api_url: str
    api_key: str
    organization_id: uuid.UUID
    rater: Rater

    def rate(self, as_of: datetime) -> None:
        self.rater.run("--no-tests", "--as-of", as_of.isoformat()[:19])

    def resources(self) -> dict[str, Any]:
        return {
            "warehouse": WarehouseResource(
                url=self.warehouse.url,
                user=self.warehouse.user,
                password=self.warehouse.password,
                database=self.warehouse.database,
            )
        }

    def materialize(self, asset: Any, run_config: Mapping[str, Any] | None = None) -> None:
        result = materialize(
            [asset],
            resources=self.resources(),
            instance=DagsterInstance.ephemeral(),
            run_config=run_config or {},
        )
        assert result.success

    def send(
        self, code: str, transaction_id: str, customer: str = "acme", **properties: Any
    ) -> None:
        self.lago.events.create(
            Event.parse_obj(
                {
                    "transaction_id": transaction_id,
                    "external_subscription_id": f"{customer}-metered",
                    "code": code,
                    "timestamp": int((datetime.now(UTC) - timedelta(minutes=1)).timestamp()),
                    "properties": properties,
                }
            )
        )

    def invoices(
        self, invoice_type: str | None = None, customer: str = "acme"
    ) -> list[dict[str, Any]]:
        kind = "AND invoice_type = %(kind)s" if invoice_type else ""
        return list(
            self.client.query(
                f"SELECT * FROM invoices FINAL WHERE organization_id = %(org)s {kind} "
                "AND external_customer_id = %(customer)s ORDER BY created_at, id",
                parameters={
                    "org": self.organization_id,
                    "kind": invoice_type or "",
                    "customer": customer,
                },
            ).named_results()
        )

    def lines(self, invoice: dict[str, Any]) -> list[dict[str, Any]]:
        return list(
            self.client.query(
                "SELECT * FROM invoice_fees FINAL WHERE invoice_id = %(id)s "
                "AND fees_version = %(version)s ORDER BY fee_type, amount_cents",
                parameters={"id": invoice["id"], "version": invoice["fees_version"]},
            ).named_results()
        )

    def api_invoice(self, invoice_id: uuid.UUID) -> dict[str, Any]:
        answer = httpx.get(
            f"{self.api_url}/api/v1/invoices/{invoice_id}",
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()["invoice"]
        return body


@pytest.fixture(scope="module")
def tenant(
    warehouse: Warehouse,
    admin_client: Client,
    rater: Rater,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Tenant]:
    logs = tmp_path_factory.mktemp("progressive_billing")
    port = free_port()
    api = ServiceProcess(
        meterhouse_command("api", "serve", "--port", str(port)),
        f"http://127.0.0.1:{port}/health",
        env=warehouse.env,
        log_path=logs / "api.log",
    )
    with api:
        api_url = f"http://127.0.0.1:{port}"
        organization, api_key = create_organization(admin_client, f"pb-{uuid.uuid4().hex[:8]}")
        lago = LagoClient(api_key=api_key, api_url=api_url)
        build_catalog(lago)
        yield Tenant(
            warehouse,
            admin_client,
            lago,
            api_url,
            api_key,
            organization.organization_id,
            rater,
        )


def build_catalog(lago: Any) -> None:
    lago.taxes.create(
        Tax.parse_obj(
            {"name": "VAT", "code": "vat20", "rate": 20.0, "applied_to_organization": True}
        )
    )
    metrics = {
        code: lago.billable_metrics.create(BillableMetric.parse_obj(body)).lago_id
        for code, body in {
            "calls": {"name": "Calls", "code": "calls", "aggregation_type": "sum_agg",
                      "field_name": "n"},
            "signups": {"name": "Signups", "code": "signups", "aggregation_type": "count_agg"},
            "exports": {"name": "Exports", "code": "exports", "aggregation_type": "count_agg"},
        }.items()
    }  # fmt: skip
    lago.plans.create(
        Plan.parse_obj(
            {
                "name": "Metered",
                "code": "metered",
                "interval": "monthly",
                "amount_cents": 1_000,
                "amount_currency": "EUR",
                "pay_in_advance": False,
                "charges": [
                    {
                        "billable_metric_id": metrics["calls"],
                        "charge_model": "standard",
                        "properties": {"amount": "1"},
                    },
                    {
                        "billable_metric_id": metrics["signups"],
                        "charge_model": "standard",
                        "pay_in_advance": True,
                        "invoiceable": True,
                        "properties": {"amount": "2.5"},
                    },
                    {
                        "billable_metric_id": metrics["exports"],
                        "charge_model": "standard",
                        "pay_in_advance": True,
                        "invoiceable": False,
                        "properties": {"amount": "4"},
                    },
                ],
                "usage_thresholds": [
                    {"amount_cents": 1_000, "threshold_display_name": "First 10 EUR"},
                    {"amount_cents": 1_500, "recurring": True},
                ],
            }
        )  # fmt: skip
    )
    lago.customers.create(
        Customer.parse_obj({"external_id": "acme", "name": "Acme", "currency": "EUR"})
    )
    lago.customers.create(
        Customer.parse_obj({"external_id": "bolt", "name": "Bolt", "currency": "EUR"})
    )
    for customer, overrides in (
        ("acme", None),
        ("bolt", {"usage_thresholds": [{"amount_cents": 500}]}),  # its own child plan
    ):
        lago.subscriptions.create(
            Subscription.parse_obj(
                {
                    "external_customer_id": customer,
                    "plan_code": "metered",
                    "external_id": f"{customer}-metered",
                    "billing_time": "calendar",
                    "subscription_at": MONTH_START.isoformat(),
                    "plan_overrides": overrides,
                }
            )
        )


def test_thresholds_crossed_issue_progressive_invoices_once(tenant: Tenant) -> None:
    tenant.send("calls", "c1", n=5)
    tenant.send("calls", "c2", n=7)  # 12 calls at 1.00 EUR: lifetime usage 1200 cents
    tenant.send("calls", "b1", customer="bolt", n=6)  # 600 cents: past its override's 500
    tenant.rate(datetime.now(UTC))  # the views exist once the project has run
    tenant.materialize(progressive_billing_invoices)
    tenant.materialize(progressive_billing_invoices)  # a second run finds nothing new
    (first,) = tenant.invoices("progressive_billing")
    # billed 0 < 1000 <= 1200: the fixed threshold; recurring steps start at 1000 + 1500.
    assert first["status"] == "finalized"
    assert first["fees_amount_cents"] == 1_200
    assert first["taxes_amount_cents"] == 240  # 20% of 1200
    assert first["total_amount_cents"] == 1_440
    body = tenant.api_invoice(first["id"])
    assert body["invoice_type"] == "progressive_billing"
    (applied,) = body["applied_usage_thresholds"]
    assert applied["usage_threshold"]["threshold_display_name"] == "First 10 EUR"
    assert applied["lifetime_usage_amount_cents"] == 1_200
    (bolt,) = tenant.invoices("progressive_billing", customer="bolt")
    assert (bolt["fees_amount_cents"], bolt["total_amount_cents"]) == (600, 720)
    (applied,) = tenant.api_invoice(bolt["id"])["applied_usage_thresholds"]
    assert applied["usage_threshold"]["amount_cents"] == 500

    cursor = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    tenant.send("calls", "c3", n=20)  # lifetime usage 3200 cents
    context = build_sensor_context(cursor=cursor, resources=tenant.resources())
    (request,) = list(usage_threshold_crossings(context))  # type: ignore[arg-type]
    assert isinstance(request, RunRequest)
    # A wallet's ongoing usage: the open period's 3200 cents with 20% VAT, less the 1440 the
    # first progressive invoice billed of it.
    wallet = tenant.lago.wallets.create(
        Wallet(external_customer_id="acme", rate_amount="1", currency="EUR", granted_credits="100")
    )
    assert (wallet.ongoing_usage_balance_cents, wallet.ongoing_balance_cents) == (2_400, 7_600)
    tenant.lago.wallets.destroy(wallet.lago_id)  # the invoices below are priced without credits
    tenant.materialize(progressive_billing_invoices)
    tenant.materialize(progressive_billing_invoices)
    first_again, second = tenant.invoices("progressive_billing")
    assert first_again["id"] == first["id"]
    # Recurring: (billed 1200 - 1000) mod 1500 = 200, + 2000 new = 2200 >= 1500: the step at
    # 1000 + 1500 = 2500 fires; the invoice bills the 2000 cents not billed yet.
    assert second["fees_amount_cents"] == 2_000
    assert second["taxes_amount_cents"] == 400
    assert second["total_amount_cents"] == 2_400
    (line,) = tenant.lines(second)
    assert line["billable_metric_code"] == "calls" and line["amount_cents"] == 2_000
    (applied,) = tenant.api_invoice(second["id"])["applied_usage_thresholds"]
    assert applied["usage_threshold"]["recurring"] is True
    assert applied["lifetime_usage_amount_cents"] == 3_200


def test_pay_in_advance_event_invoiced_by_its_sensor(tenant: Tenant) -> None:
    cursor = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    tenant.send("signups", "s1")
    tenant.send("exports", "x1")  # not invoiceable: a fee, no invoice
    context = build_sensor_context(cursor=cursor, resources=tenant.resources())
    (request,) = list(pay_in_advance_events(context))  # type: ignore[arg-type]
    assert isinstance(request, RunRequest)
    tenant.materialize(pay_in_advance_invoices, request.run_config)
    tenant.materialize(pay_in_advance_invoices, request.run_config)  # nothing issued twice
    (invoice,) = tenant.invoices("subscription")
    assert invoice["grouping_key"] == "event:s1" and invoice["status"] == "finalized"
    assert invoice["fees_amount_cents"] == 250  # one signup at 2.50 EUR
    assert invoice["total_amount_cents"] == 300  # + 20% VAT
    # Nothing new since: the next evaluation skips.
    later = build_sensor_context(cursor=context.cursor, resources=tenant.resources())
    (skipped,) = list(pay_in_advance_events(later))  # type: ignore[arg-type]
    assert isinstance(skipped, SkipReason)


def test_period_end_invoice_credits_progressive_billing(tenant: Tenant) -> None:
    as_of = NEXT_MONTH_START + timedelta(hours=1)
    tenant.rate(as_of)
    # The hourly run of today and of the period's billing day (a partition from tomorrow on).
    for day in (NOW.date(), NEXT_MONTH_START.date()):
        bill_day(tenant.client, day, now=as_of)
    # The signup fee rated by fct_fees has the id the sensor's run invoiced: nothing new today.
    assert len(tenant.invoices()) == 4
    (period_end,) = [i for i in tenant.invoices() if i["billing_date"] == NEXT_MONTH_START.date()]
    # Subscription 1000 + calls 3200 (32 calls at 1.00); 1200 + 2000 billed progressively.
    assert period_end["fees_amount_cents"] == 4_200
    assert period_end["progressive_billing_credit_amount_cents"] == 3_200
    assert period_end["sub_total_excluding_taxes_amount_cents"] == 1_000
    assert period_end["taxes_amount_cents"] == 200
    assert period_end["total_amount_cents"] == 1_200
    calls = [line for line in tenant.lines(period_end) if line["billable_metric_code"] == "calls"]
    assert [line["progressive_billing_credit_amount_cents"] for line in calls] == [3_200]
    assert tenant.api_invoice(period_end["id"])["progressive_billing_credit_amount_cents"] == 3_200

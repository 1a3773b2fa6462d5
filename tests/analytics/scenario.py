"""The revenue scenario the analytics tests check by hand: 3 customers over Jan-Apr 2024.

- alice: basic (100.00/month) from Jan 1, upgraded to pro (300.00/month) on Feb 15.
- bob: basic from Jan 1, terminated Feb 10 (churn), subscribes again on Mar 5 (reactivation).
- carol: pro from Feb 1 with usage: 100 api calls in February (60 with region eu, 40 us; every
  fourth, 25, from client cli), 40 in March, at 0.50 each. The metric declares region as a
  filter (values eu, us), not client.
Invoices (all USD, net 14 days unless said): alice's February invoice paid on time with a 20.00
refund; bob's February invoice paid late (Mar 20); carol's March invoice and alice's March
invoice unpaid; carol's April invoice not yet due; a draft for bob that must count nowhere.
Rating instant: 2024-04-15T00:00:00Z.

The catalog is written straight into the catalog tables as the billing API stores them (its
subscriptions endpoint does not exist yet), and the invoice records straight into the invoicing
tables as the invoicing assets write them, with clickhouse-connect.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from tests.rating.catalog import Catalog, utc

RATING_AS_OF = "2024-04-15T00:00:00"


@dataclass
class RevenueScenario:
    organization_id: uuid.UUID
    customers: dict[str, uuid.UUID]
    invoices: dict[str, uuid.UUID] = field(default_factory=dict)


def _invoice(
    client: Client,
    organization_id: uuid.UUID,
    customer: tuple[str, uuid.UUID],
    *,
    issued: date,
    due: date,
    total_cents: int,
    lines: list[dict[str, Any]],
    payment_status: str = "pending",
    status: str = "finalized",
    paid_cents: int = 0,
) -> uuid.UUID:
    external_id, customer_id = customer
    invoice_id = uuid.uuid4()
    now = datetime.combine(issued, datetime.min.time(), UTC)
    version = int(now.timestamp() * 1_000_000) + (2 if status == "finalized" else 1) * 10**17
    client.insert(
        "invoices",
        [[organization_id, invoice_id, customer_id, external_id, "subscription", status,
          payment_status, f"INV-{external_id}-{issued:%Y%m}", issued, issued, due,
          (due - issued).days, "USD", total_cents, total_cents, total_cents, total_cents,
          paid_cents, now, now if status == "finalized" else None, now, version, 1]],
        column_names=[
            "organization_id", "id", "customer_id", "external_customer_id", "invoice_type",
            "status", "payment_status", "number", "billing_date", "issuing_date",
            "payment_due_date", "net_payment_term", "currency", "fees_amount_cents",
            "sub_total_excluding_taxes_amount_cents", "sub_total_including_taxes_amount_cents",
            "total_amount_cents", "total_paid_amount_cents", "created_at", "finalized_at",
            "updated_at", "version", "fees_version",
        ],
    )  # fmt: skip
    client.insert(
        "invoice_fees",
        [[organization_id, invoice_id, 1, uuid.uuid4(), line["fee_type"], customer_id,
          line.get("plan_id"), line.get("metric_code"), line["name"], utc("2024-01-01"),
          utc("2024-01-31"), "USD", line.get("units", 1), line["amount_cents"], now]
         for line in lines],
        column_names=[
            "organization_id", "invoice_id", "fees_version", "id", "fee_type", "customer_id",
            "plan_id", "billable_metric_code", "invoice_display_name", "period_from",
            "period_to", "currency", "units", "amount_cents", "created_at",
        ],
    )  # fmt: skip
    return invoice_id


def _payment(
    client: Client, organization_id: uuid.UUID, invoice_id: uuid.UUID, cents: int, on: str
) -> None:
    client.insert(
        "payments",
        [[organization_id, uuid.uuid4(), invoice_id, "manual", f"pay_{invoice_id.hex[:8]}",
          cents, "USD", "succeeded", utc(on), utc(on)]],
        column_names=["organization_id", "id", "invoice_id", "provider", "provider_payment_id",
                      "amount_cents", "currency", "status", "created_at", "updated_at"],
    )  # fmt: skip


def _refund(
    client: Client, organization_id: uuid.UUID, invoice: tuple[uuid.UUID, uuid.UUID], cents: int
) -> None:
    invoice_id, customer_id = invoice
    client.insert(
        "credit_notes",
        [[organization_id, uuid.uuid4(), invoice_id, customer_id, 1, "CN-1", "other",
          "available", "succeeded", "USD", 0, cents, cents, cents, date(2024, 2, 20),
          utc("2024-02-20"), utc("2024-02-20"), 1]],
        column_names=[
            "organization_id", "id", "invoice_id", "customer_id", "sequential_id", "number",
            "reason", "credit_status", "refund_status", "currency", "credit_amount_cents",
            "refund_amount_cents", "sub_total_excluding_taxes_amount_cents", "total_amount_cents",
            "issuing_date", "created_at", "updated_at", "version",
        ],
    )  # fmt: skip


def build_revenue_scenario(
    client: Client, organization_id: uuid.UUID | None = None
) -> RevenueScenario:
    catalog = Catalog(client, organization_id) if organization_id else Catalog(client)
    calls = catalog.metric("api_calls", "count_agg", filters={"region": ["eu", "us"]})
    basic = catalog.plan("basic", amount_cents=10_000)
    pro = catalog.plan("pro", amount_cents=30_000)
    catalog.charge(pro, calls, "standard", {"amount": "0.5"})
    alice = catalog.customer("alice")
    bob = catalog.customer("bob")
    carol = catalog.customer("carol")

    alice_pro = uuid.uuid4()
    alice_basic = catalog.subscription(
        "sub_alice", alice, basic, "2024-01-01", terminated_at="2024-02-15T09:00:00",
        next_subscription_id=alice_pro,
    )  # fmt: skip
    catalog.subscription(
        "sub_alice", alice, pro, "2024-02-15T09:00:00", previous_subscription_id=alice_basic,
        subscription_id=alice_pro,
    )  # fmt: skip
    catalog.subscription("sub_bob", bob, basic, "2024-01-01", terminated_at="2024-02-10T12:00:00")
    catalog.subscription("sub_bob_2", bob, basic, "2024-03-05")
    catalog.subscription("sub_carol", carol, pro, "2024-02-01")
    catalog.events(
        "sub_carol", "api_calls",
        [
            {
                "timestamp": f"2024-02-{1 + n % 28:02d}T10:00:00",
                "properties": {
                    "region": "eu" if n < 60 else "us",
                    "client": "cli" if n % 4 == 0 else "web",
                },
            }
            for n in range(100)
        ]
        + [{"timestamp": f"2024-03-{1 + n % 30:02d}T10:00:00"} for n in range(40)],
    )  # fmt: skip

    org = catalog.organization_id
    scenario = RevenueScenario(org, {"alice": alice, "bob": bob, "carol": carol})
    subscription_line = {"fee_type": "subscription", "name": "Subscription"}
    scenario.invoices["alice_feb"] = _invoice(
        client, org, ("alice", alice), issued=date(2024, 2, 1), due=date(2024, 2, 15),
        total_cents=10_000, payment_status="succeeded", paid_cents=10_000,
        lines=[{**subscription_line, "plan_id": basic, "amount_cents": 10_000}],
    )  # fmt: skip
    _payment(client, org, scenario.invoices["alice_feb"], 10_000, "2024-02-10")
    _refund(client, org, (scenario.invoices["alice_feb"], alice), 2_000)
    scenario.invoices["bob_feb"] = _invoice(
        client, org, ("bob", bob), issued=date(2024, 2, 1), due=date(2024, 2, 15),
        total_cents=10_000, payment_status="succeeded", paid_cents=10_000,
        lines=[{**subscription_line, "plan_id": basic, "amount_cents": 10_000}],
    )  # fmt: skip
    _payment(client, org, scenario.invoices["bob_feb"], 10_000, "2024-03-20")
    scenario.invoices["carol_mar"] = _invoice(
        client, org, ("carol", carol), issued=date(2024, 3, 1), due=date(2024, 3, 15),
        total_cents=35_000,
        lines=[{**subscription_line, "plan_id": pro, "amount_cents": 30_000},
               {"fee_type": "charge", "name": "API calls", "plan_id": pro,
                "metric_code": "api_calls", "units": 100, "amount_cents": 5_000}],
    )  # fmt: skip
    scenario.invoices["alice_mar"] = _invoice(
        client, org, ("alice", alice), issued=date(2024, 3, 1), due=date(2024, 3, 31),
        total_cents=30_000, lines=[{**subscription_line, "plan_id": pro, "amount_cents": 30_000}],
    )  # fmt: skip
    scenario.invoices["carol_apr"] = _invoice(
        client, org, ("carol", carol), issued=date(2024, 4, 1), due=date(2024, 4, 30),
        total_cents=32_000,
        lines=[{**subscription_line, "plan_id": pro, "amount_cents": 30_000},
               {"fee_type": "charge", "name": "API calls", "plan_id": pro,
                "metric_code": "api_calls", "units": 40, "amount_cents": 2_000}],
    )  # fmt: skip
    scenario.invoices["bob_draft"] = _invoice(
        client, org, ("bob", bob), issued=date(2024, 4, 1), due=date(2024, 4, 15),
        total_cents=99_999, status="draft",
        lines=[{**subscription_line, "plan_id": basic, "amount_cents": 99_999}],
    )  # fmt: skip
    return scenario

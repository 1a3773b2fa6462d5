"""Test data for invoicing: a database of its own, the fct_fees contract table, catalog rows.

The rating mart is the rating engineer's; these tests create a table with the contract's exact
schema (see the invoicing brief) in a separate database, so invoicing is tested on its own and
never touches the mart other tests build.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from clickhouse_connect.driver.client import Client

from orchestration.resources import WarehouseResource
from tests.conftest import Warehouse
from warehouse.migrate import migrate

FCT_FEES_CONTRACT = """
CREATE TABLE IF NOT EXISTS fct_fees (
    organization_id UUID,
    fee_id UUID,
    fee_type LowCardinality(String),
    is_true_up UInt8,
    customer_id UUID,
    external_customer_id String,
    subscription_id UUID,
    external_subscription_id String,
    plan_id UUID,
    charge_id Nullable(UUID),
    charge_filter_id Nullable(UUID),
    billable_metric_id Nullable(UUID),
    billable_metric_code Nullable(String),
    grouped_by Map(String, String),
    invoice_display_name String,
    pay_in_advance UInt8,
    invoiceable UInt8,
    source_transaction_id Nullable(String),
    period_from DateTime64(3, 'UTC'),
    period_to DateTime64(3, 'UTC'),
    billing_date Date,
    timezone String,
    currency LowCardinality(String),
    units Decimal(38, 12),
    events_count UInt64,
    precise_unit_amount Decimal(38, 12),
    amount Decimal(38, 12),
    amount_cents Int64,
    tax_codes Array(String)
) ENGINE = ReplacingMergeTree ORDER BY (organization_id, subscription_id, billing_date, fee_id)
"""

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def fresh_database(warehouse: Warehouse) -> Client:
    """A new migrated database with the fct_fees contract table; a client bound to it."""
    name = f"mh_invoicing_{secrets.token_hex(4)}"
    migrate(warehouse.client(database=""), name)
    client = warehouse.client(database=name)
    client.command(FCT_FEES_CONTRACT)
    return client


def warehouse_resource(warehouse: Warehouse, client: Client) -> WarehouseResource:
    """The Dagster assets' warehouse resource, on the database ``client`` is bound to."""
    return WarehouseResource(
        url=warehouse.url,
        user=warehouse.user,
        password=warehouse.password,
        database=client.database or "",
    )


def _version() -> int:
    return time.time_ns() // 1000


def insert(client: Client, table: str, row: dict[str, Any]) -> None:
    client.insert(table, [list(row.values())], column_names=list(row))


@dataclass
class Catalog:
    """Writes catalog rows the way the billing API stores them (versioned, FINAL-read)."""

    client: Client
    organization_id: UUID = field(default_factory=uuid4)

    def organization(self, **overrides: Any) -> None:
        insert(self.client, "organizations", {
            "organization_id": self.organization_id, "name": "Acme Corp",
            "default_currency": "EUR", "timezone": "UTC", "invoice_grace_period": 0,
            "net_payment_term": 30, "document_numbering": "per_organization",
            "document_number_prefix": "ACM", "tax_codes": [], "created_at": T0,
            "updated_at": T0, "version": _version(), **overrides,
        })  # fmt: skip

    def customer(self, external_id: str, **overrides: Any) -> UUID:
        customer_id = overrides.pop("id", uuid4())
        insert(self.client, "customers", {
            "organization_id": self.organization_id, "id": customer_id, "external_id": external_id,
            "name": external_id.title(), "email": f"{external_id}@example.test", "currency": "EUR",
            "created_at": T0, "updated_at": T0, "version": _version(), **overrides,
        })  # fmt: skip
        return customer_id

    def tax(self, code: str, rate: str) -> None:
        insert(self.client, "taxes", {
            "organization_id": self.organization_id, "id": uuid4(), "code": code, "name": code,
            "rate": Decimal(rate), "created_at": T0, "updated_at": T0, "version": _version(),
        })  # fmt: skip

    def coupon(self, customer_id: UUID, applied_at: datetime = T0, **coupon: Any) -> UUID:
        coupon_id = uuid4()
        frequency = coupon.get("frequency", "forever")
        insert(self.client, "coupons", {
            "organization_id": self.organization_id, "id": coupon_id,
            "code": f"c{coupon_id.hex[:6]}", "name": "coupon", "coupon_type": "fixed_amount",
            "amount_currency": "EUR",
            "frequency": frequency, "expiration": "no_expiration", "created_at": T0,
            "updated_at": T0, "version": _version(), **coupon,
        })  # fmt: skip
        applied_id = uuid4()
        insert(self.client, "applied_coupons", {
            "organization_id": self.organization_id, "id": applied_id, "coupon_id": coupon_id,
            "customer_id": customer_id, "frequency": frequency,
            "frequency_duration": coupon.get("frequency_duration"), "created_at": applied_at,
            "updated_at": applied_at, "version": _version(),
        })  # fmt: skip
        return applied_id

    def wallet(
        self,
        customer_id: UUID,
        credits: str,
        rate: str = "1",
        priority: int = 50,
        expiration_at: datetime | None = None,
    ) -> UUID:
        wallet_id = uuid4()
        insert(self.client, "wallets", {
            "organization_id": self.organization_id, "id": wallet_id, "customer_id": customer_id,
            "currency": "EUR", "rate_amount": Decimal(rate), "priority": priority,
            "expiration_at": expiration_at, "created_at": T0, "updated_at": T0,
            "version": _version(),
        })  # fmt: skip
        insert(self.client, "wallet_transactions", {
            "organization_id": self.organization_id, "id": uuid4(), "wallet_id": wallet_id,
            "customer_id": customer_id, "transaction_type": "inbound",
            "transaction_status": "granted", "status": "settled",
            "credit_amount": Decimal(credits), "amount": Decimal(credits) * Decimal(rate),
            "created_at": T0, "updated_at": T0, "version": _version(),
        })  # fmt: skip
        return wallet_id

    def fee(
        self,
        customer_id: UUID,
        amount_cents: int,
        billing_date: date,
        *,
        fee_type: str = "subscription",
        tax_codes: tuple[str, ...] = (),
        **overrides: Any,
    ) -> UUID:
        fee_id = overrides.pop("fee_id", uuid4())
        period_to = datetime.combine(billing_date, datetime.min.time(), UTC)
        insert(self.client, "fct_fees", {
            "organization_id": self.organization_id, "fee_id": fee_id, "fee_type": fee_type,
            "is_true_up": 0, "customer_id": customer_id, "external_customer_id": str(customer_id),
            "subscription_id": overrides.pop("subscription_id", customer_id),
            "external_subscription_id": f"sub-{customer_id.hex[:8]}",
            "plan_id": overrides.pop("plan_id", customer_id), "charge_id": None,
            "charge_filter_id": None, "billable_metric_id": None, "billable_metric_code": None,
            "grouped_by": {}, "invoice_display_name": fee_type.title(), "pay_in_advance": 0,
            "invoiceable": 1, "source_transaction_id": None,
            "period_from": period_to - timedelta(days=31),
            "period_to": period_to - timedelta(milliseconds=1), "billing_date": billing_date,
            "timezone": "UTC", "currency": "EUR", "units": Decimal(1), "events_count": 0,
            "precise_unit_amount": Decimal(amount_cents) / 100,
            "amount": Decimal(amount_cents) / 100, "amount_cents": amount_cents,
            "tax_codes": list(tax_codes), **overrides,
        })  # fmt: skip
        return fee_id

"""One-off invoices for add-ons: same computation, numbering and records as subscription
invoices, finalized at once. Coupons, credit notes and wallets apply to subscription invoices
only, as in Lago."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from clickhouse_connect.driver.client import Client

from orchestration.invoices.billing import build_invoices, write_invoices
from orchestration.invoices.context import DayReader, Fee
from orchestration.invoices.money import round_cents
from orchestration.invoices.records import InvoiceRecord


@dataclass(frozen=True)
class AddOnLine:
    add_on_id: uuid.UUID
    name: str
    units: Decimal
    unit_amount_cents: Decimal
    tax_codes: tuple[str, ...]


def create_one_off_invoice(
    client: Client,
    organization_id: uuid.UUID,
    customer_id: uuid.UUID,
    external_customer_id: str,
    currency: str,
    lines: list[AddOnLine],
    *,
    now: datetime | None = None,
) -> InvoiceRecord:
    now = now or datetime.now(UTC)
    request_id = uuid.uuid4()
    fees = [
        customer_fee(
            organization_id,
            customer_id,
            external_customer_id,
            "add_on",
            line.name,
            currency,
            now,
            units=line.units,
            unit_amount=line.unit_amount_cents / 100,
            amount_cents=round_cents(line.units * line.unit_amount_cents),
            tax_codes=list(line.tax_codes),
            add_on_id=line.add_on_id,
        )  # fmt: skip
        for line in lines
    ]
    return issue_at_once(client, fees, f"one_off:{request_id}", "one_off", now)


def customer_fee(
    organization_id: uuid.UUID,
    customer_id: uuid.UUID,
    external_customer_id: str,
    fee_type: str,
    name: str,
    currency: str,
    now: datetime,
    *,
    units: Decimal,
    unit_amount: Decimal,
    amount_cents: int,
    tax_codes: list[str],
    add_on_id: uuid.UUID | None = None,
) -> Fee:
    """A fee of no subscription (an add-on, purchased credits), dated now."""
    return Fee(
        organization_id=organization_id,
        fee_id=uuid.uuid4(),
        fee_type=fee_type,
        is_true_up=0,
        customer_id=customer_id,
        external_customer_id=external_customer_id,
        subscription_id=None,
        external_subscription_id="",
        plan_id=None,
        charge_id=None,
        charge_filter_id=None,
        billable_metric_id=None,
        billable_metric_code=None,
        grouped_by={},
        invoice_display_name=name,
        pay_in_advance=0,
        source_transaction_id=None,
        period_from=now,
        period_to=now,
        billing_date=now.date(),
        timezone="UTC",
        currency=currency,
        units=units,
        events_count=0,
        precise_unit_amount=unit_amount,
        amount=units * unit_amount,
        amount_cents=amount_cents,
        tax_codes=tax_codes,
        add_on_id=add_on_id,
    )


def issue_at_once(
    client: Client, fees: list[Fee], grouping: str, invoice_type: str, now: datetime
) -> InvoiceRecord:
    """One customer's fees as one invoice, finalized now, without coupons, credit notes or
    wallet credits."""
    organization_id, customer_id = fees[0].organization_id, fees[0].customer_id
    customers_sql = (
        f"SELECT toUUID('{organization_id}') AS organization_id, "
        f"toUUID('{customer_id}') AS customer_id"
    )
    reader = DayReader(client, customers_sql=customers_sql)
    context = reader.context(now.date())
    context.coupons.clear()
    context.credit_notes.clear()
    context.wallets.clear()
    (record,) = build_invoices(
        fees, context, grouping=lambda _: grouping, invoice_type=invoice_type
    )
    (finalized,) = write_invoices(client, now, [record], [record], context)
    return finalized

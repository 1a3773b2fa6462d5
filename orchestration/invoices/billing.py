"""One billing day: group the day's fees into invoices, compute them, write and finalize them.

Order of writes, chosen so a crash anywhere leaves nothing a retry does not complete:
1. draft invoices with their frozen fees and taxes (same ids and content on a retry);
2. for invoices whose grace period is over: ledger rows (coupons, wallets, credit notes), which
   only count once step 4 lands, then numbers (an invoice keeps the first number it got);
3. nothing else; 4. the finalized invoice rows, which make everything above final.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from uuid import UUID

from clickhouse_connect.driver.client import Client

from orchestration.invoices.compute import FeeInput, InvoiceComputation, compute_invoice
from orchestration.invoices.context import (
    CustomerBilling,
    CustomerKey,
    DayContext,
    DayReader,
    Fee,
    usage_key,
)
from orchestration.invoices.ids import content_version, record_id
from orchestration.invoices.numbering import assign_numbers
from orchestration.invoices.records import InvoiceRecord
from orchestration.invoices.writer import InvoiceWriter


@dataclass
class BillingDayResult:
    day: date
    fees: int = 0
    drafts: int = 0
    finalized: int = 0
    invoice_ids: list[UUID] = field(default_factory=list)


class MissingTax(ValueError):
    """A fee names a tax code the organization does not have: refuse to under-tax."""


def bill_day(
    client: Client,
    day: date,
    *,
    now: datetime,
    fees_table: str = "fct_fees",
    finalize_due: bool = True,
    finalize_ids: frozenset[UUID] = frozenset(),
) -> BillingDayResult:
    """Invoice one billing day. ``finalize_due=False`` only refreshes drafts (API refresh);
    ``finalize_ids`` finalizes those drafts now, grace period or not (API finalize)."""
    reader = DayReader(client, fees_table)
    if not reader.has_fees(day):
        return BillingDayResult(day=day)
    # The context first, then the fees: a run that finalizes this day meanwhile either holds
    # fees we no longer read, or finished after both reads, and then we compute what it did.
    context = reader.context(day)
    fees = reader.fees(day)
    result = BillingDayResult(day=day, fees=len(fees))
    if not fees:
        return result
    return bill_fees(client, result, fees, context, now, finalize_due, finalize_ids)


def bill_fees(
    client: Client,
    result: BillingDayResult,
    fees: list[Fee],
    context: DayContext,
    now: datetime,
    finalize_due: bool = True,
    finalize_ids: frozenset[UUID] = frozenset(),
) -> BillingDayResult:
    """Invoice fees of one billing day read with their context; drafts until the grace period
    ends."""
    records = build_invoices(fees, context)
    finalizable = [
        r
        for r in records
        if (finalize_due and r.grace_period_ends_on <= now.date()) or r.id in finalize_ids
    ]
    numbered = write_invoices(client, now, records, finalizable, context)
    result.drafts = len(records) - len(finalizable)
    result.finalized = len(numbered)
    result.invoice_ids = [record.id for record in records]
    return result


def write_invoices(
    client: Client,
    now: datetime,
    records: list[InvoiceRecord],
    finalizable: list[InvoiceRecord],
    context: DayContext,
) -> list[InvoiceRecord]:
    """Drafts, then ledgers and numbers, then the finalized rows; the numbered invoices."""
    writer = InvoiceWriter(client, now)
    writer.write_drafts(records)
    # A concurrent run (or an API finalize) may have issued some meanwhile: never issue twice.
    issued = _finalized_ids(client, {record.billing_date for record in finalizable})
    finalizable = [record for record in finalizable if record.id not in issued]
    numbered = assign_numbers(finalizable, context)
    writer.write_ledgers(numbered)
    writer.write_numbers(numbered)
    writer.write_finalized(numbered)
    return numbered


def _finalized_ids(client: Client, billing_dates: set[date]) -> set[UUID]:
    if not billing_dates:
        return set()
    rows = client.query(
        "SELECT id FROM invoices FINAL WHERE status != 'draft' AND billing_date IN %(days)s",
        parameters={"days": sorted(billing_dates)},
    ).result_rows
    return {row[0] for row in rows}


def invoice_grouping(fee: Fee) -> str:
    """Lago groups a customer's fees billed the same day; a pay-in-advance event bills alone."""
    if fee.pay_in_advance and fee.fee_type == "charge" and fee.source_transaction_id:
        return f"event:{fee.source_transaction_id}"
    return ""


def build_invoices(
    fees: list[Fee],
    context: DayContext,
    grouping: Callable[[Fee], str] = invoice_grouping,
    invoice_type: str = "subscription",
) -> list[InvoiceRecord]:
    groups: dict[tuple[UUID, UUID, str, str], list[Fee]] = defaultdict(list)
    for fee in fees:
        key = (fee.organization_id, fee.customer_id, fee.currency, grouping(fee))
        groups[key].append(fee)
    records = []
    for (organization_id, customer_id, currency, group_key), group in sorted(
        groups.items(), key=lambda item: tuple(str(part) for part in item[0])
    ):
        customer = context.customers.get((organization_id, customer_id))
        if customer is None:
            continue  # a fee of a deleted customer: nothing to address an invoice to
        invoice_id = _invoice_id(group[0], currency, group_key, context)
        computation = compute_invoice(
            currency,
            [_fee_input(fee, context) for fee in group],
            coupons=[
                s.applied
                for s in context.coupons.get((organization_id, customer_id), [])
                if s.currency in (None, currency) or s.applied.coupon_type == "percentage"
            ],
            credit_notes=[
                s.note
                for s in context.credit_notes.get((organization_id, customer_id), [])
                if s.currency == currency
            ],
            wallets=[
                s.wallet
                for s in context.wallets.get((organization_id, customer_id), [])
                if s.currency == currency
            ],
        )
        _carry_balances((organization_id, customer_id), computation, context)
        records.append(_record(invoice_id, customer, group, computation, group_key, invoice_type))
    return records


def _invoice_id(first: Fee, currency: str, grouping: str, context: DayContext) -> UUID:
    natural = (first.organization_id, first.customer_id, first.billing_date, currency, grouping)
    invoice_id = record_id("invoice", *natural)
    existing = context.existing.get(invoice_id)
    if existing is not None and existing.status != "draft":
        # Fees that closed after this day's invoice was finalized get an invoice of their own.
        invoice_id = record_id("invoice", *natural, f"late:{existing.fees_version}")
    return invoice_id


def _fee_input(fee: Fee, context: DayContext) -> FeeInput:
    taxes = []
    for code in fee.tax_codes:
        tax = context.taxes.get((fee.organization_id, code))
        if tax is None:
            raise MissingTax(f"organization {fee.organization_id} has no tax {code!r}")
        taxes.append(tax)
    return FeeInput(
        fee_id=fee.fee_id,
        amount_cents=fee.amount_cents,
        progressive_credit_cents=context.progressive_billed.get(usage_key(fee), 0),
        fee_type=fee.fee_type,
        plan_id=fee.plan_id,
        billable_metric_id=fee.billable_metric_id,
        taxes=tuple(taxes),
    )


def _carry_balances(key: CustomerKey, invoice: InvoiceComputation, context: DayContext) -> None:
    """The next invoice of the same customer in this run sees what this one consumed."""
    credits = {credit.applied_coupon_id: credit for credit in invoice.coupon_credits}
    coupons = []
    for state in context.coupons.get(key, []):
        credit = credits.get(state.applied.id)
        if credit is None:
            coupons.append(state)
        elif not credit.terminated:
            applied = replace(
                state.applied,
                remaining_amount_cents=credit.remaining_amount_cents,
                remaining_frequency=credit.remaining_frequency,
            )
            coupons.append(replace(state, applied=applied))
    context.coupons[key] = coupons
    used_notes = {c.credit_note_id: c.amount_cents for c in invoice.credit_note_consumptions}
    context.credit_notes[key] = [
        replace(
            s,
            note=replace(
                s.note,
                remaining_cents=s.note.remaining_cents - used_notes.get(s.note.credit_note_id, 0),
            ),
        )
        for s in context.credit_notes.get(key, [])
    ]
    used_credits = {c.wallet_id: c.credits for c in invoice.wallet_consumptions}
    context.wallets[key] = [
        replace(
            s,
            wallet=replace(
                s.wallet,
                balance_credits=s.wallet.balance_credits - used_credits.get(s.wallet.wallet_id, 0),
            ),
        )
        for s in context.wallets.get(key, [])
    ]


def _record(
    invoice_id: UUID,
    customer: CustomerBilling,
    fees: list[Fee],
    computation: InvoiceComputation,
    grouping_key: str,
    invoice_type: str,
) -> InvoiceRecord:
    day = fees[0].billing_date
    fees_version = content_version(
        [
            *(
                (r.fee_id, r.amount_cents, r.precise_coupons_amount, r.precise_taxes_amount)
                for r in computation.fees
            ),
            *((t.code, t.amount_cents) for t in computation.applied_taxes),
            computation.total_amount_cents,
        ]
    )
    return InvoiceRecord(
        id=invoice_id,
        customer=customer,
        fees=fees,
        computation=computation,
        fees_version=fees_version,
        billing_date=day,
        grouping_key=grouping_key,
        invoice_type=invoice_type,
        currency=fees[0].currency,
        timezone=fees[0].timezone,
        issuing_date=day,
        payment_due_date=day + timedelta(days=customer.net_payment_term),
        grace_period_ends_on=day + timedelta(days=customer.grace_period_days),
        number=f"{customer.document_number_prefix}-DRAFT",
    )

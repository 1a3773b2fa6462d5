"""Writing invoice records in batches: one INSERT per table per step, whatever the invoice count."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from orchestration.invoices.ids import invoice_version, record_id
from orchestration.invoices.money import from_cents
from orchestration.invoices.numbering import number_scope
from orchestration.invoices.records import InvoiceRecord

INVOICE_COLUMNS = [
    "organization_id", "id", "customer_id", "external_customer_id", "invoice_type", "status",
    "payment_status", "sequential_id", "number", "billing_date", "grouping_key", "issuing_date",
    "payment_due_date", "net_payment_term", "grace_period_ends_on", "timezone", "currency",
    "fees_amount_cents", "progressive_billing_credit_amount_cents", "coupons_amount_cents",
    "sub_total_excluding_taxes_amount_cents", "taxes_amount_cents", "taxes_rate",
    "sub_total_including_taxes_amount_cents", "credit_notes_amount_cents",
    "prepaid_credit_amount_cents", "total_amount_cents", "fees_version", "provider_sync_status",
    "created_at", "finalized_at", "updated_at", "version",
]  # fmt: skip

FEE_LINE_COLUMNS = [
    "organization_id", "invoice_id", "fees_version", "id", "fee_type", "is_true_up",
    "customer_id", "subscription_id", "external_subscription_id", "plan_id", "charge_id",
    "charge_filter_id", "add_on_id", "billable_metric_id", "billable_metric_code", "grouped_by",
    "invoice_display_name", "pay_in_advance", "source_transaction_id", "period_from", "period_to",
    "currency", "units", "events_count", "precise_unit_amount", "amount", "amount_cents",
    "progressive_billing_credit_amount_cents", "precise_coupons_amount_cents",
    "taxes_base_amount_cents", "precise_taxes_amount_cents", "taxes_rate", "tax_codes",
    "created_at",
]  # fmt: skip


TAX_COLUMNS = [
    "organization_id", "invoice_id", "fees_version", "tax_code", "tax_name", "tax_rate",
    "fees_amount_cents", "amount_cents", "currency", "created_at",
]  # fmt: skip


class InvoiceWriter:
    def __init__(self, client: Client, now: datetime) -> None:
        self.client = client
        self.now = now
        self.micros = int(now.timestamp() * 1_000_000)

    def _insert(self, table: str, columns: Sequence[str], rows: list[list[Any]]) -> None:
        if rows:
            self.client.insert(table, rows, column_names=list(columns))

    def write_drafts(self, records: list[InvoiceRecord]) -> None:
        self._insert("invoice_fees", FEE_LINE_COLUMNS, [
            row for record in records for row in self._fee_lines(record)
        ])  # fmt: skip
        self._insert("invoice_applied_taxes", TAX_COLUMNS, [
            row for record in records for row in self._tax_rows(record)
        ])  # fmt: skip
        self._insert("invoices", INVOICE_COLUMNS, [self._invoice_row(r, "draft") for r in records])

    def as_rows(
        self, r: InvoiceRecord
    ) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
        """The draft invoice, its lines and taxes as the tables would hold them (previews)."""
        invoice = {
            **dict(zip(INVOICE_COLUMNS, self._invoice_row(r, "draft"), strict=True)),
            "total_paid_amount_cents": 0, "provider_error": None, "voided_at": None,
        }  # fmt: skip
        lines = [dict(zip(FEE_LINE_COLUMNS, row, strict=True)) for row in self._fee_lines(r)]
        taxes = [dict(zip(TAX_COLUMNS, row, strict=True)) for row in self._tax_rows(r)]
        return invoice, lines, taxes

    def _tax_rows(self, r: InvoiceRecord) -> list[list[Any]]:
        return [
            [r.customer.organization_id, r.id, r.fees_version, t.code, t.name, t.rate,
             t.base_amount, t.amount_cents, r.currency, self.now]
            for t in r.computation.applied_taxes
        ]  # fmt: skip

    def write_finalized(self, records: list[InvoiceRecord]) -> None:
        self._insert(
            "invoices", INVOICE_COLUMNS, [self._invoice_row(r, "finalized") for r in records]
        )

    def write_numbers(self, records: list[InvoiceRecord]) -> None:
        self._insert(
            "invoice_numbers",
            ["organization_id", "invoice_id", "scope", "sequential_id", "number", "assigned_at"],
            [
                [r.customer.organization_id, r.id, number_scope(r.customer), r.sequential_id,
                 r.number, self.now]
                for r in records
            ],
        )  # fmt: skip

    def write_ledgers(self, records: list[InvoiceRecord]) -> None:
        self._insert(
            "coupon_consumptions",
            ["organization_id", "applied_coupon_id", "invoice_id", "id", "coupon_id",
             "customer_id", "amount_cents", "currency", "remaining_amount_cents",
             "remaining_frequency", "terminated", "created_at"],
            [
                [r.customer.organization_id, c.applied_coupon_id, r.id,
                 record_id("coupon-consumption", r.id, c.applied_coupon_id),
                 c.applied_coupon_id, r.customer.customer_id, c.amount_cents, r.currency,
                 c.remaining_amount_cents, c.remaining_frequency, int(c.terminated), self.now]
                for r in records
                for c in r.computation.coupon_credits
            ],
        )  # fmt: skip
        self._insert(
            "wallet_transactions",
            ["organization_id", "id", "wallet_id", "customer_id", "transaction_type",
             "transaction_status", "status", "credit_amount", "amount", "invoice_id",
             "settled_at", "created_at", "updated_at", "changed_by", "version", "is_deleted"],
            [
                [r.customer.organization_id, record_id("wallet-consumption", r.id, w.wallet_id),
                 w.wallet_id, r.customer.customer_id, "outbound", "invoiced", "settled",
                 w.credits, from_cents(w.amount_cents, r.currency), r.id, self.now, self.now,
                 self.now, "invoicing", self.micros, 0]
                for r in records
                for w in r.computation.wallet_consumptions
            ],
        )  # fmt: skip
        self._insert(
            "credit_note_consumptions",
            ["organization_id", "credit_note_id", "invoice_id", "id", "customer_id",
             "amount_cents", "currency", "created_at"],
            [
                [r.customer.organization_id, c.credit_note_id, r.id,
                 record_id("credit-note-consumption", r.id, c.credit_note_id),
                 r.customer.customer_id, c.amount_cents, r.currency, self.now]
                for r in records
                for c in r.computation.credit_note_consumptions
            ],
        )  # fmt: skip

    def _invoice_row(self, r: InvoiceRecord, status: str) -> list[Any]:
        c = r.computation
        finalized = status == "finalized"
        provider_sync = "pending" if finalized and r.customer.payment_provider else "none"
        return [
            r.customer.organization_id, r.id, r.customer.customer_id, r.customer.external_id,
            r.invoice_type, status, "pending", r.sequential_id if finalized else None,
            r.number if finalized else f"{r.customer.document_number_prefix}-DRAFT",
            r.billing_date, r.grouping_key, r.issuing_date, r.payment_due_date,
            r.customer.net_payment_term, r.grace_period_ends_on, r.timezone, r.currency,
            c.fees_amount_cents, c.progressive_billing_credit_amount_cents,
            c.coupons_amount_cents, c.sub_total_excluding_taxes_amount_cents,
            c.taxes_amount_cents, c.taxes_rate, c.sub_total_including_taxes_amount_cents,
            c.credit_notes_amount_cents, c.prepaid_credit_amount_cents, c.total_amount_cents,
            r.fees_version, provider_sync, self.now, self.now if finalized else None, self.now,
            invoice_version(status, self.micros),
        ]  # fmt: skip

    def _fee_lines(self, r: InvoiceRecord) -> list[list[Any]]:
        return [
            [
                f.organization_id, r.id, r.fees_version, f.fee_id, f.fee_type, f.is_true_up,
                f.customer_id, f.subscription_id, f.external_subscription_id, f.plan_id,
                f.charge_id, f.charge_filter_id, f.add_on_id, f.billable_metric_id,
                f.billable_metric_code, f.grouped_by, f.invoice_display_name, f.pay_in_advance,
                f.source_transaction_id, f.period_from, f.period_to, f.currency, f.units,
                f.events_count, f.precise_unit_amount, f.amount, f.amount_cents,
                res.progressive_credit_cents, res.precise_coupons_amount, res.taxable_base,
                res.precise_taxes_amount, res.taxes_rate, f.tax_codes, self.now,
            ]
            for f, res in zip(r.fees, r.computation.fees, strict=True)
        ]  # fmt: skip

"""Invoices, fees and credit notes in Lago's shapes, and the request bodies that act on them."""

from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from pydantic import Field

from api.schemas.common import Body, Cents, LongText, as_float, decimal_text, iso
from api.storage.invoices import Row
from orchestration.invoices.pdf import PdfInvoice, PdfLine

PaymentStatus = Literal["pending", "succeeded", "failed"]
CreditNoteReason = Literal[
    "duplicated_charge",
    "product_unsatisfactory",
    "order_change",
    "order_cancellation",
    "fraudulent_charge",
    "other",
]


class InvoiceUpdate(Body):
    payment_status: PaymentStatus | None = None


class InvoiceUpdateEnvelope(Body):
    invoice: InvoiceUpdate


class OneOffFeeInput(Body):
    add_on_code: str
    units: Decimal = Field(default=Decimal(1), gt=0, le=Decimal(10**9))
    unit_amount_cents: Decimal | None = Field(default=None, ge=0, le=Decimal(10**12))
    invoice_display_name: str | None = None
    tax_codes: list[str] | None = None


class OneOffInvoiceInput(Body):
    external_customer_id: str
    currency: str | None = None
    fees: list[OneOffFeeInput] = Field(min_length=1, max_length=500)


class OneOffInvoiceEnvelope(Body):
    invoice: OneOffInvoiceInput


class PreviewCustomer(Body):
    external_id: str


class PreviewSubscriptions(Body):
    external_ids: list[str] = Field(default_factory=list, max_length=1000)


class InvoicePreviewInput(Body):
    """Lago's preview body; previews of existing customers and subscriptions only."""

    customer: PreviewCustomer
    subscriptions: PreviewSubscriptions | None = None


class CreditNoteItemInput(Body):
    fee_id: str
    amount_cents: Cents


class CreditNoteInput(Body):
    invoice_id: str
    reason: CreditNoteReason = "other"
    description: LongText | None = None
    credit_amount_cents: Cents = 0
    refund_amount_cents: Cents = 0
    items: list[CreditNoteItemInput] = Field(min_length=1, max_length=1000)


class CreditNoteEnvelope(Body):
    credit_note: CreditNoteInput


class CreditNoteUpdate(Body):
    refund_status: PaymentStatus


class CreditNoteUpdateEnvelope(Body):
    credit_note: CreditNoteUpdate


class InvoiceVoidInput(Body):
    """Lago's void body: with ``generate_credit_note`` (even false) a paid invoice may be
    voided too; true issues a credit note of ``credit_amount + refund_amount`` (cents)."""

    generate_credit_note: bool = False
    refund_amount: Cents = 0
    credit_amount: Cents = 0


def _cents(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def present_fee(row: Row) -> dict[str, Any]:
    taxes_cents = _cents(row["precise_taxes_amount_cents"])
    base = row["taxes_base_amount_cents"]
    return {
        "lago_id": str(row["id"]),
        "lago_charge_id": _text(row["charge_id"]),
        "lago_charge_filter_id": _text(row["charge_filter_id"]),
        "lago_invoice_id": str(row["invoice_id"]),
        "lago_true_up_fee_id": None,
        "lago_true_up_parent_fee_id": None,
        "lago_customer_id": str(row["customer_id"]),
        "external_customer_id": row.get("external_customer_id"),
        "lago_subscription_id": _text(row["subscription_id"]),
        "external_subscription_id": row["external_subscription_id"] or None,
        "amount_cents": row["amount_cents"],
        "amount_currency": row["currency"],
        "precise_amount": decimal_text(row["amount"]),
        "precise_unit_amount": decimal_text(row["precise_unit_amount"]),
        "precise_coupons_amount_cents": decimal_text(row["precise_coupons_amount_cents"]),
        "sub_total_excluding_taxes_amount_cents": _cents(base),
        "sub_total_excluding_taxes_precise_amount_cents": decimal_text(base),
        "taxes_amount_cents": taxes_cents,
        "taxes_precise_amount": decimal_text(row["precise_taxes_amount_cents"]),
        "taxes_rate": as_float(row["taxes_rate"]),
        "total_amount_cents": _cents(base + row["precise_taxes_amount_cents"]),
        "total_amount_currency": row["currency"],
        "units": decimal_text(row["units"]),
        "events_count": row["events_count"],
        "pay_in_advance": bool(row["pay_in_advance"]),
        "invoiceable": True,
        "event_transaction_id": row["source_transaction_id"],
        "payment_status": row.get("payment_status", "pending"),
        "from_date": iso(row["period_from"]),
        "to_date": iso(row["period_to"]),
        "created_at": iso(row["created_at"]),
        "description": row["invoice_display_name"],
        "item": {
            "type": row["fee_type"],
            "code": row["billable_metric_code"] or row["fee_type"],
            "name": row["invoice_display_name"],
            "invoice_display_name": row["invoice_display_name"],
            "filter_invoice_display_name": None,
            "lago_item_id": _text(row["charge_id"] or row["subscription_id"]),
            "item_type": _item_type(row["fee_type"]),
            "grouped_by": dict(row["grouped_by"]),
        },
        "tax_codes": list(row["tax_codes"]),
    }


def _item_type(fee_type: str) -> str:
    return {"charge": "BillableMetric", "add_on": "AddOn", "credit": "WalletTransaction"}.get(
        fee_type, "Subscription"
    )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def present_applied_tax(row: Row) -> dict[str, Any]:
    return {
        "lago_invoice_id": str(row["invoice_id"]),
        "tax_name": row["tax_name"],
        "tax_code": row["tax_code"],
        "tax_rate": as_float(row["tax_rate"]),
        "amount_cents": row["amount_cents"],
        "amount_currency": row["currency"],
        "fees_amount_cents": _cents(row["fees_amount_cents"]),
        "created_at": iso(row["created_at"]),
    }


def present_invoice(
    row: Row, fees: list[Row] | None = None, taxes: list[Row] | None = None
) -> dict[str, Any]:
    due = row["total_amount_cents"] - row["total_paid_amount_cents"]
    body = {
        "lago_id": str(row["id"]),
        "sequential_id": row["sequential_id"],
        "number": row["number"],
        "issuing_date": row["issuing_date"].isoformat(),
        "payment_due_date": row["payment_due_date"].isoformat(),
        "payment_overdue": row["status"] == "finalized"
        and row["payment_status"] != "succeeded"
        and row["payment_due_date"] < date.today(),
        "net_payment_term": row["net_payment_term"],
        "invoice_type": row["invoice_type"],
        "version_number": 4,
        "status": row["status"],
        "payment_status": row["payment_status"],
        "currency": row["currency"],
        "lago_customer_id": str(row["customer_id"]),
        "external_customer_id": row["external_customer_id"],
        "fees_amount_cents": row["fees_amount_cents"],
        "coupons_amount_cents": row["coupons_amount_cents"],
        "taxes_amount_cents": row["taxes_amount_cents"],
        "taxes_rate": as_float(row["taxes_rate"]),
        "credit_notes_amount_cents": row["credit_notes_amount_cents"],
        "progressive_billing_credit_amount_cents": row["progressive_billing_credit_amount_cents"],
        "sub_total_excluding_taxes_amount_cents": row["sub_total_excluding_taxes_amount_cents"],
        "sub_total_including_taxes_amount_cents": row["sub_total_including_taxes_amount_cents"],
        "prepaid_credit_amount_cents": row["prepaid_credit_amount_cents"],
        "total_amount_cents": row["total_amount_cents"],
        "total_paid_amount_cents": row["total_paid_amount_cents"],
        "total_due_amount_cents": max(due, 0) if row["status"] == "finalized" else 0,
        "provider_sync_status": row["provider_sync_status"],
        "provider_error": row["provider_error"],
        "voided_at": iso(row["voided_at"]),
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "file_url": None,
    }
    if fees is not None:
        body["fees"] = [present_fee(fee) for fee in fees]
    if taxes is not None:
        body["applied_taxes"] = [present_applied_tax(tax) for tax in taxes]
    if "applied_usage_thresholds" in row:
        body["applied_usage_thresholds"] = [
            present_applied_usage_threshold(applied) for applied in row["applied_usage_thresholds"]
        ]
    return body


def present_applied_usage_threshold(row: Row) -> dict[str, Any]:
    """A threshold a progressive-billing invoice was issued for (Lago's shape)."""
    return {
        "lifetime_usage_amount_cents": row["lifetime_usage_amount_cents"],
        "created_at": iso(row["created_at"]),
        "usage_threshold": {
            "lago_id": str(row["usage_threshold_id"]),
            "threshold_display_name": row["threshold_display_name"],
            "amount_cents": row["amount_cents"],
            "recurring": bool(row["recurring"]),
        },
    }


def present_credit_note(row: Row, items: list[Row], invoice: Row) -> dict[str, Any]:
    return {
        "lago_id": str(row["id"]),
        "sequential_id": row["sequential_id"],
        "number": row["number"],
        "lago_invoice_id": str(row["invoice_id"]),
        "invoice_number": invoice["number"],
        "credit_status": row["credit_status"],
        "refund_status": row["refund_status"],
        "reason": row["reason"],
        "description": row["description"],
        "currency": row["currency"],
        "total_amount_cents": row["total_amount_cents"],
        "credit_amount_cents": row["credit_amount_cents"],
        "balance_amount_cents": max(int(row["balance_amount_cents"]), 0),
        "refund_amount_cents": row["refund_amount_cents"],
        # Not in Lago's object: where the refund is at the payment provider.
        "provider_refund_id": row.get("provider_refund_id") or None,
        "refund_error": row.get("refund_error"),
        "offset_amount_cents": 0,
        "taxes_amount_cents": row["taxes_amount_cents"],
        "taxes_rate": as_float(invoice["taxes_rate"]),
        "sub_total_excluding_taxes_amount_cents": row["sub_total_excluding_taxes_amount_cents"],
        "coupons_adjustment_amount_cents": row["coupons_adjustment_amount_cents"],
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]),
        "items": [
            {
                "lago_id": str(item["id"]),
                "amount_cents": item["amount_cents"],
                "amount_currency": item["currency"],
                "lago_fee_id": str(item["fee_id"]),
            }
            for item in items
        ],
    }


def pdf_document(
    invoice: Row, fees: list[Row], taxes: list[Row], issuer: str, customer: Row | None
) -> PdfInvoice:
    customer_lines = tuple(
        str(customer[field])
        for field in ("email", "address_line1", "address_line2", "city", "zipcode", "country")
        if customer and customer.get(field)
    )
    return PdfInvoice(
        number=invoice["number"],
        status=invoice["status"],
        issuing_date=invoice["issuing_date"],
        payment_due_date=invoice["payment_due_date"],
        currency=invoice["currency"],
        issuer_name=issuer,
        customer_name=(customer or {}).get("name") or invoice["external_customer_id"],
        customer_lines=customer_lines,
        lines=tuple(
            PdfLine(
                fee["invoice_display_name"],
                f"{fee['period_from']:%Y-%m-%d} – {fee['period_to']:%Y-%m-%d}",
                fee["units"],
                fee["amount_cents"],
            )
            for fee in fees
        ),
        fees_amount_cents=invoice["fees_amount_cents"],
        progressive_billing_credit_amount_cents=invoice["progressive_billing_credit_amount_cents"],
        coupons_amount_cents=invoice["coupons_amount_cents"],
        sub_total_excluding_taxes_amount_cents=invoice["sub_total_excluding_taxes_amount_cents"],
        taxes=tuple((t["tax_name"], t["tax_rate"], t["amount_cents"]) for t in taxes),
        sub_total_including_taxes_amount_cents=invoice["sub_total_including_taxes_amount_cents"],
        credit_notes_amount_cents=invoice["credit_notes_amount_cents"],
        prepaid_credit_amount_cents=invoice["prepaid_credit_amount_cents"],
        total_amount_cents=invoice["total_amount_cents"],
    )

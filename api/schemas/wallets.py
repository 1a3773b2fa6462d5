"""Wallets ``{"wallet": {...}}`` and wallet transactions ``{"wallet_transaction": {...}}``.

Credits and rates are decimal strings in Lago's API; they are parsed exactly, never as floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import Field

from api.schemas.common import Body, Cents, RequiredText, ShortText, decimal_text, iso, load_json
from api.storage.catalog import Row

Priority = Annotated[int, Field(ge=1, le=50)]
DecimalText = Annotated[str, Field(max_length=40)]
FeeType = Literal["charge", "commitment", "subscription", "fixed_charge"]


class RecurringRuleInput(Body):
    lago_id: ShortText | None = None
    trigger: Literal["interval", "threshold"] | None = None
    interval: Literal["weekly", "monthly", "quarterly", "semiannual", "yearly"] | None = None
    method: Literal["fixed", "target"] | None = None
    paid_credits: DecimalText | None = None
    granted_credits: DecimalText | None = None
    threshold_credits: DecimalText | None = None
    target_ongoing_balance: DecimalText | None = None
    started_at: datetime | None = None
    expiration_at: datetime | None = None
    ignore_paid_top_up_limits: bool | None = None


class AppliesToInput(Body):
    fee_types: list[FeeType] | None = None
    billable_metric_codes: list[RequiredText] | None = None


class WalletInput(Body):
    external_customer_id: RequiredText | None = None
    rate_amount: DecimalText | None = None
    name: ShortText | None = None
    code: ShortText | None = None
    priority: Priority | None = None
    paid_credits: DecimalText | None = None
    granted_credits: DecimalText | None = None
    expiration_at: datetime | None = None
    currency: ShortText | None = None
    recurring_transaction_rules: (
        Annotated[list[RecurringRuleInput], Field(max_length=20)] | None
    ) = None
    applies_to: AppliesToInput | None = None
    invoice_requires_successful_payment: bool | None = None
    paid_top_up_min_amount_cents: Cents | None = None
    paid_top_up_max_amount_cents: Cents | None = None
    ignore_paid_top_up_limits_on_creation: bool | None = None
    metadata: dict[RequiredText, ShortText | None] | None = None
    transaction_name: ShortText | None = None


class WalletEnvelope(Body):
    wallet: WalletInput


class WalletTransactionInput(Body):
    wallet_id: ShortText | None = None
    paid_credits: DecimalText | None = None
    granted_credits: DecimalText | None = None
    voided_credits: DecimalText | None = None
    name: ShortText | None = None
    metadata: list[dict[ShortText, ShortText]] | None = None
    invoice_requires_successful_payment: bool | None = None
    ignore_paid_top_up_limits: bool | None = None


class WalletTransactionEnvelope(Body):
    wallet_transaction: WalletTransactionInput


@dataclass(frozen=True)
class OngoingBalance:
    """The balance left once draft invoices and current usage are paid, and that usage."""

    usage_cents: int
    usage_credits: Decimal
    balance_cents: int
    balance_credits: Decimal


def present_wallet(
    row: Row,
    customer: Row | None,
    metric_codes: list[str],
    balance: Decimal,
    consumed: Decimal,
    balance_cents: int,
    ongoing: OngoingBalance,
) -> dict[str, Any]:
    return {
        "lago_id": str(row["id"]),
        "lago_customer_id": str(row["customer_id"]),
        "external_customer_id": customer["external_id"] if customer else None,
        "status": row["status"],
        "currency": row["currency"],
        "name": row["name"],
        "code": row["code"],
        "priority": row["priority"],
        "rate_amount": decimal_text(row["rate_amount"]),
        "credits_balance": decimal_text(balance),
        "balance_cents": balance_cents,
        "consumed_credits": decimal_text(consumed),
        "credits_ongoing_balance": decimal_text(ongoing.balance_credits),
        "credits_ongoing_usage_balance": decimal_text(ongoing.usage_credits),
        "ongoing_balance_cents": ongoing.balance_cents,
        "ongoing_usage_balance_cents": ongoing.usage_cents,
        "created_at": iso(row["created_at"]),
        "expiration_at": iso(row["expiration_at"]),
        "terminated_at": iso(row["terminated_at"]),
        "last_balance_sync_at": None,
        "last_consumed_credit_at": None,
        "recurring_transaction_rules": load_json(row["recurring_transaction_rules"], []),
        "applies_to": {
            "fee_types": list(row["applies_to_fee_types"]),
            "billable_metric_codes": metric_codes,
        },
        "invoice_requires_successful_payment": bool(row["invoice_requires_successful_payment"]),
        "paid_top_up_min_amount_cents": row["paid_top_up_min_amount_cents"],
        "paid_top_up_max_amount_cents": row["paid_top_up_max_amount_cents"],
        "metadata": load_json(row["metadata"], {}),
    }


def present_transaction(row: Row) -> dict[str, Any]:
    return {
        "lago_id": str(row["id"]),
        "lago_wallet_id": str(row["wallet_id"]),
        "lago_invoice_id": str(row["invoice_id"]) if row["invoice_id"] else None,
        "status": row["status"],
        "source": row["source"],
        "transaction_status": row["transaction_status"],
        "transaction_type": row["transaction_type"],
        "amount": decimal_text(row["amount"]),
        "credit_amount": decimal_text(row["credit_amount"]),
        "settled_at": iso(row["settled_at"]),
        "failed_at": iso(row["failed_at"]),
        "created_at": iso(row["created_at"]),
        "name": row["name"],
        "metadata": load_json(row["metadata"], []),
    }

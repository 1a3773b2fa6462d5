"""Credit notes: the only correction of a finalized invoice (never an update in place)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client

from orchestration.invoices.ids import now_micros
from orchestration.invoices.money import HUNDRED, round_cents


class CreditNoteRefused(ValueError):
    """The request does not fit the invoice; ``field`` and ``code`` say why."""

    def __init__(self, field: str, code: str) -> None:
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code


@dataclass(frozen=True)
class CreditNoteItem:
    fee_id: uuid.UUID
    amount_cents: int


@dataclass(frozen=True)
class CreditNoteAmounts:
    coupons_adjustment_amount_cents: int
    sub_total_excluding_taxes_amount_cents: int
    taxes_amount_cents: int
    total_amount_cents: int
    items: list[tuple[uuid.UUID, int, Decimal]]  # fee, amount credited, after coupon shares


def credit_note_amounts(
    invoice: dict[str, Any],
    fees: dict[uuid.UUID, dict[str, Any]],
    credited: dict[uuid.UUID, int],
    items: list[CreditNoteItem],
) -> CreditNoteAmounts:
    """Items are amounts of fees (before coupons and tax); coupons' shares come off in
    proportion, then each fee's tax rate applies, rounded once on the note."""
    if invoice["status"] != "finalized":
        raise CreditNoteRefused("invoice", "invalid_status")
    adjustment = Decimal(0)
    taxes = Decimal(0)
    lines: list[tuple[uuid.UUID, int, Decimal]] = []
    for item in items:
        fee = fees.get(item.fee_id)
        if fee is None:
            raise CreditNoteRefused("items", "fee_not_found")
        available = fee["amount_cents"] - credited.get(item.fee_id, 0)
        if item.amount_cents > available:
            raise CreditNoteRefused("items", "higher_than_remaining_fee_amount")
        share = Decimal(0)
        if fee["amount_cents"]:
            share = fee["precise_coupons_amount_cents"] * item.amount_cents / fee["amount_cents"]
        adjustment += share
        taxes += (item.amount_cents - share) * fee["taxes_rate"] / HUNDRED
        lines.append((item.fee_id, item.amount_cents, Decimal(item.amount_cents) - share))
    items_total = sum(item.amount_cents for item in items)
    adjustment_cents = round_cents(adjustment)
    # Sums of separately rounded parts, as Lago's credit notes (15467 + 3867 = 19334).
    sub_total = items_total - adjustment_cents
    taxes_cents = round_cents(taxes)
    return CreditNoteAmounts(
        adjustment_cents, sub_total, taxes_cents, sub_total + taxes_cents, lines
    )


def items_for_total(
    invoice: dict[str, Any],
    fees: dict[uuid.UUID, dict[str, Any]],
    credited: dict[uuid.UUID, int],
    target_cents: int,
) -> list[CreditNoteItem]:
    """Items crediting about ``target_cents`` (tax included) of the invoice, spread over its
    fees in proportion to their amounts (Lago's estimate when voiding with a credit note):
    each fee's share is ``round(amount * target / sub_total_including_taxes)``, at most what
    earlier notes left of it. The note's total may differ from the target by rounding."""
    base = invoice["sub_total_including_taxes_amount_cents"]
    if target_cents <= 0 or base <= 0:
        return []
    items = []
    for fee_id, fee in sorted(fees.items(), key=lambda item: str(item[0])):
        share = round_cents(Decimal(fee["amount_cents"]) * target_cents / base)
        amount = min(share, fee["amount_cents"] - credited.get(fee_id, 0))
        if amount > 0:
            items.append(CreditNoteItem(fee_id, amount))
    return items


def create_credit_note(
    client: Client,
    invoice: dict[str, Any],
    amounts: CreditNoteAmounts,
    *,
    reason: str,
    description: str | None,
    credit_amount_cents: int,
    refund_amount_cents: int,
    sequence: int,
    note_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """Write the note and its items; ``note_id`` when the caller derives it (a retry then
    rewrites the same note)."""
    if credit_amount_cents + refund_amount_cents != amounts.total_amount_cents:
        raise CreditNoteRefused("base", "does_not_match_item_amounts")
    if refund_amount_cents > invoice["total_paid_amount_cents"]:
        raise CreditNoteRefused("refund_amount_cents", "higher_than_paid_amount")
    note_id = note_id or uuid.uuid4()
    now = datetime.now(UTC)
    organization_id, currency = invoice["organization_id"], invoice["currency"]
    client.insert(
        "credit_note_items",
        [[organization_id, note_id, uuid.uuid5(note_id, f"{position}:{fee_id}"), fee_id, amount,
          precise, currency, now]
         for position, (fee_id, amount, precise) in enumerate(amounts.items)],
        column_names=["organization_id", "credit_note_id", "id", "fee_id", "amount_cents",
                      "precise_amount_cents", "currency", "created_at"],
    )  # fmt: skip
    client.insert(
        "credit_notes",
        [[organization_id, note_id, invoice["id"], invoice["customer_id"], sequence,
          f"{invoice['number']}-CN{sequence:03d}", reason, description,
          "available" if credit_amount_cents else None,
          "pending" if refund_amount_cents else None, currency, credit_amount_cents,
          refund_amount_cents, amounts.coupons_adjustment_amount_cents,
          amounts.sub_total_excluding_taxes_amount_cents, amounts.taxes_amount_cents,
          amounts.total_amount_cents, now.date(), now, now, now_micros()]],
        column_names=["organization_id", "id", "invoice_id", "customer_id", "sequential_id",
                      "number", "reason", "description", "credit_status", "refund_status",
                      "currency", "credit_amount_cents", "refund_amount_cents",
                      "coupons_adjustment_amount_cents", "sub_total_excluding_taxes_amount_cents",
                      "taxes_amount_cents", "total_amount_cents", "issuing_date", "created_at",
                      "updated_at", "version"],
    )  # fmt: skip
    return note_id

"""Add-ons (one-off charges): ``{"add_on": {...}}``."""

from __future__ import annotations

from typing import Any

from api.schemas.common import Body, Cents, Code, LongText, RequiredText, ShortText, iso
from api.storage.catalog import Row


class AddOnInput(Body):
    name: RequiredText | None = None
    invoice_display_name: ShortText | None = None
    code: Code | None = None
    amount_cents: Cents | None = None
    amount_currency: ShortText | None = None
    description: LongText | None = None
    tax_codes: list[RequiredText] | None = None


class AddOnEnvelope(Body):
    add_on: AddOnInput


def present_add_on(row: Row, taxes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "lago_id": str(row["id"]),
        "name": row["name"],
        "invoice_display_name": row["invoice_display_name"],
        "code": row["code"],
        "amount_cents": int(row["amount_cents"]),
        "amount_currency": row["amount_currency"],
        "description": row["description"],
        "created_at": iso(row["created_at"]),
        "taxes": taxes,
    }

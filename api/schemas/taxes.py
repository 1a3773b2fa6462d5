"""Taxes: ``{"tax": {...}}``."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field

from api.schemas.common import Body, Code, LongText, RequiredText, as_float, iso
from api.storage.catalog import Row

TaxRate = Annotated[Decimal, Field(ge=0, le=10**9, allow_inf_nan=False, decimal_places=12)]


class TaxInput(Body):
    name: RequiredText | None = None
    code: Code | None = None
    rate: TaxRate | None = None
    description: LongText | None = None
    applied_to_organization: bool | None = None


class TaxEnvelope(Body):
    tax: TaxInput


def present_tax(row: Row) -> dict[str, Any]:
    return {
        "lago_id": str(row["id"]),
        "name": row["name"],
        "code": row["code"],
        "rate": as_float(row["rate"]),
        "description": row["description"],
        "applied_to_organization": bool(row["applied_to_organization"]),
        "applied_to_billing_entities_codes": [],
        "created_at": iso(row["created_at"]),
    }


def present_taxes(taxes: Mapping[uuid.UUID, Row], ids: Iterable[uuid.UUID]) -> list[dict[str, Any]]:
    """The taxes with these ids, in order (deleted taxes drop out)."""
    return [present_tax(taxes[tax_id]) for tax_id in ids if tax_id in taxes]

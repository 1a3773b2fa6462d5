"""Fees: /api/v1/fees, the fees frozen into invoices (Lago-compatible)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CurrentCaller
from api.errors import NotFound
from api.pagination import Page
from api.routers.invoices import Records
from api.schemas.invoices import present_fee

router = APIRouter(prefix="/api/v1/fees", tags=["fees"])


@router.get("")
def list_fees(
    page: Page, records: Records, caller: CurrentCaller, external_customer_id: str | None = None
) -> dict[str, Any]:
    rows, total = records.fees(
        caller.organization_id, external_customer_id, page.per_page, page.offset
    )
    return {"fees": [present_fee(row) for row in rows], "meta": page.meta(total)}


@router.get("/{fee_id}")
def get_fee(fee_id: str, records: Records, caller: CurrentCaller) -> dict[str, Any]:
    row = records.fee(caller.organization_id, fee_id)
    if row is None:
        raise NotFound("fee")
    return {"fee": present_fee(row)}

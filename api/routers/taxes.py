"""Taxes: /api/v1/taxes, addressed by code."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import CurrentCaller, Store
from api.errors import FieldErrors
from api.pagination import Page
from api.schemas.taxes import TaxEnvelope, TaxInput, present_tax
from api.storage.catalog import new_row
from api.storage.lookups import find_by, is_taken

router = APIRouter(prefix="/api/v1/taxes", tags=["taxes"])


def _check_unique_code(
    store: Store, caller: CurrentCaller, code: str, except_id: Any = None
) -> None:
    if is_taken(store, "taxes", caller.organization_id, "code", code, except_id=except_id):
        errors = FieldErrors()
        errors.add("code", "value_already_exist")
        errors.raise_if_any()


def _require(body: TaxInput) -> None:
    errors = FieldErrors()
    for field in ("name", "code", "rate"):
        if getattr(body, field) is None:
            errors.add(field, "value_is_mandatory")
    errors.raise_if_any()


@router.post("")
def create_tax(envelope: TaxEnvelope, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    body = envelope.tax
    _require(body)
    with store.locks.hold(caller.organization_id, "taxes"):
        _check_unique_code(store, caller, str(body.code))
        row = new_row(
            caller.organization_id,
            code=body.code,
            name=body.name,
            description=body.description,
            rate=body.rate,
            applied_to_organization=int(bool(body.applied_to_organization)),
        )
        store.write("taxes", [row], changed_by=caller.actor)
    return {"tax": present_tax(row)}


@router.put("/{code}")
def update_tax(
    code: str, envelope: TaxEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    body = envelope.tax
    with store.locks.hold(caller.organization_id, "taxes"):
        row = find_by(store, "taxes", caller.organization_id, "code", code, resource="tax")
        if body.code is not None and body.code != row["code"]:
            _check_unique_code(store, caller, body.code, except_id=row["id"])
        changes = body.model_dump(exclude_unset=True, exclude_none=True)
        if "applied_to_organization" in changes:
            changes["applied_to_organization"] = int(changes["applied_to_organization"])
        row = {**row, **changes}
        store.write("taxes", [row], changed_by=caller.actor)
    return {"tax": present_tax(row)}


@router.get("/{code}")
def get_tax(code: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    return {
        "tax": present_tax(
            find_by(store, "taxes", caller.organization_id, "code", code, resource="tax")
        )
    }


@router.delete("/{code}")
def delete_tax(code: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    row = find_by(store, "taxes", caller.organization_id, "code", code, resource="tax")
    store.delete("taxes", [row], changed_by=caller.actor)
    return {"tax": present_tax(row)}


@router.get("")
def list_taxes(page: Page, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    org = caller.organization_id
    rows = store.select("taxes", org, limit=page.per_page, offset=page.offset)
    return {"taxes": [present_tax(r) for r in rows], "meta": page.meta(store.count("taxes", org))}

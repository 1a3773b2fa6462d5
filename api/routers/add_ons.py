"""Add-ons: /api/v1/add_ons, addressed by code."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Caller, CurrentCaller, Store
from api.errors import FieldErrors
from api.pagination import Page
from api.reference import CURRENCIES
from api.schemas.add_ons import AddOnEnvelope, AddOnInput, present_add_on
from api.schemas.taxes import present_taxes
from api.storage.catalog import CatalogStore, Row, new_row
from api.storage.lookups import find_by, is_taken, tax_ids_for_codes, taxes_by_id

router = APIRouter(prefix="/api/v1/add_ons", tags=["add_ons"])

MANDATORY = ("name", "code", "amount_cents", "amount_currency")


def present_many(store: CatalogStore, caller: Caller, rows: list[Row]) -> list[dict[str, Any]]:
    taxes = taxes_by_id(store, caller.organization_id, rows)
    return [present_add_on(row, present_taxes(taxes, row["tax_ids"])) for row in rows]


def find_add_on(store: CatalogStore, caller: Caller, code: str) -> Row:
    return find_by(store, "add_ons", caller.organization_id, "code", code, resource="add_on")


def apply(store: CatalogStore, caller: Caller, row: Row, body: AddOnInput) -> Row:
    fields = (
        "name",
        "invoice_display_name",
        "code",
        "amount_cents",
        "amount_currency",
        "description",
    )
    row = {**row, **{f: getattr(body, f) for f in fields if f in body.model_fields_set}}
    if body.tax_codes is not None:
        row["tax_ids"] = tax_ids_for_codes(store, caller.organization_id, body.tax_codes)
    errors = FieldErrors()
    for field in MANDATORY:
        if row.get(field) is None:
            errors.add(field, "value_is_mandatory")
    if row.get("amount_currency") is not None and row["amount_currency"] not in CURRENCIES:
        errors.add("amount_currency", "value_is_invalid")
    errors.raise_if_any()
    org = caller.organization_id
    if is_taken(store, "add_ons", org, "code", row["code"], except_id=row["id"]):
        errors.add("code", "value_already_exist")
        errors.raise_if_any()
    store.write("add_ons", [row], changed_by=caller.actor)
    return row


@router.post("")
def create_add_on(envelope: AddOnEnvelope, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    blank = new_row(caller.organization_id, **dict.fromkeys(MANDATORY), tax_ids=[])
    blank.update(invoice_display_name=None, description=None)
    with store.locks.hold(caller.organization_id, "add_ons"):
        row = apply(store, caller, blank, envelope.add_on)
    return {"add_on": present_many(store, caller, [row])[0]}


@router.put("/{code}")
def update_add_on(
    code: str, envelope: AddOnEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    with store.locks.hold(caller.organization_id, "add_ons"):
        row = apply(store, caller, find_add_on(store, caller, code), envelope.add_on)
    return {"add_on": present_many(store, caller, [row])[0]}


@router.get("/{code}")
def get_add_on(code: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    return {"add_on": present_many(store, caller, [find_add_on(store, caller, code)])[0]}


@router.delete("/{code}")
def delete_add_on(code: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    row = find_add_on(store, caller, code)
    store.delete("add_ons", [row], changed_by=caller.actor)
    return {"add_on": present_many(store, caller, [row])[0]}


@router.get("")
def list_add_ons(page: Page, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    org = caller.organization_id
    rows = store.select("add_ons", org, limit=page.per_page, offset=page.offset)
    return {
        "add_ons": present_many(store, caller, rows),
        "meta": page.meta(store.count("add_ons", org)),
    }

"""Customers: /api/v1/customers, addressed by external_id; POST creates or updates (upsert)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import Caller, CurrentCaller, Store
from api.errors import FieldErrors
from api.pagination import Page
from api.schemas.customers import CustomerEnvelope, customer_columns, present_customer
from api.schemas.taxes import present_taxes
from api.storage.catalog import CatalogStore, Row, new_row, utc_now
from api.storage.lookups import find_by, tax_ids_for_codes, taxes_by_id
from api.storage.subscriptions import end_all, live_subscriptions

router = APIRouter(prefix="/api/v1/customers", tags=["customers"])


def present_many(store: CatalogStore, caller: Caller, rows: list[Row]) -> list[dict[str, Any]]:
    taxes = taxes_by_id(store, caller.organization_id, rows)
    timezone = caller.organization.timezone
    return [present_customer(row, present_taxes(taxes, row["tax_ids"]), timezone) for row in rows]


def present(store: CatalogStore, caller: Caller, row: Row) -> dict[str, Any]:
    return present_many(store, caller, [row])[0]


def find_customer(store: CatalogStore, caller: Caller, external_id: str) -> Row:
    return find_by(
        store, "customers", caller.organization_id, "external_id", external_id, resource="customer"
    )


@router.post("")
def upsert_customer(
    envelope: CustomerEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    body = envelope.customer
    body.field_errors().raise_if_any()
    org = caller.organization_id
    tax_ids = tax_ids_for_codes(store, org, body.tax_codes) if body.tax_codes is not None else None
    with store.locks.hold(org, "customers"):
        current = store.first("customers", org, "external_id = {e:String}", {"e": body.external_id})
        columns = customer_columns(body, current)
        if tax_ids is not None:
            columns["tax_ids"] = tax_ids
        if current is None:
            row = new_row(org, external_id=body.external_id, **columns)
        else:
            _check_currency_change(store, caller, current, columns.get("currency"))
            row = {**current, **columns}
        store.write("customers", [row], changed_by=caller.actor)
    return {"customer": present(store, caller, row)}


def _check_currency_change(
    store: CatalogStore, caller: Caller, current: Row, currency: Any
) -> None:
    # Lago refuses to change the currency of a customer already billed in another one.
    if currency is None or current["currency"] in (None, currency):
        return
    if live_subscriptions(store, caller.organization_id, "customer_id", [current["id"]]):
        errors = FieldErrors()
        errors.add("currency", "currencies_does_not_match")
        errors.raise_if_any()


@router.get("/{external_id}")
def get_customer(external_id: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    return {"customer": present(store, caller, find_customer(store, caller, external_id))}


@router.delete("/{external_id}")
def delete_customer(external_id: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    row = find_customer(store, caller, external_id)
    org = caller.organization_id
    # Like Lago, a deleted customer stops being billed: subscriptions end, wallets and applied
    # coupons are terminated.
    end_all(store, org, "customer_id", [row["id"]], caller.actor)
    now = utc_now()
    for table in ("wallets", "applied_coupons"):
        live = store.select(
            table, org, "customer_id = {c:UUID} AND status = 'active'", {"c": row["id"]}
        )
        ended = [{**r, "status": "terminated", "terminated_at": now} for r in live]
        store.write(table, ended, changed_by=caller.actor)
    store.delete("customers", [row], changed_by=caller.actor)
    return {"customer": present(store, caller, row)}


@router.get("")
def list_customers(
    page: Page,
    store: Store,
    caller: CurrentCaller,
    search_term: Annotated[str | None, Query(max_length=255)] = None,
    currencies: Annotated[list[str] | None, Query(alias="currencies[]")] = None,
    countries: Annotated[list[str] | None, Query(alias="countries[]")] = None,
) -> dict[str, Any]:
    conditions: list[str] = []
    parameters: dict[str, Any] = {}
    if search_term:
        conditions.append(
            "(positionCaseInsensitiveUTF8(external_id, {term:String}) > 0"
            " OR positionCaseInsensitiveUTF8(ifNull(name, ''), {term:String}) > 0"
            " OR positionCaseInsensitiveUTF8(ifNull(email, ''), {term:String}) > 0)"
        )
        parameters["term"] = search_term
    if currencies:
        conditions.append("currency IN {currencies:Array(String)}")
        parameters["currencies"] = currencies
    if countries:
        conditions.append("country IN {countries:Array(String)}")
        parameters["countries"] = [c.upper() for c in countries]
    where = " AND ".join(conditions)
    org = caller.organization_id
    rows = store.select(
        "customers", org, where, parameters, limit=page.per_page, offset=page.offset
    )
    total = store.count("customers", org, where, parameters)
    return {"customers": present_many(store, caller, rows), "meta": page.meta(total)}

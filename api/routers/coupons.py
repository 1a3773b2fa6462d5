"""Coupons: /api/v1/coupons (by code); applied coupons: /api/v1/applied_coupons and
/api/v1/customers/{external_customer_id}/applied_coupons/{id}."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from api.deps import Caller, CurrentCaller, Store
from api.errors import ApiError, FieldErrors, NotFound
from api.pagination import Page
from api.reference import CURRENCIES
from api.schemas.coupons import (
    AppliedCouponEnvelope,
    CouponEnvelope,
    CouponInput,
    present_applied_coupon,
    present_coupon,
)
from api.schemas.subscriptions import utc
from api.storage.catalog import CatalogStore, Row, new_row, utc_now
from api.storage.lookups import (
    find_by,
    find_by_id,
    is_taken,
    latest_by_ids,
    rows_by_codes,
    rows_by_ids,
)
from orchestration.invoices.voiding import UNCOUNTED_INVOICES

router = APIRouter(prefix="/api/v1", tags=["coupons"])
COUPON_FIELDS = (
    "name",
    "code",
    "description",
    "coupon_type",
    "amount_cents",
    "amount_currency",
    "percentage_rate",
    "frequency",
    "frequency_duration",
    "expiration",
)


def coupon_defaults() -> dict[str, Any]:
    return {
        **dict.fromkeys(COUPON_FIELDS),
        "reusable": 1,
        "expiration_at": None,
        "limited_plans": 0,
        "plan_ids": [],
        "limited_billable_metrics": 0,
        "billable_metric_ids": [],
        "status": "active",
        "terminated_at": None,
    }


def present_coupons(store: CatalogStore, caller: Caller, rows: list[Row]) -> list[dict[str, Any]]:
    org = caller.organization_id
    plans = rows_by_ids(store, "plans", org, [i for row in rows for i in row["plan_ids"]])
    metrics = rows_by_ids(
        store, "billable_metrics", org, [i for row in rows for i in row["billable_metric_ids"]]
    )
    return [
        present_coupon(
            row,
            [plans[i]["code"] for i in row["plan_ids"] if i in plans],
            [metrics[i]["code"] for i in row["billable_metric_ids"] if i in metrics],
        )
        for row in rows
    ]


def apply_coupon(store: CatalogStore, caller: Caller, row: Row, body: CouponInput) -> Row:
    row.update({f: getattr(body, f) for f in COUPON_FIELDS if f in body.model_fields_set})
    if body.reusable is not None:
        row["reusable"] = int(body.reusable)
    if "expiration_at" in body.model_fields_set:
        row["expiration_at"] = utc(body.expiration_at)
    if body.applies_to is not None:
        _apply_limitations(store, caller, row, body)
    errors = FieldErrors()
    for field in ("name", "code", "coupon_type", "frequency", "expiration"):
        if row[field] is None:
            errors.add(field, "value_is_mandatory")
    if row["coupon_type"] == "fixed_amount":
        if row["amount_cents"] is None:
            errors.add("amount_cents", "value_is_mandatory")
        if row["amount_currency"] not in CURRENCIES:
            errors.add("amount_currency", "value_is_invalid")
    if row["coupon_type"] == "percentage" and row["percentage_rate"] is None:
        errors.add("percentage_rate", "value_is_mandatory")
    if row["frequency"] == "recurring" and row["frequency_duration"] is None:
        errors.add("frequency_duration", "value_is_mandatory")
    if row["expiration"] == "time_limit" and (
        row["expiration_at"] is None or row["expiration_at"] <= utc_now()
    ):
        errors.add("expiration_at", "invalid_date")
    errors.raise_if_any()
    return row


def _apply_limitations(store: CatalogStore, caller: Caller, row: Row, body: CouponInput) -> None:
    assert body.applies_to is not None
    plan_codes = body.applies_to.plan_codes or []
    metric_codes = body.applies_to.billable_metric_codes or []
    if plan_codes and metric_codes:
        raise ApiError(405, "only_one_limitation_type_per_coupon_allowed")
    org = caller.organization_id
    plans = rows_by_codes(store, "plans", org, plan_codes)
    if any(code not in plans or plans[code]["parent_id"] for code in plan_codes):
        raise NotFound("plan")
    metrics = rows_by_codes(store, "billable_metrics", org, metric_codes)
    if any(code not in metrics for code in metric_codes):
        raise NotFound("billable_metric")
    row["plan_ids"] = [plans[code]["id"] for code in dict.fromkeys(plan_codes)]
    row["limited_plans"] = int(bool(plan_codes))
    row["billable_metric_ids"] = [metrics[code]["id"] for code in dict.fromkeys(metric_codes)]
    row["limited_billable_metrics"] = int(bool(metric_codes))


def _check_unique_code(store: CatalogStore, caller: Caller, row: Row) -> None:
    if is_taken(store, "coupons", caller.organization_id, "code", row["code"], except_id=row["id"]):
        errors = FieldErrors()
        errors.add("code", "value_already_exist")
        errors.raise_if_any()


def find_coupon(store: CatalogStore, caller: Caller, code: str) -> Row:
    return find_by(store, "coupons", caller.organization_id, "code", code, resource="coupon")


@router.post("/coupons")
def create_coupon(envelope: CouponEnvelope, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    row = apply_coupon(
        store, caller, new_row(caller.organization_id, **coupon_defaults()), envelope.coupon
    )
    with store.locks.hold(caller.organization_id, "coupons"):
        _check_unique_code(store, caller, row)
        store.write("coupons", [row], changed_by=caller.actor)
    return {"coupon": present_coupons(store, caller, [row])[0]}


@router.put("/coupons/{code}")
def update_coupon(
    code: str, envelope: CouponEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    with store.locks.hold(caller.organization_id, "coupons"):
        row = apply_coupon(store, caller, find_coupon(store, caller, code), envelope.coupon)
        _check_unique_code(store, caller, row)
        store.write("coupons", [row], changed_by=caller.actor)
    return {"coupon": present_coupons(store, caller, [row])[0]}


@router.get("/coupons/{code}")
def get_coupon(code: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    return {"coupon": present_coupons(store, caller, [find_coupon(store, caller, code)])[0]}


@router.delete("/coupons/{code}")
def delete_coupon(code: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    row = find_coupon(store, caller, code)
    org = caller.organization_id
    # Like Lago, a deleted coupon stops applying: its active applications are terminated.
    applied = store.select(
        "applied_coupons", org, "coupon_id = {c:UUID} AND status = 'active'", {"c": row["id"]}
    )
    now = utc_now()
    terminated = [{**a, "status": "terminated", "terminated_at": now} for a in applied]
    store.write("applied_coupons", terminated, changed_by=caller.actor)
    store.delete("coupons", [row], changed_by=caller.actor)
    return {"coupon": present_coupons(store, caller, [row])[0]}


@router.get("/coupons")
def list_coupons(page: Page, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    org = caller.organization_id
    rows = store.select("coupons", org, limit=page.per_page, offset=page.offset)
    return {
        "coupons": present_coupons(store, caller, rows),
        "meta": page.meta(store.count("coupons", org)),
    }


# --- applied coupons ---------------------------------------------------------------------------
def present_applied(store: CatalogStore, caller: Caller, rows: list[Row]) -> list[dict[str, Any]]:
    org = caller.organization_id
    coupons = latest_by_ids(store, "coupons", org, [row["coupon_id"] for row in rows])
    customers = latest_by_ids(store, "customers", org, [row["customer_id"] for row in rows])
    consumed = _consumptions(store, org, [row["id"] for row in rows])
    return [
        present_applied_coupon(
            row,
            coupons.get(row["coupon_id"]),
            customers.get(row["customer_id"]),
            _remaining(row, consumed.get(row["id"])),
        )
        for row in rows
    ]


def _consumptions(
    store: CatalogStore, organization_id: uuid.UUID, ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, int, int]]:
    """(amount consumed, invoices that used it, terminated) per applied coupon, over the
    invoices that count: finalized ones (voiding an invoice gives its consumption back)."""
    if not ids:
        return {}
    result = store.client.query(
        "SELECT applied_coupon_id, sum(amount_cents), count(), max(terminated)"
        " FROM coupon_consumptions FINAL WHERE organization_id = {org:UUID}"
        " AND applied_coupon_id IN {ids:Array(UUID)}"
        f" AND invoice_id NOT IN ({UNCOUNTED_INVOICES}) GROUP BY applied_coupon_id",
        parameters={"org": organization_id, "ids": ids},
    )
    return {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in result.result_rows}


def _remaining(row: Row, consumed: tuple[int, int, int] | None) -> tuple[Any, Any, Any] | None:
    """(remaining amount, remaining periods, terminated) after the counted invoices."""
    if consumed is None:
        return None
    amount, uses, terminated = consumed
    remaining_amount = row["amount_cents"] - amount if row["amount_cents"] is not None else None
    duration = row["frequency_duration"]
    remaining_periods = duration - uses if duration is not None else None
    return remaining_amount, remaining_periods, terminated


@router.post("/applied_coupons")
def apply_coupon_to_customer(
    envelope: AppliedCouponEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    body = envelope.applied_coupon
    errors = FieldErrors()
    for field in ("external_customer_id", "coupon_code"):
        if getattr(body, field) is None:
            errors.add(field, "value_is_mandatory")
    errors.raise_if_any()
    org = caller.organization_id
    customer = find_by(
        store, "customers", org, "external_id", body.external_customer_id, resource="customer"
    )
    coupon = find_by(
        store,
        "coupons",
        org,
        "code",
        body.coupon_code,
        resource="coupon",
        where="status = 'active'",
    )
    with store.locks.hold(org, "applied_coupons"):
        row = _application(coupon, customer, body, org)
        _check_application(store, org, coupon, customer, row)
        store.write("applied_coupons", [row], changed_by=caller.actor)
    return {"applied_coupon": present_applied(store, caller, [row])[0]}


def _application(coupon: Row, customer: Row, body: Any, organization_id: uuid.UUID) -> Row:
    fixed = coupon["coupon_type"] == "fixed_amount"
    return new_row(
        organization_id,
        coupon_id=coupon["id"],
        customer_id=customer["id"],
        amount_cents=(
            body.amount_cents if body.amount_cents is not None else coupon["amount_cents"]
        )
        if fixed
        else None,
        amount_currency=(body.amount_currency or coupon["amount_currency"]) if fixed else None,
        percentage_rate=None
        if fixed
        else (
            body.percentage_rate if body.percentage_rate is not None else coupon["percentage_rate"]
        ),
        frequency=body.frequency or coupon["frequency"],
        frequency_duration=body.frequency_duration
        if body.frequency_duration is not None
        else coupon["frequency_duration"],
        status="active",
        terminated_at=None,
    )


def _check_application(
    store: CatalogStore, organization_id: uuid.UUID, coupon: Row, customer: Row, row: Row
) -> None:
    if coupon["expiration_at"] is not None and coupon["expiration_at"] <= utc_now():
        # Lago terminates expired coupons, so they are not found any more.
        raise NotFound("coupon")
    errors = FieldErrors()
    currency = row["amount_currency"]
    if currency is not None and customer["currency"] not in (None, currency):
        errors.add("currency", "currencies_does_not_match")
    if row["frequency"] == "recurring" and row["frequency_duration"] is None:
        errors.add("frequency_duration", "value_is_mandatory")
    already = store.count(
        "applied_coupons",
        organization_id,
        "coupon_id = {c:UUID} AND customer_id = {u:UUID} AND status = 'active'",
        {"c": coupon["id"], "u": customer["id"]},
    )
    if already and not coupon["reusable"]:
        errors.add("coupon", "coupon_is_not_reusable")
    errors.raise_if_any()


@router.get("/applied_coupons")
def list_applied_coupons(
    page: Page,
    store: Store,
    caller: CurrentCaller,
    external_customer_id: Annotated[str | None, Query(max_length=255)] = None,
    status: Literal["active", "terminated"] | None = None,
) -> dict[str, Any]:
    org = caller.organization_id
    conditions: list[str] = []
    parameters: dict[str, Any] = {}
    if external_customer_id is not None:
        customer = find_by(
            store, "customers", org, "external_id", external_customer_id, resource="customer"
        )
        conditions.append("customer_id = {u:UUID}")
        parameters["u"] = customer["id"]
    if status is not None:
        conditions.append("status = {s:String}")
        parameters["s"] = status
    where = " AND ".join(conditions)
    rows = store.select(
        "applied_coupons", org, where, parameters, limit=page.per_page, offset=page.offset
    )
    total = store.count("applied_coupons", org, where, parameters)
    return {"applied_coupons": present_applied(store, caller, rows), "meta": page.meta(total)}


@router.delete("/customers/{external_customer_id}/applied_coupons/{applied_coupon_id}")
def terminate_applied_coupon(
    external_customer_id: str, applied_coupon_id: str, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    org = caller.organization_id
    customer = find_by(
        store, "customers", org, "external_id", external_customer_id, resource="customer"
    )
    row = find_by_id(store, "applied_coupons", org, applied_coupon_id, resource="applied_coupon")
    if row["customer_id"] != customer["id"]:
        raise NotFound("applied_coupon")
    row = {**row, "status": "terminated", "terminated_at": utc_now()}
    store.write("applied_coupons", [row], changed_by=caller.actor)
    return {"applied_coupon": present_applied(store, caller, [row])[0]}

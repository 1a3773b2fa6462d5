"""Billable metrics: /api/v1/billable_metrics, addressed by code."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi import APIRouter

from api.deps import Caller, CurrentCaller, Store
from api.errors import FieldErrors
from api.pagination import Page
from api.schemas.billable_metrics import (
    BillableMetricEnvelope,
    EvaluateExpressionInput,
    ExpressionEventInput,
    expression_sql,
    metric_columns,
    present_metric,
    validate_metric,
)
from api.schemas.plans import ALL_FILTER_VALUES
from api.services.metric_expressions import InvalidExpression, evaluate
from api.storage.catalog import CatalogStore, Row, new_row
from api.storage.lookups import find_by, is_taken
from ingestion.validation import parse_timestamp_ms
from ingestion.writer import property_text

router = APIRouter(prefix="/api/v1/billable_metrics", tags=["billable_metrics"])

# Once subscriptions are billed on a metric, changing how it aggregates would rewrite history:
# like Lago, only these fields stay editable then.
EDITABLE_WHEN_IN_USE = {"name", "description", "filters"}


def find_metric(store: CatalogStore, caller: Caller, code: str) -> Row:
    return find_by(
        store, "billable_metrics", caller.organization_id, "code", code, resource="billable_metric"
    )


def _check_unique_code(
    store: CatalogStore, caller: Caller, code: str, except_id: Any = None
) -> None:
    org = caller.organization_id
    if is_taken(store, "billable_metrics", org, "code", code, except_id=except_id):
        errors = FieldErrors()
        errors.add("code", "value_already_exist")
        errors.raise_if_any()


def _in_use(store: CatalogStore, organization_id: uuid.UUID, metric_id: uuid.UUID) -> bool:
    return (
        store.count(
            "subscriptions",
            organization_id,
            "status IN ('active', 'pending') AND plan_id IN ("
            " SELECT plan_id FROM charges FINAL WHERE organization_id = {org:UUID}"
            " AND is_deleted = 0 AND billable_metric_id = {metric:UUID})",
            {"metric": metric_id},
        )
        > 0
    )


@router.post("")
def create_metric(
    envelope: BillableMetricEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    body = envelope.billable_metric
    body.check_filters()
    defaults: dict[str, Any] = {
        "description": None,
        "field_name": None,
        "expression": None,
        "recurring": 0,
        "rounding_function": None,
        "rounding_precision": None,
        "weighted_interval": None,
        "filters": {},
    }
    row = new_row(caller.organization_id, **{**defaults, **metric_columns(body)})
    validate_metric(row)
    row["expression_sql"] = expression_sql(row)
    with store.locks.hold(caller.organization_id, "billable_metrics"):
        _check_unique_code(store, caller, row["code"])
        store.write("billable_metrics", [row], changed_by=caller.actor)
    return {"billable_metric": present_metric(row)}


@router.post("/evaluate_expression")
def evaluate_expression(
    body: EvaluateExpressionInput, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    """The value an expression gives a sample event, as rating would compute it."""
    event = body.event or ExpressionEventInput()
    errors = FieldErrors()
    if not body.expression:
        errors.add("expression", "value_is_mandatory")
    timestamp_ms = int(time.time() * 1000)
    if event.timestamp is not None:
        parsed = parse_timestamp_ms(event.timestamp)
        if parsed is None:
            errors.add("event.timestamp", "invalid_timestamp")
        else:
            timestamp_ms = parsed
    errors.raise_if_any()
    assert body.expression is not None
    properties = {key: property_text(value) for key, value in (event.properties or {}).items()}
    try:
        value = evaluate(
            store.client, body.expression, code=event.code or "", timestamp_ms=timestamp_ms,
            properties=properties,
        )  # fmt: skip
    except InvalidExpression:
        errors.add("expression", "invalid_expression")
        errors.raise_if_any()
    if value is None:
        # A missing property, text in arithmetic or a division by zero: the event has no value.
        errors.add("event", "expression_evaluation_failed")
        errors.raise_if_any()
    return {"expression_result": {"value": value}}


@router.put("/{code}")
def update_metric(
    code: str, envelope: BillableMetricEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    body = envelope.billable_metric
    body.check_filters()
    with store.locks.hold(caller.organization_id, "billable_metrics"):
        current = find_metric(store, caller, code)
        changes = metric_columns(body)
        if _in_use(store, caller.organization_id, current["id"]):
            changes = {k: v for k, v in changes.items() if k in EDITABLE_WHEN_IN_USE}
        row = {**current, **changes}
        validate_metric(row)
        row["expression_sql"] = expression_sql(row)
        if row["code"] != current["code"]:
            _check_unique_code(store, caller, row["code"], except_id=row["id"])
        if row["filters"] != current["filters"]:
            _prune_charge_filters(store, caller, row)
        store.write("billable_metrics", [row], changed_by=caller.actor)
    return {"billable_metric": present_metric(row)}


def _prune_charge_filters(store: CatalogStore, caller: Caller, metric: Row) -> None:
    """Like Lago, charge filters lose the values the metric no longer offers, and a filter
    left without a whole key is removed."""
    org = caller.organization_id
    filters = store.select(
        "charge_filters",
        org,
        "charge_id IN (SELECT id FROM charges FINAL WHERE organization_id = {org:UUID}"
        " AND is_deleted = 0 AND billable_metric_id = {m:UUID})",
        {"m": metric["id"]},
    )
    allowed = metric["filters"]
    changed, removed = [], []
    for charge_filter in filters:
        kept = {
            key: [v for v in values if v == ALL_FILTER_VALUES or v in allowed.get(key, [])]
            for key, values in charge_filter["values"].items()
        }
        if any(not values for values in kept.values()):
            removed.append(charge_filter)
        elif kept != {k: list(v) for k, v in charge_filter["values"].items()}:
            changed.append({**charge_filter, "values": kept})
    store.write("charge_filters", changed, changed_by=caller.actor)
    store.delete("charge_filters", removed, changed_by=caller.actor)


@router.get("/{code}")
def get_metric(code: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    return {"billable_metric": present_metric(find_metric(store, caller, code))}


@router.delete("/{code}")
def delete_metric(code: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    row = find_metric(store, caller, code)
    org = caller.organization_id
    # Like Lago, deleting a metric removes the charges billing it from every plan.
    charges = store.select("charges", org, "billable_metric_id = {m:UUID}", {"m": row["id"]})
    if charges:
        filters = store.select(
            "charge_filters",
            org,
            "charge_id IN {ids:Array(UUID)}",
            {"ids": [charge["id"] for charge in charges]},
        )
        store.delete("charge_filters", filters, changed_by=caller.actor)
        store.delete("charges", charges, changed_by=caller.actor)
    store.delete("billable_metrics", [row], changed_by=caller.actor)
    return {"billable_metric": present_metric(row)}


@router.get("")
def list_metrics(page: Page, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    org = caller.organization_id
    rows = store.select("billable_metrics", org, limit=page.per_page, offset=page.offset)
    return {
        "billable_metrics": [present_metric(r) for r in rows],
        "meta": page.meta(store.count("billable_metrics", org)),
    }

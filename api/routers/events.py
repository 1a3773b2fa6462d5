"""Event reads and fee estimates (Lago-compatible); the ingest routes write events.

- ``GET /api/v1/events/{transaction_id}``: the caller's stored event, deduplicated as the rating
  reads it (the latest ingested version wins).
- ``POST /api/v1/events/estimate_fees``: the fees an event would produce now on the
  pay-in-advance charges of its subscription, without storing it. The dbt view
  ``fct_estimated_fees`` prices it with the rating's macros; this router checks the request,
  applies taxes to the rounded fees and shapes the answer.
"""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Any

from fastapi import APIRouter

from api.deps import Caller, CurrentCaller, Store
from api.errors import FieldErrors, NotFound, ValidationFailed
from api.schemas.events import (
    EstimatedEvent,
    EstimatedEventEnvelope,
    applied_taxes,
    present_estimated_fee,
    present_event,
)
from api.services.usage import UsageNotAvailable
from api.storage.catalog import CatalogStore, Row
from api.storage.events import event_subscription, latest_event
from api.storage.lookups import find_by
from ingestion.writer import property_text
from warehouse.views import RATED_ON_READ_SETTINGS, ViewNotFound, query_view_in_use

router = APIRouter(prefix="/api/v1/events", tags=["events"])

# Metrics whose event value must be a number (Lago refuses an estimate otherwise).
NUMERIC_AGGREGATIONS = {"sum_agg", "max_agg", "latest_agg", "weighted_sum_agg"}
# What fits precise_total_amount_cents' Decimal(38, 12).
MAX_PRECISE_CENTS = Decimal(10) ** 26


@router.get("/{transaction_id:path}")
def get_event(transaction_id: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    # `:path`: a transaction_id may hold an encoded slash, which the server decodes first.
    event = latest_event(store.client, caller.organization_id, transaction_id)
    if event is None:
        raise NotFound("event")
    subscription = event_subscription(
        store.client, caller.organization_id, event.external_subscription_id, event.timestamp
    )
    return {"event": present_event(caller.organization_id, transaction_id, event, subscription)}


@router.post("/estimate_fees")
def estimate_fees(
    payload: EstimatedEventEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    event = payload.event
    organization_id = caller.organization_id
    subscription = find_by(
        store, "subscriptions", organization_id, "external_id", event.external_subscription_id,
        resource="subscription", where="status = 'active'",
    )  # fmt: skip
    metric = find_by(
        store, "billable_metrics", organization_id, "code", event.code, resource="billable_metric"
    )
    properties = check_estimated_event(event, metric)
    if not store.count(
        "charges", organization_id,
        "plan_id = {plan:UUID} AND billable_metric_id = {metric:UUID} AND pay_in_advance = 1",
        {"plan": subscription["plan_id"], "metric": metric["id"]},
    ):  # fmt: skip
        raise ValidationFailed({"code": ["does_not_match_an_instant_charge"]})
    rows = estimated_fee_rows(store, caller, event, properties)
    taxes = taxes_by_code(store, caller, {code for row in rows for code in row["tax_codes"]})
    echoed_id = None if event.transaction_id is None else str(event.transaction_id)
    fees = []
    for row in rows:
        fee_taxes = [taxes[code] for code in row["tax_codes"] if code in taxes]
        fees.append(
            present_estimated_fee(row, applied_taxes(row["amount_cents"], fee_taxes), echoed_id)
        )
    return {"fees": fees}


def check_estimated_event(event: EstimatedEvent, metric: Row) -> dict[str, str]:
    """The event's properties as the ingest stores them; 422 naming every bad field."""
    errors = FieldErrors()
    properties = {key: property_text(value) for key, value in event.properties.items()}
    value = properties.get(metric["field_name"] or "")
    if metric["aggregation_type"] in NUMERIC_AGGREGATIONS and value and not is_number(value):
        errors.add("properties", "value_is_not_valid_number")
    amount = event.precise_total_amount_cents
    if amount is not None and not is_number(str(amount), MAX_PRECISE_CENTS):
        errors.add("precise_total_amount_cents", "invalid_decimal")
    errors.raise_if_any()
    return properties


def is_number(text: str, bound: Decimal | None = None) -> bool:
    """Whether ``text`` is a finite decimal (below ``bound`` in magnitude when given)."""
    try:
        number = Decimal(text)
    except InvalidOperation:
        return False
    return number.is_finite() and (bound is None or abs(number) < bound)


def estimated_fee_rows(
    store: CatalogStore, caller: Caller, event: EstimatedEvent, properties: dict[str, str]
) -> list[Row]:
    amount = event.precise_total_amount_cents
    parameters = {
        "organization_id": caller.organization_id,
        "external_subscription_id": event.external_subscription_id,
        "code": event.code,
        # A fresh id: the estimated event never meets a stored one in deduplication.
        "transaction_id": f"estimate-{uuid.uuid4()}",
        "property_keys": list(properties),
        "property_values": list(properties.values()),
        "precise_total_amount_cents": "" if amount is None else str(amount),
    }

    def estimate(view: str) -> list[Row]:
        result = store.client.query(
            f"SELECT * FROM ({view}) ORDER BY charge_id",
            parameters=parameters,
            settings=RATED_ON_READ_SETTINGS,
        )
        return list(result.named_results())

    # fct_estimated_fees' stored query rather than the view (warehouse/views.py: why), through
    # its copy compiled for the catalog in use.
    try:
        return query_view_in_use(store.client, "fct_estimated_fees", estimate)
    except ViewNotFound as missing:  # before the first rating run
        raise UsageNotAvailable(str(missing)) from missing


def taxes_by_code(store: CatalogStore, caller: Caller, codes: set[str]) -> dict[str, Row]:
    if not codes:
        return {}
    rows = store.select(
        "taxes", caller.organization_id, "code IN {codes:Array(String)}", {"codes": sorted(codes)}
    )
    return {row["code"]: row for row in rows}

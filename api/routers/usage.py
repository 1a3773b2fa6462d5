"""Usage of a customer's subscription, as Lago serves it.

- ``GET /api/v1/customers/{external_customer_id}/current_usage?external_subscription_id=``: the
  open billing period, fresh to the last ingested event. It runs the queries of the dbt views
  ``fct_current_usage`` and ``fct_current_pay_in_advance_usage``, which rate the open period
  with the same macros as ``fct_fees``: this router only shapes rows, it prices nothing.
- ``GET /api/v1/customers/{external_customer_id}/past_usage?external_subscription_id=``: closed
  periods, from the charge fees of ``fct_fees``.

Both add the taxes an invoice would: each fee is taxed with the tax codes the rating gives it
(the charge's taxes, else the plan's, else the customer's, else the organization's), and each tax
is computed once on the sum of its fees and rounded once, half-up.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from itertools import groupby
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import Caller, CurrentCaller, Store
from api.errors import NotFound
from api.services.usage import (
    PAST_USAGE_SQL,
    UsageRow,
    current_usage_rows,
    organization_taxes,
    query_usage,
    taxes_amount_cents,
)
from api.storage.catalog import CatalogStore
from api.storage.lookups import find_by
from orchestration.invoices.compute import Tax

router = APIRouter(prefix="/api/v1/customers", tags=["usage"])


def decimal_text(value: Decimal) -> str:
    """Units as Lago prints them: a plain decimal without exponent or trailing zeros."""
    text = f"{value.normalize():f}"
    return text if "." in text else f"{text}.0"


def present_bucket(rows: Sequence[UsageRow]) -> dict[str, Any]:
    units = decimal_text(sum((row.units for row in rows), Decimal(0)))
    return {
        "units": units,
        "total_aggregated_units": units,
        "events_count": sum(row.events_count for row in rows),
        "amount_cents": sum(row.amount_cents for row in rows),
    }


def present_filters(rows: Sequence[UsageRow]) -> list[dict[str, Any]]:
    """One entry per filter of the charge (the default price has no values), when it has any."""
    if all(row.charge_filter_id is None for row in rows):
        return []
    by_filter = groupby(rows, key=lambda row: row.charge_filter_id)
    filters = []
    for _, bucket in by_filter:
        bucket_rows = list(bucket)
        first = bucket_rows[0]
        filters.append(
            {
                "invoice_display_name": first.filter_display_name,
                "values": first.filter_values if first.charge_filter_id else None,
                **present_bucket(bucket_rows),
            }
        )
    return filters


def present_groups(rows: Sequence[UsageRow]) -> list[dict[str, Any]]:
    grouped = sorted((row for row in rows if row.grouped_by), key=lambda row: str(row.grouped_by))
    groups = []
    for _, bucket in groupby(grouped, key=lambda row: str(row.grouped_by)):
        bucket_rows = list(bucket)
        groups.append(
            {
                "grouped_by": bucket_rows[0].grouped_by,
                "filters": present_filters(bucket_rows),
                **present_bucket(bucket_rows),
            }
        )
    return groups


def present_charge(rows: Sequence[UsageRow]) -> dict[str, Any]:
    first = rows[0]
    return {
        **present_bucket(rows),
        "amount_currency": first.currency,
        "charge": {
            "lago_id": str(first.charge_id),
            "charge_model": first.charge_model,
            "invoice_display_name": first.invoice_display_name,
        },
        "billable_metric": {
            "lago_id": str(first.billable_metric_id),
            "name": first.billable_metric_name,
            "code": first.billable_metric_code,
            "aggregation_type": first.aggregation_type,
        },
        "filters": present_filters(rows),
        "grouped_usage": present_groups(rows),
    }


def present_period(rows: Sequence[UsageRow], taxes: Mapping[str, Tax]) -> dict[str, Any]:
    """One period's usage in Lago's customer_usage shape."""
    first = rows[0]
    charges = [list(group) for _, group in groupby(rows, key=lambda row: row.charge_id)]
    amount_cents = sum(row.amount_cents for row in rows)
    taxes_cents = taxes_amount_cents(rows, taxes)
    return {
        "from_datetime": first.period_from.isoformat(timespec="seconds") + "Z",
        "to_datetime": first.period_to.isoformat(timespec="seconds") + "Z",
        "issuing_date": first.billing_date.isoformat(),
        "lago_invoice_id": None,
        "currency": first.currency,
        "amount_cents": amount_cents,
        "taxes_amount_cents": taxes_cents,
        "total_amount_cents": amount_cents + taxes_cents,
        "charges_usage": [present_charge(charge_rows) for charge_rows in charges],
    }


def find_customer_subscription(
    store: CatalogStore, caller: Caller, external_customer_id: str, external_subscription_id: str
) -> None:
    """404 unless the customer exists and the subscription is one of its subscriptions."""
    customer = find_by(
        store, "customers", caller.organization_id, "external_id", external_customer_id,
        resource="customer",
    )  # fmt: skip
    find_by(
        store, "subscriptions", caller.organization_id, "external_id", external_subscription_id,
        resource="subscription", where=f"customer_id = '{customer['id']}'",
    )  # fmt: skip


def by_period(rows: Iterable[UsageRow]) -> list[list[UsageRow]]:
    return [list(group) for _, group in groupby(rows, key=lambda row: row.period_from)]


@router.get("/{external_customer_id}/current_usage")
def current_usage(
    external_customer_id: str,
    external_subscription_id: str,
    store: Store,
    caller: CurrentCaller,
) -> dict[str, Any]:
    find_customer_subscription(store, caller, external_customer_id, external_subscription_id)
    rows = current_usage_rows(
        store,
        caller.organization_id,
        [external_customer_id],
        external_subscription_id,
        pay_in_advance=True,
    )
    if not rows:
        raise NotFound("no_active_subscription")
    taxes = organization_taxes(store, caller.organization_id)
    return {"customer_usage": present_period(rows, taxes)}


@router.get("/{external_customer_id}/past_usage")
def past_usage(
    external_customer_id: str,
    external_subscription_id: str,
    store: Store,
    caller: CurrentCaller,
    billable_metric_code: str = "",
    periods_count: Annotated[int, Query(ge=1, le=120)] = 12,
) -> dict[str, Any]:
    find_customer_subscription(store, caller, external_customer_id, external_subscription_id)
    rows = query_usage(
        store,
        PAST_USAGE_SQL,
        {
            "org": caller.organization_id,
            "sub": external_subscription_id,
            "customer": external_customer_id,
            "metric": billable_metric_code,
            "periods": periods_count,
        },
    )
    taxes = organization_taxes(store, caller.organization_id)
    periods = [present_period(period_rows, taxes) for period_rows in by_period(rows)]
    meta = {
        "current_page": 1,
        "next_page": None,
        "prev_page": None,
        "total_pages": 1,
        "total_count": len(periods),
    }
    return {"usage_periods": periods, "meta": meta}

"""Usage of a customer's subscription, as Lago serves it.

- ``GET /api/v1/customers/{external_customer_id}/current_usage?external_subscription_id=``: the
  open billing period, fresh to the last ingested event. It runs the query of the dbt view
  ``fct_current_usage``, which rates the open period with the same macros as ``fct_fees``: this
  router only shapes rows, it prices nothing.
- ``GET /api/v1/customers/{external_customer_id}/past_usage?external_subscription_id=``: closed
  periods, from the charge fees of ``fct_fees``.

Both add the taxes an invoice would: each fee is taxed with the tax codes the rating gives it
(the charge's taxes, else the plan's, else the customer's, else the organization's), and each tax
is computed once on the sum of its fees and rounded once, half-up.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from itertools import groupby
from typing import Annotated, Any

from fastapi import APIRouter, Query

from api.deps import Caller, CurrentCaller, Store
from api.errors import NotFound
from api.storage.catalog import CatalogStore
from api.storage.lookups import find_by
from orchestration.invoices.compute import FeeInput, FeeResult, Tax, apply_taxes
from warehouse.views import view_query

router = APIRouter(prefix="/api/v1/customers", tags=["usage"])

# One row per charge x filter x group; both endpoints select these columns.
USAGE_COLUMNS = """
    period_from, period_to, billing_date, currency, charge_id, charge_model, invoice_display_name,
    charge_filter_id, filter_display_name, filter_values, billable_metric_id, billable_metric_code,
    billable_metric_name, aggregation_type, grouped_by, units, events_count, amount_cents, tax_codes
"""


def current_usage_sql(view: str) -> str:
    """The usage rows of one subscription from ``view``, fct_current_usage's stored query, whose
    parameters are organization_id and external_subscription_id (warehouse/views.py: why the
    query rather than the view)."""
    return f"""
SELECT {USAGE_COLUMNS}
FROM ({view})
WHERE external_customer_id = {{customer:String}}
ORDER BY billable_metric_code, charge_id, toString(charge_filter_id), toString(grouped_by)
"""


PAST_USAGE_SQL = f"""
SELECT {USAGE_COLUMNS}
FROM (
    SELECT
        f.period_from AS period_from, f.period_to AS period_to, f.billing_date AS billing_date,
        f.currency AS currency, assumeNotNull(f.charge_id) AS charge_id,
        c.charge_model AS charge_model, f.invoice_display_name AS invoice_display_name,
        f.charge_filter_id AS charge_filter_id, cf.invoice_display_name AS filter_display_name,
        cf.filter_values AS filter_values, f.billable_metric_id AS billable_metric_id,
        f.billable_metric_code AS billable_metric_code,
        m.billable_metric_name AS billable_metric_name,
        m.aggregation_type AS aggregation_type, f.grouped_by AS grouped_by, f.units AS units,
        f.events_count AS events_count, f.amount_cents AS amount_cents,
        f.tax_codes AS tax_codes
    FROM fct_fees AS f FINAL
    LEFT JOIN stg_warehouse__charges AS c
        ON c.organization_id = f.organization_id AND c.charge_id = assumeNotNull(f.charge_id)
    LEFT JOIN stg_warehouse__billable_metrics AS m
        ON m.organization_id = f.organization_id
        AND m.billable_metric_id = assumeNotNull(f.billable_metric_id)
    LEFT JOIN stg_warehouse__charge_filters AS cf
        ON cf.organization_id = f.organization_id
        AND cf.charge_filter_id = assumeNotNull(f.charge_filter_id)
    WHERE f.organization_id = {{org:UUID}} AND f.external_subscription_id = {{sub:String}}
        AND f.external_customer_id = {{customer:String}}
        AND f.fee_type = 'charge' AND f.is_true_up = 0 AND f.pay_in_advance = 0
        AND f.period_from IN (
            SELECT DISTINCT period_from FROM fct_fees FINAL
            WHERE organization_id = {{org:UUID}} AND external_subscription_id = {{sub:String}}
                AND fee_type = 'charge' AND ({{metric:String}} = ''
                    OR billable_metric_code = {{metric:String}})
            ORDER BY period_from DESC
            LIMIT {{periods:UInt32}}
        )
        AND ({{metric:String}} = '' OR f.billable_metric_code = {{metric:String}})
)
ORDER BY period_from DESC, billable_metric_code, charge_id, toString(charge_filter_id),
    toString(grouped_by)
"""


@dataclass(frozen=True)
class UsageRow:
    period_from: datetime
    period_to: datetime
    billing_date: date
    currency: str
    charge_id: uuid.UUID
    charge_model: str
    invoice_display_name: str
    charge_filter_id: uuid.UUID | None
    filter_display_name: str | None
    filter_values: dict[str, list[str]] | None
    billable_metric_id: uuid.UUID
    billable_metric_code: str
    billable_metric_name: str
    aggregation_type: str
    grouped_by: dict[str, str]
    units: Decimal
    events_count: int
    amount_cents: int
    tax_codes: list[str]


def query_usage(store: CatalogStore, sql: str, parameters: dict[str, Any]) -> list[UsageRow]:
    result = store.client.query(sql, parameters=parameters)
    return [UsageRow(*row) for row in result.result_rows]


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


def taxes_amount_cents(rows: Sequence[UsageRow], taxes: Mapping[str, Tax]) -> int:
    """The period's taxes as its invoice would compute them (the invoice's own tax step), with no
    coupon or credit to deduct: each tax once, on the sum of the fees it applies to. A usage row
    has no fee id; its charge id stands in (the tax step only pairs each fee with its result)."""
    fees = [
        FeeInput(
            row.charge_id,
            row.amount_cents,
            "charge",
            billable_metric_id=row.billable_metric_id,
            taxes=tuple(taxes[code] for code in row.tax_codes if code in taxes),
        )
        for row in rows
    ]
    results = [FeeResult(fee.fee_id, fee.amount_cents, 0) for fee in fees]
    return sum(tax.amount_cents for tax in apply_taxes(fees, results))


def organization_taxes(store: CatalogStore, organization_id: uuid.UUID) -> dict[str, Tax]:
    return {
        row["code"]: Tax(row["code"], row["rate"], row["name"])
        for row in store.select("taxes", organization_id)
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
    rows = query_usage(
        store,
        current_usage_sql(view_query(store.client, "fct_current_usage")),
        {
            "organization_id": caller.organization_id,
            "external_subscription_id": external_subscription_id,
            "customer": external_customer_id,
        },
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

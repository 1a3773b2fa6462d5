"""Revenue analytics: /api/v1/analytics/*, Lago's analytics endpoints served from the dbt marts.

Every endpoint answers one row per month and currency (amounts in different currencies are never
added), oldest month first, with ``month`` as Lago writes it (``2024-02-01T00:00:00.000Z``).
Filters, all optional: ``currency`` (ISO 4217), ``external_customer_id``, and ``months`` (the
last N months up to the current one; without it, every month).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any

from clickhouse_connect.driver.exceptions import DatabaseError
from fastapi import APIRouter, Depends, Query

from api.deps import CurrentCaller, Store
from api.errors import ApiError, ValidationFailed
from warehouse.client import is_unknown_table

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])

CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")


@dataclass(frozen=True)
class AnalyticsFilter:
    """The caller's filters as SQL conditions over a mart and their bound parameters."""

    currency: str | None
    external_customer_id: str | None
    months: int | None

    def where(
        self, organization_id: Any, month_column: str = "month"
    ) -> tuple[str, dict[str, Any]]:
        conditions = ["organization_id = {organization_id:UUID}"]
        parameters: dict[str, Any] = {"organization_id": organization_id}
        if self.currency:
            conditions.append("currency = {currency:String}")
            parameters["currency"] = self.currency
        if self.external_customer_id is not None:
            conditions.append("external_customer_id = {external_customer_id:String}")
            parameters["external_customer_id"] = self.external_customer_id
        if self.months:
            conditions.append(f"{month_column} >= {{first_month:Date}}")
            parameters["first_month"] = first_month_of_window(self.months, datetime.now(UTC).date())
        return " and ".join(conditions), parameters


def first_month_of_window(months: int, today: date) -> date:
    month_index = today.year * 12 + today.month - 1 - (months - 1)
    return date(month_index // 12, month_index % 12 + 1, 1)


def analytics_filter(
    currency: Annotated[str | None, Query()] = None,
    external_customer_id: Annotated[str | None, Query()] = None,
    months: Annotated[int | None, Query(ge=1, le=1200)] = None,
) -> AnalyticsFilter:
    if currency is not None and not CURRENCY_CODE.match(currency):
        raise ValidationFailed({"currency": ["value_is_invalid"]})
    return AnalyticsFilter(currency, external_customer_id, months)


Filters = Annotated[AnalyticsFilter, Depends(analytics_filter)]


def lago_month(month: date) -> str:
    return f"{month:%Y-%m-%d}T00:00:00.000Z"


def _monthly_row(row: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A mart row as Lago shows it: its month and currency, then ``fields``."""
    return {"month": lago_month(row["month"]), "currency": row["currency"], **fields}


class AnalyticsNotAvailable(ApiError):
    """Before the first analytics build there is no mart to read: saying so beats a 500, and an
    empty list would pass for an organization without revenue."""

    def __init__(self) -> None:
        super().__init__(
            503,
            "analytics_not_available",
            message="analytics marts not built yet: run `meterhouse rate analytics`",
        )


def _query(store: Store, sql: str, parameters: dict[str, Any]) -> list[dict[str, Any]]:
    try:
        result = store.client.query(sql, parameters=parameters)
    except DatabaseError as error:
        if is_unknown_table(error):
            raise AnalyticsNotAvailable() from error
        raise
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


@router.get("/gross_revenue")
def gross_revenue(store: Store, caller: CurrentCaller, filters: Filters) -> dict[str, Any]:
    """Finalized invoices by issuing month: totals minus refunds, and how many invoices."""
    where, parameters = filters.where(caller.organization_id)
    rows = _query(
        store,
        "select month, currency, sum(amount_cents) as amount_cents,"
        " sum(invoices_count) as invoices_count"
        f" from fct_gross_revenue_monthly where {where}"
        " group by month, currency order by month, currency",
        parameters,
    )
    return {
        "gross_revenues": [
            _monthly_row(
                r, amount_cents=int(r["amount_cents"]), invoices_count=int(r["invoices_count"])
            )
            for r in rows
        ]
    }


@router.get("/invoiced_usage")
def invoiced_usage(store: Store, caller: CurrentCaller, filters: Filters) -> dict[str, Any]:
    """Usage fees of finalized invoices by issuing month and billable metric code."""
    where, parameters = filters.where(caller.organization_id)
    rows = _query(
        store,
        "select month, currency, billable_metric_code, sum(amount_cents) as amount_cents"
        f" from fct_invoiced_usage_monthly where {where}"
        " group by month, currency, billable_metric_code"
        " order by month, currency, billable_metric_code",
        parameters,
    )
    return {
        "invoiced_usages": [
            _monthly_row(r, code=r["billable_metric_code"], amount_cents=int(r["amount_cents"]))
            for r in rows
        ]
    }


@router.get("/mrr")
def mrr(store: Store, caller: CurrentCaller, filters: Filters) -> dict[str, Any]:
    """MRR at each month end (subscriptions normalized to a month plus trailing-month usage)."""
    where, parameters = filters.where(caller.organization_id)
    # One customer's MRR is its own movements row; the company total is rounded once per month.
    if filters.external_customer_id is not None:
        source = "select month, currency, closing_mrr_cents as amount_cents from fct_mrr_movements"
    else:
        source = "select month, currency, mrr_cents as amount_cents from fct_saas_metrics_monthly"
    rows = _query(store, f"{source} where {where} order by month, currency", parameters)
    return {"mrrs": [_monthly_row(r, amount_cents=int(r["amount_cents"])) for r in rows]}


@router.get("/overdue_balance")
def overdue_balance(store: Store, caller: CurrentCaller, filters: Filters) -> dict[str, Any]:
    """What is owed on invoices past due, by the month they fell due, with the invoice ids."""
    where, parameters = filters.where(caller.organization_id)
    rows = _query(
        store,
        "select month, currency, sum(amount_cents) as amount_cents,"
        " arraySort(groupArrayArray(invoice_ids)) as invoice_ids"
        f" from fct_overdue_balances_monthly where {where}"
        " group by month, currency order by month, currency",
        parameters,
    )
    return {
        "overdue_balances": [
            _monthly_row(
                r,
                amount_cents=int(r["amount_cents"]),
                lago_invoice_ids=[str(invoice_id) for invoice_id in r["invoice_ids"]],
            )
            for r in rows
        ]
    }


@router.get("/invoice_collection")
def invoice_collection(store: Store, caller: CurrentCaller, filters: Filters) -> dict[str, Any]:
    """Finalized invoices by issuing month and payment status: count and total."""
    where, parameters = filters.where(caller.organization_id)
    rows = _query(
        store,
        "select month, currency, payment_status, sum(amount_cents) as amount_cents,"
        " sum(invoices_count) as invoices_count"
        f" from fct_invoice_collections_monthly where {where}"
        " group by month, currency, payment_status order by month, currency, payment_status",
        parameters,
    )
    return {
        "invoice_collections": [
            _monthly_row(
                r,
                payment_status=r["payment_status"],
                amount_cents=int(r["amount_cents"]),
                invoices_count=int(r["invoices_count"]),
            )
            for r in rows
        ]
    }

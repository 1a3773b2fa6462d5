"""Usage of a subscription's billing periods, read from the rating's marts.

The open period comes from ``fct_current_usage``, which rates it on read with the same macros as
``fct_fees``, and for pay-in-advance charges from ``fct_current_pay_in_advance_usage`` (what the
period's fees have billed so far), each read through its copy compiled for the catalog of the
last rating run (``*_in_use``) while the catalog has gained no feature since; closed periods come
from ``fct_fees``. Each usage row is a fee an invoice would hold, taxed with the tax codes the
rating gives it (the charge's taxes, else the plan's, else the customer's, else the
organization's) through the invoice's own tax step.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.exceptions import DatabaseError

from api.errors import ApiError
from api.storage.catalog import CatalogStore
from orchestration.invoices.compute import AppliedTax, FeeInput, FeeResult, Tax, apply_taxes
from warehouse.client import is_unknown_table
from warehouse.views import (
    RATED_ON_READ_SETTINGS,
    ViewNotFound,
    query_view_in_use,
    view_query,
)

# One row per charge x filter x group; both endpoints select these columns.
USAGE_COLUMNS = """
    organization_id, external_customer_id, subscription_id, period_from, period_to, billing_date,
    currency, charge_id, charge_model, invoice_display_name,
    charge_filter_id, filter_display_name, filter_values, billable_metric_id, billable_metric_code,
    billable_metric_name, aggregation_type, grouped_by, units, events_count, amount_cents, tax_codes
"""


def current_usage_sql(view: str) -> str:
    """The usage rows from ``view``, fct_current_usage's stored query, whose parameters are
    organization_ids, customers and external_subscription_id (``current_usage_parameters``;
    warehouse/views.py: why the query rather than the view)."""
    return f"""
SELECT {USAGE_COLUMNS}
FROM ({view})
ORDER BY organization_id, external_customer_id, subscription_id, billable_metric_code, charge_id,
    toString(charge_filter_id), toString(grouped_by)
"""


PAST_USAGE_SQL = f"""
SELECT {USAGE_COLUMNS}
FROM (
    SELECT
        f.organization_id AS organization_id, f.external_customer_id AS external_customer_id,
        assumeNotNull(f.subscription_id) AS subscription_id, f.period_from AS period_from,
        f.period_to AS period_to, f.billing_date AS billing_date,
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
    organization_id: uuid.UUID
    external_customer_id: str
    subscription_id: uuid.UUID
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
    try:
        result = store.client.query(sql, parameters=parameters, settings=RATED_ON_READ_SETTINGS)
    except DatabaseError as error:
        if is_unknown_table(error):  # past usage before the first rating run built fct_fees
            message = "no rating run yet: `meterhouse rate run` rates usage"
            raise UsageNotAvailable(message) from error
        raise
    return [UsageRow(*row) for row in result.result_rows]


class UsageNotAvailable(ApiError):
    """Before the first rating run there is nothing to rate an open period with."""

    def __init__(self, message: str) -> None:
        super().__init__(503, "usage_not_available", message=message)


# Whether any subscription of these customers (or the one named) is on a plan with a
# pay-in-advance charge: only then is their view worth a request's analysis.
PAY_IN_ADVANCE_CHARGES_SQL = """
SELECT count() > 0
FROM stg_warehouse__charges
WHERE organization_id IN {organization_ids:Array(UUID)} AND pay_in_advance = 1
    AND (organization_id, plan_id) IN (
        SELECT s.organization_id, s.plan_id
        FROM stg_warehouse__subscriptions AS s
        INNER JOIN stg_warehouse__customers AS c
            ON c.organization_id = s.organization_id AND c.customer_id = s.customer_id
        WHERE s.organization_id IN {organization_ids:Array(UUID)}
            AND has({customers:Array(Tuple(UUID, String))},
                (s.organization_id, c.external_customer_id))
            AND ({external_subscription_id:String} = ''
                OR s.external_subscription_id = {external_subscription_id:String})
    )
"""


def has_pay_in_advance_charges(store: CatalogStore, parameters: Mapping[str, Any]) -> bool:
    result = store.client.query(PAY_IN_ADVANCE_CHARGES_SQL, parameters=dict(parameters))
    return bool(result.result_rows[0][0])


def view_usage(store: CatalogStore, name: str, parameters: dict[str, Any]) -> list[UsageRow]:
    """The usage rows of current-usage view ``name`` (its stored query), read through its copy
    compiled for the catalog in use."""
    return query_view_in_use(
        store.client, name, lambda view: query_usage(store, current_usage_sql(view), parameters)
    )


def current_usage_parameters(
    customers: Sequence[tuple[uuid.UUID, str]], external_subscription_id: str = ""
) -> dict[str, Any]:
    """The current-usage views' parameters: these (organization id, external customer id)
    pairs, and one subscription of theirs or all of them (``external_subscription_id`` empty)."""
    return {
        "organization_ids": sorted({organization_id for organization_id, _ in customers}),
        "customers": list(customers),
        "external_subscription_id": external_subscription_id,
    }


def current_usage_rows(
    store: CatalogStore,
    organization_id: uuid.UUID,
    external_customer_ids: Sequence[str],
    external_subscription_id: str = "",
    *,
    pay_in_advance: bool = False,
) -> list[UsageRow]:
    """The open periods' usage rows of one subscription of these customers, or of all their
    subscriptions (``external_subscription_id`` empty); none without an open period.

    Arrears charges only, unless ``pay_in_advance``: their charges' rows come too, from their own
    view, read at the same time (each view's time is mostly its analysis, on one core)."""
    customers = [(organization_id, external_id) for external_id in external_customer_ids]
    return customers_usage_rows(
        store, customers, external_subscription_id, pay_in_advance=pay_in_advance
    )


def customers_usage_rows(
    store: CatalogStore,
    customers: Sequence[tuple[uuid.UUID, str]],
    external_subscription_id: str = "",
    *,
    pay_in_advance: bool = False,
) -> list[UsageRow]:
    """``current_usage_rows`` of customers of any organizations, as (organization id, external
    customer id) pairs, in one read."""
    parameters = current_usage_parameters(customers, external_subscription_id)
    try:
        if pay_in_advance:
            # Looked up first: the run that creates it creates the staging views the check reads.
            view_query(store.client, "fct_current_usage")
        if not (pay_in_advance and has_pay_in_advance_charges(store, parameters)):
            return view_usage(store, "fct_current_usage", parameters)
        views = ("fct_current_usage", "fct_current_pay_in_advance_usage")
        with ThreadPoolExecutor(max_workers=len(views)) as pool:
            results = list(pool.map(lambda view: view_usage(store, view, parameters), views))
    except ViewNotFound as missing:  # before the first rating run
        raise UsageNotAvailable(str(missing)) from missing
    # Each view's rows come in order; a stable sort on the charge keeps each charge's rows
    # together, in that order, whichever view they came from.
    return sorted(
        (row for rows in results for row in rows),
        key=lambda row: (
            str(row.organization_id),
            row.external_customer_id,
            str(row.subscription_id),
            row.billable_metric_code,
            str(row.charge_id),
        ),
    )


def organization_taxes(store: CatalogStore, organization_id: uuid.UUID) -> dict[str, Tax]:
    return {
        row["code"]: Tax(row["code"], row["rate"], row["name"])
        for row in store.select("taxes", organization_id)
    }


def taxed_fees(
    rows: Sequence[UsageRow], taxes: Mapping[str, Tax]
) -> tuple[list[FeeInput], list[FeeResult], list[AppliedTax]]:
    """The period's fees taxed as their invoice would tax them (the invoice's own tax step), with
    no coupon or credit to deduct: each tax once, on the sum of the fees it applies to. A usage row
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
    return fees, results, apply_taxes(fees, results)


def taxes_amount_cents(rows: Sequence[UsageRow], taxes: Mapping[str, Tax]) -> int:
    return sum(tax.amount_cents for tax in taxed_fees(rows, taxes)[2])

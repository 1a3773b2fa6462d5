"""The invoicing job, its hourly schedule and the sensor for late-closing billing days."""

# No "from __future__ import annotations": Dagster reads the resource annotations.

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from clickhouse_connect.driver.exceptions import DatabaseError
from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from orchestration.invoices.assets import invoice_payments, invoice_webhooks, invoices
from orchestration.resources import PaymentProvidersResource, WarehouseResource

invoicing_job = define_asset_job(
    "invoicing",
    selection=AssetSelection.assets(invoices, invoice_payments, invoice_webhooks),
    description="Freeze a billing day's fees into invoices and push them to payment providers.",
)


@schedule(
    job=invoicing_job,
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,  # invoicing runs as soon as the daemon does
)
def hourly_invoicing(context: ScheduleEvaluationContext) -> Iterator[RunRequest]:
    """Each hour, the current UTC day and the next (customers east of UTC reach it first)."""
    now = context.scheduled_execution_time or datetime.now(UTC)
    for day in (now.date(), now.date() + timedelta(days=1)):
        yield RunRequest(run_key=f"{day}@{now:%Y-%m-%dT%H}", partition_key=day.isoformat())


# Billing days with fees no invoice holds yet, or drafts whose grace period is over.
PENDING_DAYS_SQL = """
SELECT billing_date, count() AS pending FROM (
    SELECT billing_date FROM {fees}
    WHERE invoiceable = 1 AND billing_date <= %(horizon)s
      AND (organization_id, fee_id) NOT IN (SELECT organization_id, id FROM invoice_fees)
    UNION ALL
    SELECT billing_date FROM invoices FINAL
    WHERE status = 'draft' AND grace_period_ends_on <= %(today)s
)
GROUP BY billing_date ORDER BY billing_date
"""


def pending_billing_days(warehouse: WarehouseResource, today: date) -> list[tuple[date, int]]:
    sql = PENDING_DAYS_SQL.replace("{fees}", warehouse.settings().invoicing_fees_table)
    rows = warehouse.client().query(
        sql, parameters={"today": today, "horizon": today + timedelta(days=1)}
    )
    return [(row[0], int(row[1])) for row in rows.result_rows]


@sensor(job=invoicing_job, minimum_interval_seconds=300, default_status=DefaultSensorStatus.RUNNING)
def late_billing_days(
    context: SensorEvaluationContext, warehouse: WarehouseResource
) -> Iterator[RunRequest | SkipReason]:
    """Periods that closed late (late events, re-rating, backfilled subscriptions) and drafts due.

    The run key includes what is pending, so a day is requested again only when that changes.
    """
    try:
        pending_days = pending_billing_days(warehouse, datetime.now(UTC).date())
    except DatabaseError as error:
        if "UNKNOWN_TABLE" not in str(error):
            raise
        yield SkipReason("no rating mart yet: nothing to invoice")
        return
    for day, pending in pending_days:
        yield RunRequest(run_key=f"{day}:{pending}", partition_key=day.isoformat())


def invoicing_definitions() -> Definitions:
    """The invoicing part of the code location; ``meterhouse bill`` runs its job directly."""
    return Definitions(
        assets=[invoices, invoice_payments, invoice_webhooks],
        jobs=[invoicing_job],
        schedules=[hourly_invoicing],
        sensors=[late_billing_days],
        resources={
            "warehouse": WarehouseResource(),
            "payment_providers": PaymentProvidersResource(),
        },
    )

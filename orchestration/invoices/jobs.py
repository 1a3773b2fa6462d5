"""The invoicing job, its hourly schedule and the sensor for late-closing billing days."""

# No "from __future__ import annotations": Dagster reads the resource annotations.

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

from clickhouse_connect.driver.exceptions import DatabaseError
from dagster import (
    AssetSelection,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from orchestration.invoices.assets import (
    invoice_payments,
    invoice_webhooks,
    invoices,
    pay_in_advance_invoices,
    progressive_billing_invoices,
)
from orchestration.resources import PaymentProvidersResource, WarehouseResource
from warehouse.client import is_unknown_table

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


def invoicing_in_progress(context: SensorEvaluationContext) -> bool:
    """An invoicing run is executing: a backfill (`meterhouse bill`) or a run requested before."""
    running = context.instance.get_run_records(
        RunsFilter(
            job_name=invoicing_job.name,
            statuses=[DagsterRunStatus.STARTING, DagsterRunStatus.STARTED],
        ),
        limit=1,
    )
    return bool(running)


@sensor(job=invoicing_job, minimum_interval_seconds=300, default_status=DefaultSensorStatus.RUNNING)
def late_billing_days(
    context: SensorEvaluationContext, warehouse: WarehouseResource
) -> Iterator[RunRequest | SkipReason]:
    """Periods that closed late (late events, re-rating, backfilled subscriptions) and drafts due.

    The run key includes what is pending, so a day is requested again only when that changes.
    While an invoicing run executes it waits: the days pending meanwhile are mostly the ones
    that run is billing (a backfill of hundreds of days would otherwise be requested again, one
    run per day).
    """
    if invoicing_in_progress(context):
        yield SkipReason("an invoicing run is in progress")
        return
    try:
        pending_days = pending_billing_days(warehouse, datetime.now(UTC).date())
    except DatabaseError as error:
        if not is_unknown_table(error):
            raise
        yield SkipReason("no rating mart yet: nothing to invoice")
        return
    for day, pending in pending_days:
        yield RunRequest(run_key=f"{day}:{pending}", partition_key=day.isoformat())


pay_in_advance_job = define_asset_job(
    "pay_in_advance_invoicing",
    selection=AssetSelection.assets(pay_in_advance_invoices),
    description="Invoice pay-in-advance charge fees of newly ingested events.",
)

progressive_billing_job = define_asset_job(
    "progressive_billing",
    selection=AssetSelection.assets(progressive_billing_invoices),
    description="Issue progressive-billing invoices for crossed usage thresholds.",
)

# Events of invoiceable pay-in-advance charges / of subscriptions whose plan has usage thresholds,
# ingested after the cursor: their latest ingestion instant (1970 when there is none).
PAY_IN_ADVANCE_EVENTS_SQL = """
SELECT max(ingested_at) FROM events
WHERE ingested_at > %(cursor)s AND (organization_id, code) IN (
    SELECT m.organization_id, m.code FROM billable_metrics AS m FINAL
    INNER JOIN (
        SELECT organization_id, billable_metric_id FROM charges FINAL
        WHERE is_deleted = 0 AND pay_in_advance = 1 AND invoiceable = 1
    ) AS c ON c.organization_id = m.organization_id AND c.billable_metric_id = m.id
    WHERE m.is_deleted = 0
)
"""
THRESHOLD_EVENTS_SQL = """
SELECT max(ingested_at) FROM events
WHERE ingested_at > %(cursor)s AND (organization_id, external_subscription_id) IN (
    SELECT organization_id, external_id FROM subscriptions FINAL
    WHERE is_deleted = 0 AND plan_id IN (
        SELECT plan_id FROM usage_thresholds FINAL WHERE is_deleted = 0
    )
)
"""
# Events are visible a little after their ingested_at (group commit): re-read that much before
# the cursor. Invoicing the same fees again issues nothing new.
INGESTION_OVERLAP = timedelta(seconds=60)
# Without a cursor (first evaluation), events of the last hour: older ones are the hourly run's.
FIRST_LOOKBACK = timedelta(hours=1)


def _view_missing(warehouse: WarehouseResource, view: str) -> bool:
    """Before the first rating run the views the runs read do not exist: wait for them."""
    return not warehouse.client().command(f"EXISTS TABLE {view}")


def _new_events_since(
    context: SensorEvaluationContext, warehouse: WarehouseResource, sql: str
) -> tuple[datetime, datetime] | None:
    """(read from, latest ingestion) of events past the cursor, or None when there are none."""
    cursor = (
        datetime.fromisoformat(context.cursor)
        if context.cursor
        else datetime.now(UTC) - FIRST_LOOKBACK
    )
    latest = warehouse.client().query(sql, parameters={"cursor": cursor}).result_rows[0][0]
    latest = latest if latest.tzinfo else latest.replace(tzinfo=UTC)
    if latest <= cursor:
        return None
    return cursor - INGESTION_OVERLAP, latest


def _events_window_or_skip(
    context: SensorEvaluationContext,
    warehouse: WarehouseResource,
    view: str,
    sql: str,
    nothing_new: str,
) -> tuple[datetime, datetime] | SkipReason:
    """The window of new events for an event sensor, or why it skips (its rating view is not
    built yet, or nothing new arrived)."""
    if _view_missing(warehouse, view):
        return SkipReason("no rating views yet: run meterhouse rate run")
    return _new_events_since(context, warehouse, sql) or SkipReason(nothing_new)


@sensor(
    job=pay_in_advance_job,
    minimum_interval_seconds=30,
    default_status=DefaultSensorStatus.RUNNING,
)
def pay_in_advance_events(
    context: SensorEvaluationContext, warehouse: WarehouseResource
) -> Iterator[RunRequest | SkipReason]:
    """New events of invoiceable pay-in-advance charges: invoice them without waiting an hour."""
    window = _events_window_or_skip(
        context, warehouse, "fct_pay_in_advance_fees_since", PAY_IN_ADVANCE_EVENTS_SQL,
        "no new pay-in-advance events",
    )  # fmt: skip
    if isinstance(window, SkipReason):
        yield window
        return
    since, latest = window
    yield RunRequest(
        run_key=f"pay-in-advance@{latest.isoformat()}",
        run_config={
            "ops": {
                pay_in_advance_invoices.op.name: {"config": {"ingested_after": since.isoformat()}}
            }
        },
    )
    context.update_cursor(latest.isoformat())


@sensor(
    job=progressive_billing_job,
    minimum_interval_seconds=60,
    default_status=DefaultSensorStatus.RUNNING,
)
def usage_threshold_crossings(
    context: SensorEvaluationContext, warehouse: WarehouseResource
) -> Iterator[RunRequest | SkipReason]:
    """New usage of subscriptions with thresholds: look for crossings (all subscriptions)."""
    window = _events_window_or_skip(
        context, warehouse, "fct_open_period_fees", THRESHOLD_EVENTS_SQL,
        "no new usage on subscriptions with usage thresholds",
    )  # fmt: skip
    if isinstance(window, SkipReason):
        yield window
        return
    _, latest = window
    yield RunRequest(run_key=f"thresholds@{latest.isoformat()}")
    context.update_cursor(latest.isoformat())


def invoicing_definitions() -> Definitions:
    """The invoicing part of the code location; ``meterhouse bill`` runs its job directly."""
    return Definitions(
        assets=[
            invoices,
            invoice_payments,
            invoice_webhooks,
            pay_in_advance_invoices,
            progressive_billing_invoices,
        ],
        jobs=[invoicing_job, pay_in_advance_job, progressive_billing_job],
        schedules=[hourly_invoicing],
        sensors=[late_billing_days, pay_in_advance_events, usage_threshold_crossings],
        resources={
            "warehouse": WarehouseResource(),
            "payment_providers": PaymentProvidersResource(),
        },
    )

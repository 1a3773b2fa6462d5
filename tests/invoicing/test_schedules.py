"""The hourly schedule and the late-billing-day sensor of the invoicing job."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from dagster import (
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)

from orchestration.invoices.billing import bill_day
from orchestration.invoices.jobs import (
    hourly_invoicing,
    invoicing_job,
    late_billing_days,
    pay_in_advance_events,
    usage_threshold_crossings,
)
from orchestration.resources import WarehouseResource
from tests.conftest import Warehouse
from tests.invoicing.catalog import Catalog, fresh_database


def test_schedule_runs_today_and_tomorrow_each_hour() -> None:
    context = build_schedule_context(
        scheduled_execution_time=datetime(2024, 3, 1, 10, 5, tzinfo=UTC)
    )
    requests = list(hourly_invoicing(context))  # type: ignore[arg-type]
    assert [r.partition_key for r in requests] == ["2024-03-01", "2024-03-02"]
    assert len({r.run_key for r in requests}) == 2


def test_sensor_requests_days_with_uninvoiced_fees_and_due_drafts(warehouse: Warehouse) -> None:
    client = fresh_database(warehouse)
    catalog = Catalog(client)
    catalog.organization()
    late = catalog.customer("late")
    drafty = catalog.customer("drafty", invoice_grace_period=2)
    today = datetime.now(UTC).date()
    catalog.fee(late, 100, date(2024, 1, 1))
    catalog.fee(drafty, 100, today - timedelta(days=5))
    bill_day(client, today - timedelta(days=5), now=datetime.now(UTC) - timedelta(days=5))
    resource = WarehouseResource(
        url=warehouse.url, user=warehouse.user, password=warehouse.password,
        database=client.database,
    )  # fmt: skip

    instance = DagsterInstance.ephemeral()

    def requested() -> list[RunRequest]:
        context = build_sensor_context(instance=instance, resources={"warehouse": resource})
        return list(late_billing_days(context))  # type: ignore[arg-type]

    first = requested()
    assert sorted(r.partition_key or "" for r in first) == [
        "2024-01-01",
        (today - timedelta(days=5)).isoformat(),
    ]
    # While an invoicing run (a `meterhouse bill` backfill) executes, nothing is requested.
    backfill = instance.add_run(
        DagsterRun(job_name=invoicing_job.name, status=DagsterRunStatus.STARTED)
    )
    (waiting,) = requested()
    assert isinstance(waiting, SkipReason)
    instance.report_run_canceled(backfill)  # it ended: the sensor requests again
    assert len(requested()) == 2
    bill_day(client, date(2024, 1, 1), now=datetime.now(UTC))
    bill_day(client, today - timedelta(days=5), now=datetime.now(UTC))
    assert requested() == []


def test_sensor_skips_before_the_rating_mart_exists(warehouse: Warehouse) -> None:
    client = fresh_database(warehouse)
    client.command("DROP TABLE fct_fees")
    resource = WarehouseResource(
        url=warehouse.url, user=warehouse.user, password=warehouse.password,
        database=client.database,
    )  # fmt: skip
    context = build_sensor_context(
        instance=DagsterInstance.ephemeral(), resources={"warehouse": resource}
    )
    (skipped,) = list(late_billing_days(context))  # type: ignore[arg-type]
    assert isinstance(skipped, SkipReason)


def test_event_sensors_wait_for_the_rating_views(warehouse: Warehouse) -> None:
    client = fresh_database(warehouse)  # migrated, never rated: no views yet
    resource = WarehouseResource(
        url=warehouse.url, user=warehouse.user, password=warehouse.password,
        database=client.database,
    )  # fmt: skip
    for sensor in (pay_in_advance_events, usage_threshold_crossings):
        context = build_sensor_context(resources={"warehouse": resource})
        (skipped,) = list(sensor(context))  # type: ignore[arg-type]
        assert isinstance(skipped, SkipReason)
        assert skipped.skip_message == "no rating views yet: run meterhouse rate run"
        assert context.cursor is None  # the events wait for the views

"""The invoice assets: daily partitions by billing date (the customer's local day)."""

# No "from __future__ import annotations": Dagster reads the config and resource annotations.

import warnings
from datetime import UTC, date, datetime
from typing import Any

from clickhouse_connect.driver.client import Client
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    BetaWarning,
    Config,
    DailyPartitionsDefinition,
    MaterializeResult,
    asset,
)

from orchestration.invoices.billing import bill_day
from orchestration.invoices.notifications import credit_notes_created, invoice_notifications
from orchestration.invoices.pay_in_advance import invoice_new_pay_in_advance_fees
from orchestration.invoices.payments import push_day
from orchestration.invoices.progressive import ProgressiveBilling
from orchestration.invoices.termination import issue_termination_credit_notes
from orchestration.resources import PaymentProvidersResource, WarehouseResource
from orchestration.webhooks import WebhookSender

# Back to 2020 so past periods can be billed; one day ahead because customers east of UTC reach
# a billing date before UTC does.
invoice_partitions = DailyPartitionsDefinition(start_date="2020-01-01", end_offset=2)

FEES_ASSET = AssetKey("fct_fees")
# The analytics models read the invoicing records as dbt sources named invoicing.<table>: the
# same keys here join the lineage.
KEY_PREFIX = "invoicing"
INVOICING_POOL = "invoicing"  # one invoicing run at a time: numbers are sequential


# A backfill runs up to a month of billing days in one run, day after day, in order.
BACKFILL_POLICY = BackfillPolicy.multi_run(max_partitions_per_run=31)
# The parameter is beta in Dagster: every process that loads these assets (`meterhouse bill`, the
# code location's servers) would print that for each of the three assets.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=BetaWarning)


def days_having(client: Client, table: str, condition: str, keys: list[str]) -> list[date]:
    """The partitions' days with a row of ``table`` matching ``condition``: a run over a range
    of days (a backfill) skips the others with this one query instead of a few per day."""
    days = [date.fromisoformat(key) for key in keys]
    if len(days) == 1:
        return days
    rows = client.query(
        f"SELECT DISTINCT billing_date FROM {table} "
        f"WHERE billing_date BETWEEN %(first)s AND %(last)s AND {condition}",
        parameters={"first": min(days), "last": max(days)},
    ).result_rows
    found = {row[0] for row in rows}
    return [day for day in days if day in found]


def days_with_invoices(client: Client, keys: list[str]) -> list[date]:
    return days_having(client, "invoices FINAL", "1", keys)


class InvoicingConfig(Config):
    as_of: str | None = None  # ISO instant deciding which grace periods are over; default now


def _as_of(config: InvoicingConfig) -> datetime:
    if config.as_of is None:
        return datetime.now(UTC)
    instant = datetime.fromisoformat(config.as_of)
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


@asset(
    partitions_def=invoice_partitions,
    deps=[FEES_ASSET],
    key_prefix=KEY_PREFIX,
    pool=INVOICING_POOL,
    group_name="invoicing",
    kinds={"clickhouse", "python"},
    backfill_policy=BACKFILL_POLICY,
)
def invoices(
    context: AssetExecutionContext, config: InvoicingConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    """Freeze the billing day's fees into invoices; finalize those past their grace period.
    First, the credit notes of ended pay-in-advance subscriptions, which those invoices take."""
    client, now = warehouse.client(), _as_of(config)
    fees_table = warehouse.settings().invoicing_fees_table
    notes = issue_termination_credit_notes(client, fees_table)
    if notes:
        WebhookSender.configured(client, warehouse.settings()).send(
            credit_notes_created(client, notes)
        )
    totals = {"fees": 0, "finalized": 0, "drafts": 0, "termination_credit_notes": len(notes)}
    # Days without invoiceable fees have nothing to bill (bill_day would return at once).
    for day in days_having(client, fees_table, "invoiceable = 1", context.partition_keys):
        result = bill_day(client, day, now=now, fees_table=fees_table)
        context.log.info(
            f"{day}: {result.fees} fees -> {result.finalized} finalized, {result.drafts} drafts"
        )
        totals["fees"] += result.fees
        totals["finalized"] += result.finalized
        totals["drafts"] += result.drafts
    return MaterializeResult(metadata=dict(totals))


@asset(
    partitions_def=invoice_partitions,
    deps=[invoices],
    key_prefix=KEY_PREFIX,
    pool=INVOICING_POOL,
    group_name="invoicing",
    kinds={"stripe"},
    backfill_policy=BACKFILL_POLICY,
    check_specs=[
        AssetCheckSpec(
            "no_failed_provider_pushes", asset=AssetKey([KEY_PREFIX, "invoice_payments"])
        )
    ],
)
def invoice_payments(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    payment_providers: PaymentProvidersResource,
) -> MaterializeResult:
    """Push the day's finalized invoices to their customers' payment providers."""
    client = warehouse.client()
    pushed, failed, errors = 0, 0, {}
    for day in days_with_invoices(client, context.partition_keys):
        for provider in payment_providers.providers():
            summary = push_day(client, provider, day)
            pushed, failed = pushed + summary.pushed, failed + summary.failed
            errors.update(summary.errors)
    # Still pending after every configured provider ran: the customer's provider is not
    # configured here. Visible, not silently waiting.
    unpushable = client.query(
        "SELECT count() FROM invoices FINAL WHERE status = 'finalized' "
        "AND provider_sync_status = 'pending' AND billing_date IN %(days)s",
        parameters={"days": list(context.partition_keys)},
    ).result_rows[0][0]
    return MaterializeResult(
        metadata={"pushed": pushed, "failed": failed, "unconfigured_provider": unpushable},
        check_results=[
            AssetCheckResult(
                check_name="no_failed_provider_pushes",
                passed=failed == 0 and unpushable == 0,
                severity=AssetCheckSeverity.ERROR,
                metadata={
                    "failed": failed,
                    "unconfigured_provider": unpushable,
                    "errors": str(errors)[:2000],
                },
            )
        ],
    )


def invoicing_run_config(as_of: str | None) -> dict[str, Any]:
    """Run config of the invoicing job: ``as_of`` decides which grace periods are over."""
    if as_of is None:
        return {}
    return {"ops": {invoices.op.name: {"config": {"as_of": as_of}}}}


@asset(
    partitions_def=invoice_partitions,
    deps=[invoices],
    key_prefix=KEY_PREFIX,
    group_name="invoicing",
    kinds={"python"},
    backfill_policy=BACKFILL_POLICY,
)
def invoice_webhooks(
    context: AssetExecutionContext, warehouse: WarehouseResource
) -> MaterializeResult:
    """invoice.created / invoice.finalized to the organizations' webhook endpoints."""
    sender = WebhookSender.configured(warehouse.client(), warehouse.settings())
    counts = {"succeeded": 0, "failed": 0, "skipped": 0}
    for day in days_with_invoices(sender.client, context.partition_keys):
        for outcome, count in sender.send(invoice_notifications(sender, day)).items():
            counts[outcome] += count
    return MaterializeResult(metadata={f"webhooks_{k}": v for k, v in counts.items()})


class PayInAdvanceConfig(Config):
    ingested_after: str  # ISO instant: events ingested after it are invoiced
    as_of: str | None = None  # ISO instant deciding which grace periods are over; default now


@asset(
    deps=[AssetKey("fct_pay_in_advance_fees_since")],
    key_prefix=KEY_PREFIX,
    pool=INVOICING_POOL,
    group_name="invoicing",
    kinds={"clickhouse", "python"},
)
def pay_in_advance_invoices(
    context: AssetExecutionContext, config: PayInAdvanceConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    """Invoice pay-in-advance charge fees as their events arrive (one invoice per event)."""
    since = datetime.fromisoformat(config.ingested_after)
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    now = _as_of(InvoicingConfig(as_of=config.as_of))
    results = invoice_new_pay_in_advance_fees(warehouse.client(), since, now)
    for result in results:
        context.log.info(
            f"{result.day}: {result.fees} fees -> {result.finalized} finalized, "
            f"{result.drafts} drafts"
        )
    return MaterializeResult(
        metadata={
            "fees": sum(r.fees for r in results),
            "finalized": sum(r.finalized for r in results),
            "drafts": sum(r.drafts for r in results),
        }
    )


@asset(
    deps=[AssetKey("fct_open_period_fees"), FEES_ASSET],
    key_prefix=KEY_PREFIX,
    pool=INVOICING_POOL,
    group_name="invoicing",
    kinds={"clickhouse", "python"},
)
def progressive_billing_invoices(
    context: AssetExecutionContext, config: InvoicingConfig, warehouse: WarehouseResource
) -> MaterializeResult:
    """A progressive-billing invoice for every subscription whose usage crossed a threshold."""
    billing = ProgressiveBilling(warehouse.client(), warehouse.settings().invoicing_fees_table)
    issued = billing.issue(_as_of(config))
    for record in issued:
        context.log.info(
            f"{record.number}: {record.grouping_key} bills "
            f"{record.computation.fees_amount_cents} {record.currency} minor units"
        )
    return MaterializeResult(metadata={"invoices": len(issued)})

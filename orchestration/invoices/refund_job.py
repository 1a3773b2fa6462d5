"""Credit note refunds the payment provider never accepted, retried every 10 minutes, and an
asset check that fails while any refund stands failed."""

# No "from __future__ import annotations": Dagster reads the resource annotations.

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetSelection,
    DefaultScheduleStatus,
    Definitions,
    MaterializeResult,
    ScheduleDefinition,
    asset,
    define_asset_job,
)

from api.storage.invoices import InvoiceRecords
from orchestration.invoices.notifications import refund_status_events
from orchestration.invoices.refunds import retry_refunds
from orchestration.resources import PaymentProvidersResource, WarehouseResource
from orchestration.webhooks import WebhookSender

KEY_PREFIX = "invoicing"
CHECK = "no_failed_refunds"


@asset(
    key_prefix=KEY_PREFIX,
    group_name="invoicing",
    kinds={"stripe"},
    check_specs=[AssetCheckSpec(CHECK, asset=AssetKey([KEY_PREFIX, "credit_note_refunds"]))],
)
def credit_note_refunds(
    warehouse: WarehouseResource, payment_providers: PaymentProvidersResource
) -> MaterializeResult:
    """Send again the refunds whose provider call failed (or never happened), then report the
    credit notes whose refund is failed: those need someone (PUT /api/v1/credit_notes/{id})."""
    client = warehouse.client()
    providers = {provider.name: provider for provider in payment_providers.providers()}
    outcomes = retry_refunds(client, providers)
    sender = WebhookSender.configured(client, warehouse.settings())
    # A retry that failed again left the note unchanged: same revision, no second webhook.
    settled = [(o.organization_id, o.credit_note_id) for o in outcomes if o.status != "pending"]
    sender.send(refund_status_events(InvoiceRecords(client), settled))
    failed = client.query(
        "SELECT toString(id), number FROM credit_notes FINAL WHERE refund_status = 'failed' "
        "ORDER BY created_at LIMIT 100"
    ).result_rows
    return MaterializeResult(
        metadata={
            "retried": len(outcomes),
            "retried_succeeded": sum(1 for o in outcomes if o.status == "succeeded"),
            "retried_failed": sum(1 for o in outcomes if o.status == "failed"),
        },
        check_results=[
            AssetCheckResult(
                check_name=CHECK,
                passed=not failed,
                severity=AssetCheckSeverity.ERROR,
                metadata={"failed_refunds": len(failed), "credit_notes": str(failed)[:2000]},
            )
        ],
    )


refund_job = define_asset_job(
    "credit_note_refunds",
    selection=AssetSelection.assets(credit_note_refunds),
    description="Retry credit note refunds at the payment providers.",
)


refund_retries = ScheduleDefinition(
    name="refund_retries",
    job=refund_job,
    cron_schedule="*/10 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)


def refund_definitions() -> Definitions:
    """Resources come from ``invoicing_definitions`` (same keys) when merged."""
    return Definitions(assets=[credit_note_refunds], jobs=[refund_job], schedules=[refund_retries])

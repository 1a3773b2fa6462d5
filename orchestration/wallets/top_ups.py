"""Wallets' recurring top-ups (api/services/wallet_top_ups.py), run every hour."""

# No "from __future__ import annotations": Dagster reads the resource annotations.

from datetime import UTC, datetime

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    Definitions,
    MaterializeResult,
    RunRequest,
    ScheduleEvaluationContext,
    asset,
    define_asset_job,
    schedule,
)

from api.services.wallet_top_ups import run_top_ups
from api.services.wallets import transaction_notifications
from api.storage.catalog import CatalogStore
from orchestration.resources import WarehouseResource
from orchestration.webhooks import WebhookSender


@asset(key_prefix="wallets", group_name="wallets")
def wallet_top_ups(warehouse: WarehouseResource) -> MaterializeResult:
    """The recurring transaction rules due now: interval rules on their anniversaries, threshold
    rules whose wallet's ongoing balance fell to the threshold."""
    client = warehouse.client()
    movements = run_top_ups(CatalogStore(client), datetime.now(UTC))
    secret = warehouse.settings().webhook_signing_secret
    sender = WebhookSender(
        client,
        signing_secret=secret.get_secret_value() if secret else None,
        attempts=warehouse.settings().webhook_max_attempts,
    )
    sender.send(transaction_notifications(movements, "wallet_transaction.created"))
    return MaterializeResult(
        metadata={
            "purchases": sum(1 for m in movements if m["transaction_status"] == "purchased"),
            "grants": sum(1 for m in movements if m["transaction_status"] == "granted"),
        }
    )


wallet_top_ups_job = define_asset_job(
    "wallet_top_ups",
    selection=AssetSelection.assets(wallet_top_ups),
    description="Top up the wallets whose recurring transaction rules are due.",
)


@schedule(
    job=wallet_top_ups_job,
    cron_schedule="15 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)
def hourly_wallet_top_ups(context: ScheduleEvaluationContext) -> RunRequest:
    return RunRequest()


def wallet_definitions() -> Definitions:
    """Resources come from ``invoicing_definitions`` (same keys) when merged."""
    return Definitions(
        assets=[wallet_top_ups], jobs=[wallet_top_ups_job], schedules=[hourly_wallet_top_ups]
    )

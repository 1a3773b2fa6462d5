"""Wallets' ongoing balances refreshed every hour (api/services/wallet_refresh.py): depleted
wallets notified, recurring transaction rules that are due run."""

# No "from __future__ import annotations": Dagster reads the resource annotations.

from datetime import UTC, datetime

from dagster import (
    AssetSelection,
    DefaultScheduleStatus,
    Definitions,
    MaterializeResult,
    ScheduleDefinition,
    asset,
    define_asset_job,
)

from api.services.wallet_refresh import refresh_wallets
from api.services.wallets import transaction_notifications
from api.storage.catalog import CatalogStore
from orchestration.resources import WarehouseResource
from orchestration.webhooks import WebhookSender


@asset(key_prefix="wallets", group_name="wallets")
def wallet_ongoing_balances(warehouse: WarehouseResource) -> MaterializeResult:
    """Every active wallet's ongoing balance: ``wallet.depleted_ongoing_balance`` once it falls
    to zero, and the top-ups its recurring transaction rules call for (interval rules on their
    anniversaries, threshold rules at their threshold); wallets past their expiration
    terminated."""
    client = warehouse.client()
    refresh = refresh_wallets(CatalogStore(client), datetime.now(UTC))
    WebhookSender.configured(client, warehouse.settings()).send(
        refresh.depleted
        + transaction_notifications(refresh.movements, "wallet_transaction.created")
    )
    return MaterializeResult(
        metadata={
            "depleted_wallets": len(refresh.depleted),
            "terminated_wallets": len(refresh.terminated),
            "purchases": sum(m["transaction_status"] == "purchased" for m in refresh.movements),
            "grants": sum(m["transaction_status"] == "granted" for m in refresh.movements),
        }
    )


wallet_ongoing_balances_job = define_asset_job(
    "wallet_ongoing_balances",
    selection=AssetSelection.assets(wallet_ongoing_balances),
    description="Refresh wallets' ongoing balances: depletion webhooks and recurring top-ups.",
)


hourly_wallet_ongoing_balances = ScheduleDefinition(
    name="hourly_wallet_ongoing_balances",
    job=wallet_ongoing_balances_job,
    cron_schedule="15 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)


def wallet_definitions() -> Definitions:
    """Resources come from ``invoicing_definitions`` (same keys) when merged."""
    return Definitions(
        assets=[wallet_ongoing_balances],
        jobs=[wallet_ongoing_balances_job],
        schedules=[hourly_wallet_ongoing_balances],
    )

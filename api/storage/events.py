"""Reads of stored events for the billing API (the ingest service writes them)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from clickhouse_connect.driver.client import Client

# Lago's dedup rule, as the rating applies it (stg_warehouse__events): one event per (organization,
# subscription, transaction_id), the latest ingested version. A transaction_id used under
# several subscriptions answers with the most recently ingested of them.
LATEST_EVENT_SQL = """
SELECT
    external_subscription_id,
    latest.1 AS external_customer_id, latest.2 AS code, latest.3 AS timestamp,
    latest.4 AS precise_total_amount_cents, latest.5 AS raw, latest.6 AS ingested_at
FROM (
    SELECT
        external_subscription_id,
        argMax(tuple(external_customer_id, code, timestamp, precise_total_amount_cents, raw,
                     ingested_at), ingested_at) AS latest
    FROM events
    WHERE organization_id = {org:UUID} AND transaction_id = {transaction_id:String}
    GROUP BY external_subscription_id
)
ORDER BY ingested_at DESC, external_subscription_id
LIMIT 1
"""

# The subscription an event at ``at`` belongs to: the one of that external id running then,
# else the latest started (an event may precede or outlive its subscription).
EVENT_SUBSCRIPTION_SQL = """
SELECT id, customer_id
FROM subscriptions FINAL
WHERE organization_id = {org:UUID} AND is_deleted = 0 AND external_id = {external_id:String}
    AND started_at IS NOT NULL
ORDER BY (started_at <= {at:DateTime64(3, 'UTC')}
          AND (terminated_at IS NULL OR terminated_at >= {at:DateTime64(3, 'UTC')})) DESC,
    started_at DESC
LIMIT 1
"""


@dataclass(frozen=True)
class StoredEvent:
    external_subscription_id: str
    external_customer_id: str
    code: str
    timestamp: datetime
    precise_total_amount_cents: Decimal | None
    raw: str
    ingested_at: datetime


def latest_event(
    client: Client, organization_id: uuid.UUID, transaction_id: str
) -> StoredEvent | None:
    result = client.query(
        LATEST_EVENT_SQL, parameters={"org": organization_id, "transaction_id": transaction_id}
    )
    return StoredEvent(*result.result_rows[0]) if result.result_rows else None


def event_subscription(
    client: Client, organization_id: uuid.UUID, external_subscription_id: str, at: datetime
) -> tuple[uuid.UUID, uuid.UUID] | None:
    """(subscription id, customer id) of the subscription an event belongs to, if any."""
    result = client.query(
        EVENT_SUBSCRIPTION_SQL,
        parameters={"org": organization_id, "external_id": external_subscription_id, "at": at},
    )
    if not result.result_rows:
        return None
    subscription_id, customer_id = result.result_rows[0]
    return subscription_id, customer_id

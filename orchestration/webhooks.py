"""Outgoing webhooks to the organization's endpoints (Lago's shape), signed, retried, logged.

Body: ``{"webhook_type": ..., "object_type": ..., <object_type>: {...}}``. Signature: header
``X-Lago-Signature`` = base64(HMAC-SHA256(body, organization key)) with
``X-Lago-Signature-Algorithm: hmac``; the organization key is HMAC-SHA256(signing secret,
organization id), so each organization verifies with its own key. Every attempt is a row in
``webhook_deliveries``; a delivery that succeeded once is never sent again (re-runs are quiet).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import httpx
from clickhouse_connect.driver.client import Client

from orchestration.invoices.ids import record_id
from warehouse.settings import Settings

IDS_PER_QUERY = 2000


@dataclass(frozen=True)
class Notification:
    organization_id: UUID
    webhook_type: str  # invoice.created | invoice.finalized | invoice.payment_status_updated ...
    object_type: str  # invoice | credit_note
    object_id: UUID
    payload: dict[str, Any]
    # Tells apart notifications of one type about one object that are each sent once (a credit
    # note's refund status: pending, then failed, then succeeded); empty for the others.
    revision: str = ""


def organization_key(signing_secret: str, organization_id: UUID) -> bytes:
    return hmac.new(signing_secret.encode(), str(organization_id).encode(), hashlib.sha256).digest()


def signature(key: bytes, body: bytes) -> str:
    return base64.b64encode(hmac.new(key, body, hashlib.sha256).digest()).decode()


def _delivery_id(notification: Notification, url: str) -> UUID:
    revision = (notification.revision,) if notification.revision else ()
    return record_id("webhook", notification.webhook_type, notification.object_id, url, *revision)


class WebhookSender:
    def __init__(
        self,
        client: Client,
        *,
        signing_secret: str | None,
        attempts: int = 3,
        base_delay_s: float = 0.5,
        timeout_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.signing_secret = signing_secret
        self.attempts = attempts
        self.base_delay_s = base_delay_s
        self.timeout_s = timeout_s
        self.sleep = sleep

    @classmethod
    def configured(cls, client: Client, settings: Settings) -> WebhookSender:
        """The sender the deployment's settings describe: signing secret and attempts."""
        secret = settings.webhook_signing_secret
        return cls(
            client,
            signing_secret=secret.get_secret_value() if secret else None,
            attempts=settings.webhook_max_attempts,
        )

    def endpoints(self, organization_ids: set[UUID]) -> dict[UUID, list[tuple[str, list[str]]]]:
        """Each organization's endpoint URLs with the event types they want (empty: all)."""
        if not organization_ids:
            return {}
        rows = self.client.query(
            """
            SELECT organization_id, webhook_url, event_types FROM webhook_endpoints FINAL
            WHERE is_deleted = 0 AND organization_id IN %(orgs)s
            UNION ALL
            SELECT organization_id, assumeNotNull(webhook_url), [] FROM organizations FINAL
            WHERE is_deleted = 0 AND organization_id IN %(orgs)s AND ifNull(webhook_url, '') != ''
            """,
            parameters={"orgs": [str(o) for o in organization_ids]},
        ).result_rows
        endpoints: dict[UUID, list[tuple[str, list[str]]]] = {}
        for organization_id, url, event_types in rows:
            known = endpoints.setdefault(organization_id, [])
            if url not in [u for u, _ in known]:
                known.append((url, list(event_types)))
        return endpoints

    def _delivered(self, delivery_ids: list[UUID]) -> set[UUID]:
        delivered: set[UUID] = set()
        for start in range(0, len(delivery_ids), IDS_PER_QUERY):  # below max_query_size
            batch = delivery_ids[start : start + IDS_PER_QUERY]
            rows = self.client.query(
                "SELECT DISTINCT id FROM webhook_deliveries WHERE status = 'succeeded' "
                "AND id IN %(ids)s",
                parameters={"ids": [str(i) for i in batch]},
            ).result_rows
            delivered.update(row[0] for row in rows)
        return delivered

    def send(self, notifications: Sequence[Notification]) -> dict[str, int]:
        """Deliver every notification to every interested endpoint; counts by outcome."""
        endpoints = self.endpoints({n.organization_id for n in notifications})
        planned = [
            (notification, url, _delivery_id(notification, url))
            for notification in notifications
            for url, types in endpoints.get(notification.organization_id, [])
            if not types or notification.webhook_type in types
        ]  # fmt: skip
        done = self._delivered([delivery_id for _, _, delivery_id in planned])
        counts = {"succeeded": 0, "failed": 0, "skipped": len(done)}
        for notification, url, delivery_id in planned:
            if delivery_id not in done:
                outcome = self._deliver(notification, url, delivery_id)
                counts[outcome] += 1
        return counts

    def _deliver(self, notification: Notification, url: str, delivery_id: UUID) -> str:
        body = json.dumps(
            {
                "webhook_type": notification.webhook_type,
                "object_type": notification.object_type,
                notification.object_type: notification.payload,
            },
            default=str,
        ).encode()
        headers = {"Content-Type": "application/json"}
        if self.signing_secret:
            key = organization_key(self.signing_secret, notification.organization_id)
            headers["X-Lago-Signature"] = signature(key, body)
            headers["X-Lago-Signature-Algorithm"] = "hmac"
        for attempt in range(1, self.attempts + 1):
            status, error = self._post(url, body, headers)
            succeeded = status is not None and 200 <= status < 300
            self._log(notification, url, delivery_id, body, attempt, succeeded, status, error)
            if succeeded:
                return "succeeded"
            if attempt < self.attempts:
                self.sleep(self.base_delay_s * 2 ** (attempt - 1))
        return "failed"

    def _post(
        self, url: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int | None, str | None]:
        try:
            response = httpx.post(url, content=body, headers=headers, timeout=self.timeout_s)
        except httpx.HTTPError as error:
            return None, str(error)[:500]
        return response.status_code, None if response.is_success else response.text[:500]

    def _log(
        self,
        notification: Notification,
        url: str,
        delivery_id: UUID,
        body: bytes,
        attempt: int,
        succeeded: bool,
        status: int | None,
        error: str | None,
    ) -> None:
        self.client.insert(
            "webhook_deliveries",
            [[notification.organization_id, delivery_id, notification.webhook_type,
              notification.object_type, notification.object_id, url, body.decode(), attempt,
              "succeeded" if succeeded else "failed", status, error, datetime.now(UTC)]],
            column_names=["organization_id", "id", "webhook_type", "object_type", "object_id",
                          "endpoint_url", "payload", "attempt", "status", "http_status", "error",
                          "created_at"],
        )  # fmt: skip

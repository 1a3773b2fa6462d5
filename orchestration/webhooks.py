"""Outgoing webhooks to the organization's endpoints (Lago's shape), signed, retried, logged.

Body: ``{"webhook_type": ..., "object_type": ..., <object_type>: {...}}``. Signature, by the
endpoint's ``signature_algo`` (``X-Lago-Signature-Algorithm``), in ``X-Lago-Signature``:

- ``jwt`` (Lago's default): an RS256 JWT of ``{"data": <body>, "iss": <issuer>}`` signed with the
  deployment's RSA key, whose public key the billing API serves at
  ``/api/v1/webhooks/json_public_key`` (what lago-python-client's ``webhooks.public_key()`` reads);
- ``hmac``: base64(HMAC-SHA256(body, organization key)); the organization key is
  HMAC-SHA256(signing secret, organization id), so each organization verifies with its own key.
  The organization's own ``webhook_url`` is signed this way.

Without the algorithm's key a webhook goes unsigned. ``X-Lago-Unique-Key`` carries the delivery's
id, the same on every attempt. Every attempt is a row in ``webhook_deliveries``; a delivery that
succeeded once is never sent again (re-runs are quiet).
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
import jwt
from clickhouse_connect.driver.client import Client
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from orchestration.invoices.ids import record_id, stored_ids
from warehouse.settings import Settings


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


def jwt_signature(key: rsa.RSAPrivateKey, issuer: str, body: bytes) -> str:
    return jwt.encode({"data": body.decode(), "iss": issuer}, key, algorithm="RS256")


def load_rsa_private_key(text: str) -> rsa.RSAPrivateKey:
    """A PEM private key, or the base64 of one (as Lago's LAGO_RSA_PRIVATE_KEY holds it: an
    environment variable of one line)."""
    pem = text.strip().encode()
    if not pem.startswith(b"-----BEGIN"):
        pem = base64.b64decode(pem)
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("the webhook signing key is not an RSA key")
    return key


def public_key_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def new_rsa_private_key() -> str:
    """A 2048-bit RSA private key as the base64 of its PEM: one line, for an env file."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return base64.b64encode(pem).decode()


def configured_rsa_private_key(settings: Settings) -> rsa.RSAPrivateKey | None:
    secret = settings.webhook_rsa_private_key
    if not secret:
        return None
    try:
        return load_rsa_private_key(secret.get_secret_value())
    except (ValueError, TypeError) as error:  # binascii.Error is a ValueError
        raise ValueError(
            f"MH_WEBHOOK_RSA_PRIVATE_KEY is not an RSA private key (a PEM, or its base64): {error}"
        ) from None


@dataclass(frozen=True)
class Endpoint:
    url: str
    event_types: list[str]  # empty: every type
    signature_algo: str  # jwt | hmac


def _delivery_id(notification: Notification, url: str) -> UUID:
    revision = (notification.revision,) if notification.revision else ()
    return record_id("webhook", notification.webhook_type, notification.object_id, url, *revision)


class WebhookSender:
    def __init__(
        self,
        client: Client,
        *,
        signing_secret: str | None,
        rsa_private_key: rsa.RSAPrivateKey | None = None,
        jwt_issuer: str = "meterhouse",
        attempts: int = 3,
        base_delay_s: float = 0.5,
        timeout_s: float = 10.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.signing_secret = signing_secret
        self.rsa_private_key = rsa_private_key
        self.jwt_issuer = jwt_issuer
        self.attempts = attempts
        self.base_delay_s = base_delay_s
        self.timeout_s = timeout_s
        self.sleep = sleep

    @classmethod
    def configured(cls, client: Client, settings: Settings) -> WebhookSender:
        """The sender the deployment's settings describe: signing keys and attempts."""
        secret = settings.webhook_signing_secret
        return cls(
            client,
            signing_secret=secret.get_secret_value() if secret else None,
            rsa_private_key=configured_rsa_private_key(settings),
            jwt_issuer=settings.webhook_jwt_issuer,
            attempts=settings.webhook_max_attempts,
        )

    def endpoints(self, organization_ids: set[UUID]) -> dict[UUID, list[Endpoint]]:
        """Each organization's endpoints: URL, the event types they want, signature algorithm."""
        if not organization_ids:
            return {}
        rows = self.client.query(
            """
            SELECT organization_id, webhook_url, event_types, signature_algo
            FROM webhook_endpoints FINAL
            WHERE is_deleted = 0 AND organization_id IN %(orgs)s
            UNION ALL
            SELECT organization_id, assumeNotNull(webhook_url), [], 'hmac' FROM organizations FINAL
            WHERE is_deleted = 0 AND organization_id IN %(orgs)s AND ifNull(webhook_url, '') != ''
            """,
            parameters={"orgs": [str(o) for o in organization_ids]},
        ).result_rows
        endpoints: dict[UUID, list[Endpoint]] = {}
        for organization_id, url, event_types, signature_algo in rows:
            known = endpoints.setdefault(organization_id, [])
            if url not in [endpoint.url for endpoint in known]:
                known.append(Endpoint(url, list(event_types), signature_algo))
        return endpoints

    def send(self, notifications: Sequence[Notification]) -> dict[str, int]:
        """Deliver every notification to every interested endpoint; counts by outcome."""
        endpoints = self.endpoints({n.organization_id for n in notifications})
        planned = [
            (notification, endpoint, _delivery_id(notification, endpoint.url))
            for notification in notifications
            for endpoint in endpoints.get(notification.organization_id, [])
            if not endpoint.event_types or notification.webhook_type in endpoint.event_types
        ]  # fmt: skip
        done = stored_ids(
            self.client,
            "webhook_deliveries",
            [delivery_id for _, _, delivery_id in planned],
            "status = 'succeeded'",
        )
        counts = {"succeeded": 0, "failed": 0, "skipped": len(done)}
        for notification, endpoint, delivery_id in planned:
            if delivery_id not in done:
                outcome = self._deliver(notification, endpoint, delivery_id)
                counts[outcome] += 1
        return counts

    def _signature_headers(
        self, organization_id: UUID, signature_algo: str, body: bytes
    ) -> dict[str, str]:
        if signature_algo == "jwt" and self.rsa_private_key is not None:
            signed = jwt_signature(self.rsa_private_key, self.jwt_issuer, body)
        elif signature_algo == "hmac" and self.signing_secret:
            signed = signature(organization_key(self.signing_secret, organization_id), body)
        else:
            return {}
        return {"X-Lago-Signature": signed, "X-Lago-Signature-Algorithm": signature_algo}

    def _deliver(self, notification: Notification, endpoint: Endpoint, delivery_id: UUID) -> str:
        url = endpoint.url
        body = json.dumps(
            {
                "webhook_type": notification.webhook_type,
                "object_type": notification.object_type,
                notification.object_type: notification.payload,
            },
            default=str,
        ).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Lago-Unique-Key": str(delivery_id),
            **self._signature_headers(notification.organization_id, endpoint.signature_algo, body),
        }
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

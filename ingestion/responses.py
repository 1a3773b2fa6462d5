"""Response bodies: Lago's event shape and error envelope, serialized with orjson."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import orjson
from fastapi import Response

from ingestion.timetext import iso_text
from ingestion.validation import EventError, ValidEvent

# Namespace of the deterministic event ids (lago_id): UUIDv5 over the dedup key, so a retried
# event gets the id it got the first time.
EVENT_ID_NAMESPACE = uuid.UUID("6f1d4b1e-6a53-5c1f-9f5e-7a6d0c1e2b3a")


class JSONBody(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def event_id(organization_id: uuid.UUID, event: ValidEvent) -> str:
    """uuid5(EVENT_ID_NAMESPACE, "org/subscription/transaction"), without building UUID objects."""
    natural_key = f"{organization_id}/{event.external_subscription_id}/{event.transaction_id}"
    digest = bytearray(hashlib.sha1(EVENT_ID_NAMESPACE.bytes + natural_key.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    hex_ = digest.hex()
    return f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}"


def lago_event(organization_id: uuid.UUID, event: ValidEvent, created_at: str) -> dict[str, Any]:
    """One event as Lago's API returns it."""
    return {
        "lago_id": event_id(organization_id, event),
        "transaction_id": event.transaction_id,
        "lago_customer_id": None,
        "lago_subscription_id": None,
        "external_customer_id": event.external_customer_id,
        "external_subscription_id": event.external_subscription_id,
        "code": event.code,
        "timestamp": iso_text(event.timestamp_ms),
        "precise_total_amount_cents": event.precise_total_amount_cents,
        "properties": event.properties,
        "created_at": created_at,
    }


def validation_error(errors: list[EventError], *, batch: bool, **extra: Any) -> JSONBody:
    """422 in Lago's envelope; ``errors`` lists every problem as (index, field, reason)."""
    details: dict[str, Any] = {}
    for error in errors:
        target = details.setdefault(str(error.index), {}) if batch else details
        target.setdefault(error.field, []).append(error.reason)
    return JSONBody(
        {
            "status": 422,
            "error": "Unprocessable Entity",
            "code": "validation_errors",
            "error_details": details,
            "errors": [error.as_dict() for error in errors],
            **extra,
        },
        status_code=422,
    )


def error(status: int, title: str, code: str, **extra: Any) -> JSONBody:
    headers = {"Retry-After": str(extra.pop("retry_after"))} if "retry_after" in extra else None
    return JSONBody(
        {"status": status, "error": title, "code": code, **extra},
        status_code=status,
        headers=headers,
    )

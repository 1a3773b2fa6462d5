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


# Of the uuid5 digest's first 128 bits: clear the version and variant bits, then set them.
UUID_VERSION_VARIANT_CLEAR = ~((0xF << 76) | (0x3 << 62)) & ((1 << 128) - 1)
UUID5_VERSION_VARIANT = (0x5 << 76) | (0x2 << 62)  # version 5, RFC 4122 variant
_EVENT_ID_HASH = hashlib.sha1(EVENT_ID_NAMESPACE.bytes)


def event_id(organization_prefix: str, event: ValidEvent) -> str:
    """uuid5(EVENT_ID_NAMESPACE, "org/subscription/transaction"); the prefix is "org/".

    Computed as uuid.uuid5 does, without building UUID objects: it runs for every event answered.
    """
    digest = _EVENT_ID_HASH.copy()
    digest.update(
        f"{organization_prefix}{event.external_subscription_id}/{event.transaction_id}".encode()
    )
    number = int.from_bytes(digest.digest()[:16]) & UUID_VERSION_VARIANT_CLEAR
    hex_ = f"{number | UUID5_VERSION_VARIANT:032x}"
    return f"{hex_[:8]}-{hex_[8:12]}-{hex_[12:16]}-{hex_[16:20]}-{hex_[20:]}"


def lago_event(organization_id: uuid.UUID, event: ValidEvent, created_at: str) -> dict[str, Any]:
    """One event as Lago's API returns it."""
    return lago_events(organization_id, [event], created_at)[0]


def lago_events(
    organization_id: uuid.UUID, events: list[ValidEvent], created_at: str
) -> list[dict[str, Any]]:
    """Events as Lago's API returns them."""
    prefix = f"{organization_id}/"
    return [
        {
            "lago_id": event_id(prefix, event),
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
        for event in events
    ]


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

"""Response bodies: Lago's event shape and error envelope, serialized with orjson."""

from __future__ import annotations

import binascii
import hashlib
import struct
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


# uuid5 sets the version nibble (hex digit 12) to 5 and the variant bits of hex digit 16 to 10.
UUID5_VARIANT_DIGIT = {digit: f"{int(digit, 16) & 0x3 | 0x8:x}" for digit in "0123456789abcdef"}


class EventIds:
    """lago_id of an organization's events: uuid5(EVENT_ID_NAMESPACE, "org/subscription/txn").

    Computed as uuid.uuid5 does, from a hash already fed the namespace and the organization,
    without UUID objects or integer arithmetic: it runs for every event answered.
    """

    def __init__(self, organization_id: uuid.UUID) -> None:
        self._hash = hashlib.sha1(EVENT_ID_NAMESPACE.bytes + f"{organization_id}/".encode())

    def __call__(self, subscription: str, transaction_id: str) -> str:
        digest = self._hash.copy()
        digest.update(f"{subscription}/{transaction_id}".encode())
        h = digest.hexdigest()
        return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{UUID5_VARIANT_DIGIT[h[16]]}{h[17:20]}-{h[20:32]}"

    def many(self, subscriptions: list[str], transaction_ids: list[str]) -> list[str]:
        """The ids of many events, as ``__call__`` gives them, at half its cost per event.

        The version and variant bits of every digest are set at once, on all of them as one
        integer, and ``struct.iter_unpack`` cuts the hex text into each id's five groups
        (0.25 against 0.5 us per event with a regular expression, in-process): formatting each
        id cost more than hashing it.
        """
        new_digest = self._hash.copy
        digests = []
        for subscription, transaction_id in zip(subscriptions, transaction_ids, strict=True):
            digest = new_digest()
            digest.update(f"{subscription}/{transaction_id}".encode())
            digests.append(digest.digest())
        count = len(digests)
        if not count:
            return []
        clear, version_and_variant = (int.from_bytes(mask * count) for mask in UUID5_MASKS)
        stamped = int.from_bytes(b"".join(digests)) & clear | version_and_variant
        hex_digits = binascii.hexlify(stamped.to_bytes(20 * count))
        groups = struct.iter_unpack(UUID_GROUPS, hex_digits)
        return list(map(bytes.decode, map(b"-".join, groups)))


# A SHA-1 digest (40 hex digits) as a uuid5's text: the groups of its first 32 digits.
UUID_GROUPS = "8s4s4s4s12s8x"
# Per digest: the bits kept, then the bits set (version 5, variant 10).
UUID5_MASKS = (
    bytes.fromhex("ffffffffffff0fff3fffffffffffffff00000000"),
    bytes.fromhex("0000000000005000800000000000000000000000"),
)


def lago_event(organization_id: uuid.UUID, event: ValidEvent, created_at: str) -> dict[str, Any]:
    """One event as Lago's API returns it."""
    return lago_events(organization_id, [event], created_at)[0]


def lago_events(
    organization_id: uuid.UUID, events: list[ValidEvent], created_at: str
) -> list[dict[str, Any]]:
    """Events as Lago's API returns them."""
    event_id = EventIds(organization_id)
    return [
        lago_event_body(
            event_id(event.external_subscription_id, event.transaction_id),
            event.transaction_id,
            event.external_customer_id,
            event.external_subscription_id,
            event.code,
            iso_text(event.timestamp_ms),
            event.precise_total_amount_cents,
            event.properties,
            created_at,
        )
        for event in events
    ]


def lago_event_body(
    lago_id: str,
    transaction_id: str,
    external_customer_id: str | None,
    external_subscription_id: str,
    code: str,
    timestamp: str,
    precise_total_amount_cents: str | None,
    properties: dict[str, Any],
    created_at: str,
) -> dict[str, Any]:
    """One event in Lago's answer shape (positional: the batch reader calls it per event)."""
    return {
        "lago_id": lago_id,
        "transaction_id": transaction_id,
        "lago_customer_id": None,
        "lago_subscription_id": None,
        "external_customer_id": external_customer_id,
        "external_subscription_id": external_subscription_id,
        "code": code,
        "timestamp": timestamp,
        "precise_total_amount_cents": precise_total_amount_cents,
        "properties": properties,
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

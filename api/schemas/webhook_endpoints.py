"""Webhook endpoints: ``{"webhook_endpoint": {...}}``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from api.schemas.common import Body, RequiredText, ShortText, iso
from api.storage.catalog import Row


class WebhookEndpointInput(Body):
    webhook_url: Annotated[str, Field(max_length=1024)] | None = None
    signature_algo: Literal["jwt", "hmac"] | None = None
    name: ShortText | None = None
    event_types: Annotated[list[RequiredText], Field(max_length=200)] | None = None


class WebhookEndpointEnvelope(Body):
    webhook_endpoint: WebhookEndpointInput


def present_webhook_endpoint(row: Row) -> dict[str, Any]:
    return {
        "lago_id": str(row["id"]),
        "lago_organization_id": str(row["organization_id"]),
        "webhook_url": row["webhook_url"],
        "signature_algo": row["signature_algo"],
        "name": row["name"],
        "event_types": list(row["event_types"]) or None,
        "created_at": iso(row["created_at"]),
    }

"""Webhook endpoints: /api/v1/webhook_endpoints, addressed by lago_id."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import Caller, CurrentCaller, Store
from api.errors import FieldErrors
from api.pagination import Page
from api.schemas.organizations import is_http_url
from api.schemas.webhook_endpoints import (
    WebhookEndpointEnvelope,
    WebhookEndpointInput,
    present_webhook_endpoint,
)
from api.storage.catalog import CatalogStore, Row, new_row
from api.storage.lookups import find_by_id, is_taken

router = APIRouter(prefix="/api/v1/webhook_endpoints", tags=["webhook_endpoints"])
TABLE = "webhook_endpoints"
# Lago's limit of endpoints per organization.
MAX_ENDPOINTS = 10


def apply(store: CatalogStore, caller: Caller, row: Row, body: WebhookEndpointInput) -> Row:
    for field in ("webhook_url", "signature_algo", "name", "event_types"):
        if field in body.model_fields_set and getattr(body, field) is not None:
            row[field] = getattr(body, field)
    errors = FieldErrors()
    if not row["webhook_url"]:
        errors.add("webhook_url", "value_is_mandatory")
    elif not is_http_url(row["webhook_url"]):
        errors.add("webhook_url", "url_is_invalid")
    errors.raise_if_any()
    org = caller.organization_id
    if is_taken(store, TABLE, org, "webhook_url", row["webhook_url"], except_id=row["id"]):
        errors.add("webhook_url", "value_already_exist")
    errors.raise_if_any()
    store.write(TABLE, [row], changed_by=caller.actor)
    return row


@router.post("")
def create_endpoint(
    envelope: WebhookEndpointEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    org = caller.organization_id
    blank = new_row(org, webhook_url="", name=None, signature_algo="jwt", event_types=[])
    with store.locks.hold(org, TABLE):
        if store.count(TABLE, org) >= MAX_ENDPOINTS:
            errors = FieldErrors()
            errors.add("base", "exceeded_limit")
            errors.raise_if_any()
        row = apply(store, caller, blank, envelope.webhook_endpoint)
    return {"webhook_endpoint": present_webhook_endpoint(row)}


@router.put("/{lago_id}")
def update_endpoint(
    lago_id: str, envelope: WebhookEndpointEnvelope, store: Store, caller: CurrentCaller
) -> dict[str, Any]:
    with store.locks.hold(caller.organization_id, TABLE):
        current = find_by_id(
            store, TABLE, caller.organization_id, lago_id, resource="webhook_endpoint"
        )
        row = apply(store, caller, current, envelope.webhook_endpoint)
    return {"webhook_endpoint": present_webhook_endpoint(row)}


@router.get("/{lago_id}")
def get_endpoint(lago_id: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    row = find_by_id(store, TABLE, caller.organization_id, lago_id, resource="webhook_endpoint")
    return {"webhook_endpoint": present_webhook_endpoint(row)}


@router.delete("/{lago_id}")
def delete_endpoint(lago_id: str, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    row = find_by_id(store, TABLE, caller.organization_id, lago_id, resource="webhook_endpoint")
    store.delete(TABLE, [row], changed_by=caller.actor)
    return {"webhook_endpoint": present_webhook_endpoint(row)}


@router.get("")
def list_endpoints(page: Page, store: Store, caller: CurrentCaller) -> dict[str, Any]:
    org = caller.organization_id
    rows = store.select(TABLE, org, limit=page.per_page, offset=page.offset)
    return {
        "webhook_endpoints": [present_webhook_endpoint(r) for r in rows],
        "meta": page.meta(store.count(TABLE, org)),
    }

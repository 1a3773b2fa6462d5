"""Webhooks from payment providers: /webhooks/stripe, verified by signature, no API key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Header, Request

from api.deps import Store
from api.errors import ApiError
from api.routers.invoices import AppSettings, notify_payment_status
from api.storage.invoices import InvoiceRecords
from orchestration.invoices.payments import apply_payment_event
from orchestration.stripe.provider import InvalidWebhook
from orchestration.stripe.registry import configured_providers

router = APIRouter(prefix="/webhooks", tags=["payment providers"])


@router.post("/stripe")
async def stripe_webhook(
    request: Request,
    store: Store,
    settings: AppSettings,
    background: BackgroundTasks,
    stripe_signature: Annotated[str | None, Header()] = None,
) -> dict[str, Any]:
    """invoice.paid / invoice.payment_succeeded / invoice.payment_failed update payment status."""
    provider = configured_providers(settings).get("stripe")
    if provider is None:
        raise ApiError(404, "payment_provider_not_configured")
    payload = await request.body()
    try:
        event = provider.parse_webhook(payload, stripe_signature)
    except InvalidWebhook as error:
        raise ApiError(400, "invalid_signature", message=str(error)) from None
    applied = apply_payment_event(store.client, "stripe", event)
    if applied and event.payment_status and event.organization_id and event.invoice_id:
        records = InvoiceRecords(store.client)
        invoice = records.invoice(event.organization_id, str(event.invoice_id))
        if invoice is not None:
            notify_payment_status(background, settings, records, invoice)
    return {"received": True, "applied": applied, "event_type": event.event_type}

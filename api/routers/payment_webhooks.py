"""Webhooks from payment providers: /webhooks/stripe, verified by signature, no API key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Header, Request

from api.deps import Store
from api.errors import ApiError
from api.routers.invoices import AppSettings, notify_later, notify_payment_status
from api.storage.invoices import InvoiceRecords
from orchestration.invoices.notifications import refund_status_events
from orchestration.invoices.payments import apply_payment_event
from orchestration.invoices.refunds import apply_refund_updates
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
    """invoice.paid / invoice.payment_succeeded / invoice.payment_failed update payment status;
    refund.created / refund.updated / refund.failed / charge.refunded update refund status."""
    provider = configured_providers(settings).get("stripe")
    if provider is None:
        raise ApiError(404, "payment_provider_not_configured")
    payload = await request.body()
    try:
        event = provider.parse_webhook(payload, stripe_signature)
    except InvalidWebhook as error:
        raise ApiError(400, "invalid_signature", message=str(error)) from None
    applied = apply_payment_event(store.client, "stripe", event)
    records = InvoiceRecords(store.client)
    if applied and event.payment_status and event.organization_id and event.invoice_id:
        invoice = records.invoice(event.organization_id, str(event.invoice_id))
        if invoice is not None:
            notify_payment_status(background, settings, records, invoice)
    refunds = apply_refund_updates(store.client, "stripe", event.refunds)
    if refunds:
        changes = [(refund.organization_id, refund.credit_note_id) for refund in refunds]
        notify_later(background, settings, records, refund_status_events(records, changes))
    return {
        "received": True,
        "applied": applied or bool(refunds),
        "event_type": event.event_type,
    }

"""Stripe as a payment provider, on the official ``stripe`` SDK.

Every call carries an idempotency key derived from our ids, so a retry after a crash or a
re-run of an invoice partition returns the objects created the first time instead of new ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar
from uuid import UUID

import stripe

from orchestration.stripe.provider import (
    InvalidWebhook,
    PaymentEvent,
    ProviderCustomer,
    ProviderError,
    ProviderInvoice,
    ProviderRefund,
    PushResult,
    RefundRequest,
    RefundUpdate,
)
from orchestration.stripe.retry import with_retries

T = TypeVar("T")

# Errors worth another attempt: the network, rate limits and Stripe's own 5xx answers.
RETRYABLE_ERRORS: tuple[type[BaseException], ...] = (
    stripe.APIConnectionError,
    stripe.RateLimitError,
    stripe.APIError,
)

# Stripe's refund statuses as Lago's refund_status; anything else is still under way.
REFUND_STATUS = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed"}
REFUND_EVENTS = frozenset(
    {"refund.created", "refund.updated", "refund.failed", "charge.refund.updated"}
)

PAYMENT_STATUS_BY_EVENT = {
    "invoice.paid": "succeeded",
    "invoice.payment_succeeded": "succeeded",
    "invoice.payment_failed": "failed",
}


class StripeProvider:
    name = "stripe"

    def __init__(
        self,
        api_key: str,
        *,
        webhook_secret: str | None = None,
        api_base: str | None = None,
        attempts: int = 4,
        base_delay_s: float = 0.25,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._client = stripe.StripeClient(
            api_key,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=0,  # retries are ours, with our backoff and our keys
        )
        self._webhook_secret = webhook_secret
        self._retry_options: dict[str, Any] = {"attempts": attempts, "base_delay_s": base_delay_s}
        if sleep is not None:
            self._retry_options["sleep"] = sleep

    def _call(self, call: Callable[[], T]) -> T:
        try:
            return with_retries(call, retryable=RETRYABLE_ERRORS, **self._retry_options)
        except stripe.StripeError as error:
            raise ProviderError(f"stripe: {error.user_message or error}") from error

    def ensure_customer(self, customer: ProviderCustomer) -> str:
        if customer.provider_customer_id:
            return customer.provider_customer_id
        params: dict[str, Any] = {
            "metadata": {
                "meterhouse_organization_id": str(customer.organization_id),
                "meterhouse_customer_id": str(customer.customer_id),
                "external_customer_id": customer.external_id,
            }
        }
        if customer.name:
            params["name"] = customer.name
        if customer.email:
            params["email"] = customer.email
        created = self._call(
            lambda: self._client.v1.customers.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": f"mh-customer-{customer.customer_id}"},
            )
        )
        return str(created.id)

    def push_invoice(self, invoice: ProviderInvoice, provider_customer_id: str) -> PushResult:
        key = f"mh-invoice-{invoice.invoice_id}"
        metadata = {
            "meterhouse_organization_id": str(invoice.organization_id),
            "meterhouse_invoice_id": str(invoice.invoice_id),
            "number": invoice.number,
        }
        draft = self._call(
            lambda: self._client.v1.invoices.create(
                {
                    "customer": provider_customer_id,
                    "currency": invoice.currency.lower(),
                    "auto_advance": False,
                    "collection_method": "charge_automatically",
                    "pending_invoice_items_behavior": "exclude",
                    "description": invoice.number,
                    "metadata": metadata,
                },
                {"idempotency_key": f"{key}-create"},
            )
        )
        provider_invoice_id = str(draft.id)
        for position, line in enumerate(invoice.lines):
            self._call(
                lambda line=line, position=position: self._client.v1.invoice_items.create(  # type: ignore[misc]
                    {
                        "customer": provider_customer_id,
                        "invoice": provider_invoice_id,
                        "amount": line.amount_cents,
                        "currency": invoice.currency.lower(),
                        "description": line.description,
                        "metadata": {"meterhouse_line": line.key},
                    },
                    {"idempotency_key": f"{key}-line-{position}-{line.key}"},
                )
            )
        finalized = self._call(
            lambda: self._client.v1.invoices.finalize_invoice(
                provider_invoice_id,
                {"auto_advance": True},  # Stripe collects with the customer's payment method
                {"idempotency_key": f"{key}-finalize"},
            )
        )
        return PushResult(provider_customer_id, provider_invoice_id, str(finalized.status))

    def mark_paid_out_of_band(self, provider_invoice_id: str, invoice_id: UUID) -> str:
        paid = self._call(
            lambda: self._client.v1.invoices.pay(
                provider_invoice_id,
                {"paid_out_of_band": True},
                {"idempotency_key": f"mh-invoice-{invoice_id}-paid-out-of-band"},
            )
        )
        return str(paid.status)

    def void_invoice(self, provider_invoice_id: str, invoice_id: UUID) -> str:
        voided = self._call(
            lambda: self._client.v1.invoices.void_invoice(
                provider_invoice_id, options={"idempotency_key": f"mh-invoice-{invoice_id}-void"}
            )
        )
        return str(voided.status)

    def retry_payment(self, provider_invoice_id: str, invoice_id: UUID, attempt: int) -> str:
        paid = self._call(
            lambda: self._client.v1.invoices.pay(
                provider_invoice_id,
                options={"idempotency_key": f"mh-invoice-{invoice_id}-pay-{attempt}"},
            )
        )
        return str(paid.status)

    def refund(self, request: RefundRequest) -> ProviderRefund:
        """A Refund of the invoice's paid payment (its PaymentIntent, or its Charge), keyed by
        the credit note: a retry returns the refund created the first time."""
        payments = self._call(
            lambda: self._client.v1.invoice_payments.list(
                {"invoice": request.provider_invoice_id, "status": "paid"}
            )
        )
        params: dict[str, Any] = {
            "amount": request.amount_cents,
            "metadata": {
                "meterhouse_organization_id": str(request.organization_id),
                "meterhouse_invoice_id": str(request.invoice_id),
                "meterhouse_credit_note_id": str(request.credit_note_id),
            },
        }
        for invoice_payment in payments.data:
            payment = invoice_payment.payment
            if payment.type == "payment_intent" and payment.payment_intent:
                params["payment_intent"] = _object_id(payment.payment_intent)
                break
            if payment.type == "charge" and payment.charge:
                params["charge"] = _object_id(payment.charge)
                break
        else:
            raise ProviderError(
                f"stripe: invoice {request.provider_invoice_id} has no paid payment to refund "
                "(paid out of band?)"
            )
        refund = self._call(
            lambda: self._client.v1.refunds.create(
                params,  # type: ignore[arg-type]
                {"idempotency_key": f"mh-credit-note-{request.credit_note_id}-refund"},
            )
        )
        return ProviderRefund(str(refund.id), REFUND_STATUS.get(str(refund.status), "pending"))

    def parse_webhook(self, payload: bytes, signature_header: str | None) -> PaymentEvent:
        if not self._webhook_secret:
            raise InvalidWebhook("no Stripe webhook secret is configured")
        try:
            event = stripe.Webhook.construct_event(payload, signature_header, self._webhook_secret)
        except (ValueError, stripe.SignatureVerificationError) as error:
            raise InvalidWebhook(str(error)) from error
        body = json.loads(payload)
        obj = body.get("data", {}).get("object", {})
        metadata = obj.get("metadata") or {}
        return PaymentEvent(
            provider_event_id=str(event.id),
            event_type=str(event.type),
            provider_invoice_id=str(obj.get("id", "")),
            organization_id=_uuid_or_none(metadata.get("meterhouse_organization_id")),
            invoice_id=_uuid_or_none(metadata.get("meterhouse_invoice_id")),
            payment_status=PAYMENT_STATUS_BY_EVENT.get(str(event.type)),
            amount_paid_cents=int(obj.get("amount_paid") or 0),
            payload=payload.decode(),
            refunds=_refund_updates(str(event.type), obj),
        )


def _refund_updates(event_type: str, obj: dict[str, Any]) -> tuple[RefundUpdate, ...]:
    """Refunds of our credit notes in a refund event, or in a charge.refunded event's charge
    (whose ``refunds`` list Stripe includes only in older API versions)."""
    if event_type in REFUND_EVENTS:
        refunds = [obj]
    elif event_type == "charge.refunded":
        refunds = (obj.get("refunds") or {}).get("data") or []
    else:
        return ()
    updates = []
    for refund in refunds:
        metadata = refund.get("metadata") or {}
        organization_id = _uuid_or_none(metadata.get("meterhouse_organization_id"))
        credit_note_id = _uuid_or_none(metadata.get("meterhouse_credit_note_id"))
        if organization_id and credit_note_id:
            status = REFUND_STATUS.get(str(refund.get("status")), "pending")
            updates.append(RefundUpdate(organization_id, credit_note_id, str(refund["id"]), status))
    return tuple(updates)


def _object_id(value: Any) -> str:
    """An id whether Stripe sent the id or the expanded object."""
    return str(value if isinstance(value, str) else value.id)


def _uuid_or_none(value: object) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None

"""A local Stripe for development and tests, never in front of real Stripe: localstripe bound to
127.0.0.1, state kept in memory per process, plus the Stripe API behaviour that localstripe
lacks, added here (not in localstripe) and written after Stripe's API reference:

- ``POST /v1/invoices`` for a customer without subscription or pending items when
  ``pending_invoice_items_behavior=exclude`` (an empty draft), accepting ``currency``,
  ``auto_advance`` and ``collection_method``;
- ``POST /v1/invoiceitems`` with ``invoice=in_...`` adds the line to that draft (refused once the
  invoice is no longer a draft);
- ``POST /v1/invoices/{id}/finalize`` (``invoice.finalized`` event; with ``auto_advance`` and a
  default payment method, the automatic collection attempt is made at once instead of ~1 hour
  later), ``POST /v1/invoices/{id}/mark_uncollectible``, ``pay`` with ``paid_out_of_band``,
  and the ``invoice.paid`` event next to ``invoice.payment_succeeded``;
- ``GET /v1/invoice_payments?invoice=in_...`` (the payments of an invoice, how current API
  versions reach an invoice's PaymentIntent), and the ``refund.created`` and ``charge.refunded``
  events when ``POST /v1/refunds`` creates a refund (localstripe has the refund routes, but
  sends no event);
- the ``Idempotency-Key`` header: a repeated key returns the first response;
- ``POST /_config/fail_next`` (harness only, not Stripe): the next N API calls answer HTTP 500,
  to exercise retries.
- ``POST /_config/refunds/{id}/status?status=failed`` (harness only, not Stripe): a refund's
  status changes later at the provider, as a refund to a closed card does in Stripe (it starts
  ``succeeded`` and becomes ``failed``), with the ``refund.updated`` (and ``refund.failed``)
  events.

Run: ``python -m orchestration.stripe.local_stripe --port N`` (``meterhouse up`` does, when no
Stripe key is configured).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from aiohttp import web
from localstripe import resources, server
from localstripe.errors import UserError
from localstripe.resources import (
    Charge,
    Customer,
    Event,
    Invoice,
    InvoiceItem,
    InvoiceLineItem,
    Refund,
    store,
)
from localstripe.webhooks import schedule_webhook

_idempotent_responses: dict[tuple[str, str], tuple[int, bytes]] = {}
_failures_to_inject = {"count": 0}


def _keep_state_in_memory() -> None:
    resources.Store.dump_to_disk = lambda self: None
    resources.Store.try_load_from_disk = lambda self: None


_original_invoice_create = Invoice._api_create
_original_invoice_status = Invoice.status
_original_payment_success = Invoice._on_payment_success
_original_pay = Invoice._api_pay_invoice
_original_item_init = InvoiceItem.__init__
_original_void = Invoice._api_void_invoice
_original_refund_create = Refund._api_create


def _invoice_create(
    customer: str | None = None,
    currency: str | None = None,
    auto_advance: Any = None,
    collection_method: str | None = None,
    pending_invoice_items_behavior: str | None = None,
    description: str | None = None,
    metadata: dict[str, str] | None = None,
    **kwargs: Any,
) -> Invoice:
    if pending_invoice_items_behavior != "exclude":
        return _original_invoice_create(
            customer=customer,
            description=description,
            metadata=metadata,
            pending_invoice_items_behavior=pending_invoice_items_behavior,
            **kwargs,
        )
    Customer._api_retrieve(customer)  # 404 for an unknown customer
    invoice = Invoice(customer=customer, description=description, metadata=metadata)
    invoice.lines._list = []  # "exclude": no pending item is swept in
    invoice.currency = currency or "usd"
    invoice.collection_method = collection_method or "charge_automatically"
    invoice.auto_advance = str(auto_advance).lower() == "true"
    invoice._paid_out_of_band = False
    invoice._uncollectible = False
    return invoice


def _status(self: Invoice) -> str:
    if getattr(self, "_paid_out_of_band", False):
        return "paid"
    if getattr(self, "_uncollectible", False):
        return "uncollectible"
    return str(_original_invoice_status.fget(self))


def _on_payment_success(self: Invoice) -> None:
    _original_payment_success(self)
    schedule_webhook(Event("invoice.paid", self))


def _item_init(self: InvoiceItem, invoice: str | None = None, **kwargs: Any) -> None:
    target = Invoice._api_retrieve(invoice) if invoice is not None else None
    if target is not None and target.status != "draft":
        raise UserError(400, "You can only add invoice items to draft invoices.")
    _original_item_init(self, invoice=invoice, **kwargs)
    if target is not None:
        target.lines._list.append(InvoiceLineItem(self))


def _finalize(id: str, auto_advance: Any = None, **kwargs: Any) -> Invoice:
    invoice = Invoice._api_retrieve(id)
    if invoice.status != "draft":
        raise UserError(400, "This invoice is already finalized.")
    invoice._finalize()
    if auto_advance is not None:
        invoice.auto_advance = str(auto_advance).lower() == "true"
    schedule_webhook(Event("invoice.finalized", invoice))
    if invoice.total <= 0:
        invoice._on_payment_success()
    elif getattr(invoice, "auto_advance", False):
        customer = Customer._api_retrieve(invoice.customer)
        if customer._get_default_payment_method_or_source() is not None:
            _attempt_payment(id)
    return invoice


def _attempt_payment(id: str) -> Invoice:
    """Stripe sends invoice.payment_failed when a collection attempt fails; localstripe does not."""
    invoice = _original_pay(id)
    if invoice.status == "open":
        schedule_webhook(Event("invoice.payment_failed", invoice))
    return invoice


def _pay(id: str, paid_out_of_band: Any = None, **kwargs: Any) -> Invoice:
    if str(paid_out_of_band).lower() != "true":
        return _attempt_payment(id)
    invoice = Invoice._api_retrieve(id)
    if invoice.status not in ("draft", "open"):
        raise UserError(400, "Invoice is already paid or void.")
    invoice._draft = False
    invoice._paid_out_of_band = True
    invoice.status_transitions["paid_at"] = int(time.time())
    schedule_webhook(Event("invoice.paid", invoice))
    return invoice


def _void(id: str, **kwargs: Any) -> Invoice:
    """Stripe voids an open invoice that has no payment attempt; localstripe requires one."""
    invoice = Invoice._api_retrieve(id)
    if invoice.payment_intent is not None:
        return _original_void(id)
    if invoice.status != "open":
        raise UserError(400, "Only open invoices can be voided.")
    invoice._voided = True
    invoice.status_transitions["voided_at"] = int(time.time())
    schedule_webhook(Event("invoice.voided", invoice))
    return invoice


def _mark_uncollectible(id: str, **kwargs: Any) -> Invoice:
    invoice = Invoice._api_retrieve(id)
    if invoice.status != "open":
        raise UserError(400, "Only open invoices can be marked uncollectible.")
    invoice._uncollectible = True
    schedule_webhook(Event("invoice.marked_uncollectible", invoice))
    return invoice


def _refund_create(**kwargs: Any) -> Refund:
    refund = _original_refund_create(**kwargs)
    schedule_webhook(Event("refund.created", refund))
    schedule_webhook(Event("charge.refunded", Charge._api_retrieve(refund.charge)))
    return refund


async def list_invoice_payments(request: web.Request) -> web.Response:
    """Stripe's InvoicePayment list for one invoice: its PaymentIntent once one exists."""
    invoice_id = request.query.get("invoice")
    if not invoice_id:
        return _error(400, "Missing required param: invoice.")
    try:
        invoice = Invoice._api_retrieve(invoice_id)
    except UserError as error:
        return web.json_response(error.body, status=error.code)
    payments = []
    if invoice.payment_intent is not None:
        paid = invoice.status == "paid"
        status = "paid" if paid else ("canceled" if invoice.status == "void" else "open")
        payments.append({
            "id": f"inpay_{invoice.id[3:]}", "object": "invoice_payment",
            "amount_paid": invoice.total if paid else None, "amount_requested": invoice.total,
            "created": invoice.created, "currency": invoice.currency, "invoice": invoice.id,
            "is_default": True, "livemode": False, "status": status,
            "payment": {"type": "payment_intent", "payment_intent": invoice.payment_intent},
            "status_transitions": {
                "paid_at": invoice.status_transitions.get("paid_at"), "canceled_at": None,
            },
        })  # fmt: skip
    wanted = request.query.get("status")
    data = [p for p in payments if wanted is None or p["status"] == wanted]
    return web.json_response(
        {"object": "list", "data": data, "has_more": False, "url": "/v1/invoice_payments"}
    )


async def set_refund_status(request: web.Request) -> web.Response:
    refund = Refund._api_retrieve(request.match_info["id"])
    refund.status = request.query["status"]
    schedule_webhook(Event("refund.updated", refund))
    if refund.status == "failed":
        schedule_webhook(Event("refund.failed", refund))
    return web.json_response(refund._export())


def _error(status: int, message: str) -> web.Response:
    return web.json_response(
        {"error": {"type": "invalid_request_error", "message": message}}, status=status
    )


@web.middleware
async def idempotency_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    if _failures_to_inject["count"] > 0 and request.path.startswith("/v1/"):
        _failures_to_inject["count"] -= 1
        return web.json_response(
            {"error": {"type": "api_error", "message": "injected failure"}}, status=500
        )
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return await handler(request)
    cache_key = (request.headers.get("Authorization", ""), key)
    if cache_key in _idempotent_responses:
        status, body = _idempotent_responses[cache_key]
        return web.Response(
            status=status,
            body=body,
            content_type="application/json",
            headers={"Idempotent-Replayed": "true"},
        )
    response = await handler(request)
    replayable = response.body if isinstance(response, web.Response) else None
    if isinstance(replayable, bytes) and response.status < 500:
        _idempotent_responses[cache_key] = (response.status, replayable)
    return response


async def fail_next(request: web.Request) -> web.Response:
    _failures_to_inject["count"] = int(request.query.get("count", "1"))
    return web.Response()


def build_app() -> web.Application:
    _keep_state_in_memory()
    store.clear()
    Invoice._api_create = staticmethod(_invoice_create)
    Invoice.status = property(_status)
    Invoice._on_payment_success = _on_payment_success
    InvoiceItem.__init__ = _item_init
    Refund._api_create = staticmethod(_refund_create)
    app = server.app
    app.middlewares.append(idempotency_middleware)
    app.router.add_post("/v1/invoices/{id}/finalize", server.api_extra(_finalize, ""))
    app.router.add_post(
        "/v1/invoices/{id}/mark_uncollectible", server.api_extra(_mark_uncollectible, "")
    )
    # The pay and void routes exist already: route them to the extended handlers.
    extended = {"/v1/invoices/{id}/pay": _pay, "/v1/invoices/{id}/void": _void}
    for route in app.router.routes():
        canonical = route.resource.canonical if route.resource else ""
        if route.method == "POST" and canonical in extended:
            route._handler = server.api_extra(extended[canonical], "")
    app.router.add_get("/v1/invoice_payments", list_invoice_payments)
    app.router.add_post("/_config/fail_next", fail_next)
    app.router.add_post("/_config/refunds/{id}/status", set_refund_status)
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    web.run_app(build_app(), host="127.0.0.1", port=args.port, access_log=None)


if __name__ == "__main__":
    main()

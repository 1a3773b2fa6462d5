"""Invoices: /api/v1/invoices (Lago-compatible). Invoices are written by the invoicing assets;
the actions here go through the same code (refresh and finalize re-run the billing day)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Depends, Request
from fastapi.responses import Response

from api.deps import CurrentCaller, Store
from api.errors import ApiError, FieldErrors, NotFound, ValidationFailed
from api.pagination import Page
from api.schemas.invoices import (
    InvoicePreviewInput,
    InvoiceUpdateEnvelope,
    InvoiceVoidInput,
    OneOffInvoiceEnvelope,
    pdf_document,
    present_invoice,
)
from api.services.wallets import transaction_notifications
from api.storage.invoices import InvoiceFilters, InvoiceRecords, Row
from api.storage.lookups import find_by, rows_by_codes, taxes_by_id
from orchestration.invoices.billing import bill_day
from orchestration.invoices.credit_notes import (
    create_credit_note,
    credit_note_amounts,
    items_for_total,
)
from orchestration.invoices.ids import record_id
from orchestration.invoices.notifications import (
    credit_note_payloads,
    invoice_events,
    refund_status_events,
)
from orchestration.invoices.one_off import AddOnLine, create_one_off_invoice
from orchestration.invoices.paid_credits import purchases_of, settle_purchased_credits
from orchestration.invoices.payments import push_day
from orchestration.invoices.pdf import render_invoice_pdf
from orchestration.invoices.preview import preview_invoices
from orchestration.invoices.refunds import refund_credit_note
from orchestration.invoices.updates import update_invoices
from orchestration.invoices.voiding import void_invoice_records
from orchestration.stripe.provider import ProviderError
from orchestration.stripe.registry import configured_providers
from orchestration.webhooks import Notification, WebhookSender
from warehouse.settings import Settings

router = APIRouter(prefix="/api/v1/invoices", tags=["invoices"])


def get_records(store: Store) -> InvoiceRecords:
    return InvoiceRecords(store.client)


Records = Annotated[InvoiceRecords, Depends(get_records)]


def get_settings_of_app(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


AppSettings = Annotated[Settings, Depends(get_settings_of_app)]


def _invoice(records: InvoiceRecords, caller: CurrentCaller, invoice_id: str) -> Row:
    row = records.invoice(caller.organization_id, invoice_id)
    if row is None:
        raise NotFound("invoice")
    return row


def _full(records: InvoiceRecords, caller: CurrentCaller, row: Row) -> dict[str, Any]:
    org = caller.organization_id
    fees = records.fees_of(org, [row]).get(row["id"], [])
    taxes = records.taxes_of(org, [row]).get(row["id"], [])
    return {"invoice": present_invoice(row, fees, taxes)}


def notify_later(
    background: BackgroundTasks,
    settings: Settings,
    records: InvoiceRecords,
    notifications: list[Notification],
) -> None:
    """Send webhooks after the response: retries with backoff must not hold the request."""
    sender = WebhookSender.configured(records.client, settings)
    background.add_task(sender.send, notifications)


def notify_payment_status(
    background: BackgroundTasks, settings: Settings, records: InvoiceRecords, row: Row
) -> None:
    events = invoice_events(records, row["organization_id"], [row])
    updated = [
        Notification(e.organization_id, "invoice.payment_status_updated", "invoice",
                     e.object_id, e.payload)
        for e in events[:1]
    ]  # fmt: skip
    # A credit invoice's purchases changed with its payment: settled, or failed.
    purchases = purchases_of(records.client, row["organization_id"], row["id"])
    updated += transaction_notifications(purchases, "wallet_transaction.updated")
    failed = [purchase for purchase in purchases if purchase["status"] == "failed"]
    updated += transaction_notifications(failed, "wallet_transaction.payment_failure")
    notify_later(background, settings, records, updated)


def _require_status(row: Row, *allowed: str) -> None:
    if row["status"] not in allowed:
        raise ApiError(405, "invalid_status", message=f"invoice is {row['status']}")


@router.get("")
def list_invoices(
    page: Page,
    records: Records,
    caller: CurrentCaller,
    external_customer_id: str | None = None,
    status: str | None = None,
    payment_status: str | None = None,
    issuing_date_from: date | None = None,
    issuing_date_to: date | None = None,
) -> dict[str, Any]:
    filters = InvoiceFilters(
        external_customer_id, status, payment_status, issuing_date_from, issuing_date_to
    )
    rows, total = records.invoices(caller.organization_id, filters, page.per_page, page.offset)
    fees = records.fees_of(caller.organization_id, rows)
    taxes = records.taxes_of(caller.organization_id, rows)
    return {
        "invoices": [
            present_invoice(r, fees.get(r["id"], []), taxes.get(r["id"], [])) for r in rows
        ],
        "meta": page.meta(total),
    }


@router.post("")
def create_one_off(
    envelope: OneOffInvoiceEnvelope,
    store: Store,
    records: Records,
    caller: CurrentCaller,
    settings: AppSettings,
    background: BackgroundTasks,
) -> dict[str, Any]:
    """A one-off invoice for add-ons, finalized at once."""
    body = envelope.invoice
    org = caller.organization_id
    customer = find_by(store, "customers", org, "external_id", body.external_customer_id,
                       resource="customer")  # fmt: skip
    add_ons = rows_by_codes(store, "add_ons", org, [fee.add_on_code for fee in body.fees])
    if any(fee.add_on_code not in add_ons for fee in body.fees):
        raise NotFound("add_on")
    currency = (
        body.currency
        or customer["currency"]
        or add_ons[body.fees[0].add_on_code]["amount_currency"]
    )
    lines = []
    for fee in body.fees:
        add_on = add_ons[fee.add_on_code]
        codes = fee.tax_codes
        if codes is None:
            codes = _tax_codes(store, caller, add_on) or _tax_codes(store, caller, customer)
        if codes and len(rows_by_codes(store, "taxes", org, codes)) != len(set(codes)):
            raise NotFound("tax")
        unit = fee.unit_amount_cents
        name = fee.invoice_display_name or add_on["invoice_display_name"] or add_on["name"]
        unit_amount = Decimal(add_on["amount_cents"]) if unit is None else unit
        lines.append(AddOnLine(add_on["id"], name, fee.units, unit_amount, tuple(codes)))
    record = create_one_off_invoice(
        records.client, org, customer["id"], customer["external_id"], currency, lines
    )
    row = _invoice(records, caller, str(record.id))
    notify_later(background, settings, records, invoice_events(records, org, [row]))
    return _full(records, caller, row)


@router.post("/preview")
def preview_invoice(
    body: InvoicePreviewInput,
    store: Store,
    records: Records,
    caller: CurrentCaller,
    settings: AppSettings,
) -> dict[str, Any]:
    """What the customer's invoice would be now; nothing is written."""
    customer = find_by(store, "customers", caller.organization_id, "external_id",
                       body.customer.external_id, resource="customer")  # fmt: skip
    wanted = set(body.subscriptions.external_ids) if body.subscriptions else None
    previews = preview_invoices(
        records.client, caller.organization_id, customer["id"],
        external_subscription_ids=wanted or None, fees_table=settings.invoicing_fees_table,
    )  # fmt: skip
    if not previews:
        raise NotFound("fee")
    invoice, fees, taxes = previews[0]
    return {"invoice": present_invoice(invoice, fees, taxes)}


def _tax_codes(store: Store, caller: CurrentCaller, row: Row) -> list[str]:
    return sorted(tax["code"] for tax in taxes_by_id(store, caller.organization_id, [row]).values())


@router.get("/{invoice_id}")
def get_invoice(invoice_id: str, records: Records, caller: CurrentCaller) -> dict[str, Any]:
    return _full(records, caller, _invoice(records, caller, invoice_id))


@router.put("/{invoice_id}")
def update_invoice(
    invoice_id: str,
    envelope: InvoiceUpdateEnvelope,
    records: Records,
    caller: CurrentCaller,
    settings: AppSettings,
    background: BackgroundTasks,
) -> dict[str, Any]:
    row = _invoice(records, caller, invoice_id)
    status = envelope.invoice.payment_status
    if status is not None:
        _require_status(row, "finalized")
        paid = row["total_amount_cents"] if status == "succeeded" else 0
        update_invoices(
            records.client, caller.organization_id, [row["id"]],
            payment_status=status, total_paid_amount_cents=paid,
        )  # fmt: skip
        settle_purchased_credits(records.client, caller.organization_id, row["id"], status)
        notify_payment_status(background, settings, records, _invoice(records, caller, invoice_id))
    return _full(records, caller, _invoice(records, caller, invoice_id))


def _rebill(
    records: InvoiceRecords, caller: CurrentCaller, settings: Settings, row: Row, finalize: bool
) -> dict[str, Any]:
    _require_status(row, "draft")
    bill_day(
        records.client,
        row["billing_date"],
        now=datetime.now(UTC),
        fees_table=settings.invoicing_fees_table,
        finalize_due=False,
        finalize_ids=frozenset({row["id"]}) if finalize else frozenset(),
    )
    return _full(records, caller, _invoice(records, caller, str(row["id"])))


# Lago documents PUT; some clients send POST. Two routes, so each has its own operation id.
@router.put("/{invoice_id}/refresh")
@router.post("/{invoice_id}/refresh", operation_id="refresh_invoice_post")
def refresh_invoice(
    invoice_id: str, records: Records, caller: CurrentCaller, settings: AppSettings
) -> dict[str, Any]:
    """Recompute a draft from the current fees, coupons, taxes and balances."""
    return _rebill(records, caller, settings, _invoice(records, caller, invoice_id), False)


@router.put("/{invoice_id}/finalize")
def finalize_invoice(
    invoice_id: str, records: Records, caller: CurrentCaller, settings: AppSettings
) -> dict[str, Any]:
    """Finalize a draft now, before its grace period ends: numbered, immutable."""
    return _rebill(records, caller, settings, _invoice(records, caller, invoice_id), True)


@router.post("/{invoice_id}/void")
def void_invoice(
    invoice_id: str,
    records: Records,
    caller: CurrentCaller,
    settings: AppSettings,
    background: BackgroundTasks,
    body: InvoiceVoidInput | None = None,
) -> dict[str, Any]:
    """Void a finalized invoice, at its payment provider first, and give back what it
    consumed (coupons, prepaid credits, credit notes). A paid invoice only with Lago's
    explicit intent (``generate_credit_note`` in the body); ``generate_credit_note: true``
    issues a credit note of ``credit_amount + refund_amount``, the refund sent to the provider."""
    row = _invoice(records, caller, invoice_id)
    _require_status(row, "finalized")
    explicit = body is not None and "generate_credit_note" in body.model_fields_set
    paid = row["payment_status"] == "succeeded"
    if paid and not explicit:
        raise ApiError(405, "invalid_status", message="a paid invoice is corrected by credit note")
    write_note = None
    if body is not None and body.generate_credit_note:
        write_note = _void_credit_note(records, row, body)
    if not paid:  # a paid invoice stays paid at the provider; its refund is the credit note's
        _void_at_provider(records, caller, settings, row)
    note_id = write_note() if write_note else None
    void_invoice_records(records.client, row, datetime.now(UTC))
    voided = _invoice(records, caller, invoice_id)
    events = invoice_events(records, caller.organization_id, [voided])[:1]
    notifications = [replace(event, webhook_type="invoice.voided") for event in events]
    if note_id is not None:
        payloads = credit_note_payloads(records, caller.organization_id, [note_id])
        notifications.append(Notification(caller.organization_id, "credit_note.created",
                                          "credit_note", note_id, payloads[note_id]))  # fmt: skip
    notify_later(background, settings, records, notifications)
    if note_id is not None:
        send_refund(records, settings, background, caller.organization_id, note_id)
    return _full(records, caller, voided)


def send_refund(
    records: InvoiceRecords,
    settings: Settings,
    background: BackgroundTasks,
    organization_id: uuid.UUID,
    note_id: uuid.UUID,
) -> None:
    """Refund a credit note at its invoice's payment provider (when one collected it);
    credit_note.refund_status_updated once the status moved."""
    providers = configured_providers(settings)
    outcome = refund_credit_note(records.client, providers, organization_id, note_id)
    if outcome is not None and outcome.status != "pending":
        events = refund_status_events(records, [(organization_id, note_id)])
        notify_later(background, settings, records, events)


def _void_at_provider(
    records: InvoiceRecords, caller: CurrentCaller, settings: Settings, row: Row
) -> None:
    reference = records.provider_reference(caller.organization_id, "invoice", row["id"])
    if reference is None or not reference["provider_object_id"]:
        return
    provider = configured_providers(settings).get(reference["provider"])
    if provider is None:
        raise ApiError(
            405, "no_payment_provider", message=f"{reference['provider']} is not configured"
        )
    try:
        provider.void_invoice(reference["provider_object_id"], row["id"])
    except ProviderError as error:
        raise ApiError(422, "payment_provider_error", message=str(error)) from error


def _void_credit_note(
    records: InvoiceRecords, row: Row, body: InvoiceVoidInput
) -> Callable[[], uuid.UUID] | None:
    """Check the amounts before anything is voided; the writing step, or None for 0.

    One note per voided invoice: its id comes from the invoice, so a void retried after a
    failure keeps the note written the first time instead of issuing another."""
    org = row["organization_id"]
    note_id = record_id("void-credit-note", row["id"])
    issued = records.credit_notes(org, "n.invoice_id = {invoice:UUID}", {"invoice": row["id"]})
    if any(n["id"] == note_id for n in issued):
        return lambda: note_id
    creditable = row["sub_total_including_taxes_amount_cents"] - sum(
        n["total_amount_cents"] for n in issued
    )
    refundable = row["total_paid_amount_cents"] - sum(n["refund_amount_cents"] for n in issued)
    errors = FieldErrors()
    if body.refund_amount > refundable:
        errors.add("refund_amount", "refund_amount_exceeds_available_amount")
    if body.credit_amount + body.refund_amount > creditable:
        errors.add("credit_refund_amount", "total_amount_exceeds_invoice_amount")
    errors.raise_if_any()
    target = body.credit_amount + body.refund_amount
    fees = {fee["id"]: fee for fee in records.fees_of(org, [row]).get(row["id"], [])}
    credited = records.credited_by_fee(org, row["id"])
    items = items_for_total(row, fees, credited, target)
    if not items:
        return None
    amounts = credit_note_amounts(row, fees, credited, items)
    credit = amounts.total_amount_cents - body.refund_amount
    if credit < 0:
        raise ValidationFailed({"refund_amount": ["refund_amount_exceeds_available_amount"]})

    def write() -> uuid.UUID:
        return create_credit_note(
            records.client, row, amounts,
            reason="other", description=f"Credit note of voided invoice {row['number']}",
            credit_amount_cents=credit, refund_amount_cents=body.refund_amount,
            sequence=records.last_credit_note_sequence(org, row["id"]) + 1,
            note_id=note_id,
        )  # fmt: skip

    return write


@router.post("/{invoice_id}/retry_payment")
def retry_payment(
    invoice_id: str, records: Records, caller: CurrentCaller, settings: AppSettings
) -> dict[str, Any]:
    """Push again if the provider never got the invoice; otherwise ask it to collect again."""
    row = _invoice(records, caller, invoice_id)
    _require_status(row, "finalized")
    if row["payment_status"] == "succeeded":
        raise ApiError(405, "invalid_status", message="invoice is already paid")
    customer = records.client.query(
        "SELECT payment_provider FROM customers FINAL WHERE organization_id = {org:UUID} "
        "AND id = {id:UUID}",
        parameters={"org": caller.organization_id, "id": row["customer_id"]},
    ).result_rows
    provider_name = customer[0][0] if customer else None
    provider = configured_providers(settings).get(provider_name or "")
    if provider is None:
        raise ApiError(405, "no_payment_provider", message="the customer has no payment provider")
    reference = records.provider_reference(caller.organization_id, "invoice", row["id"])
    try:
        if reference is None or not reference["provider_object_id"]:
            push_day(records.client, provider, row["billing_date"])
        else:
            attempt = int(datetime.now(UTC).timestamp())
            provider.retry_payment(reference["provider_object_id"], row["id"], attempt)
    except ProviderError as error:
        raise ApiError(422, "payment_provider_error", message=str(error)) from error
    return _full(records, caller, _invoice(records, caller, invoice_id))


def _pdf(records: InvoiceRecords, store: Store, caller: CurrentCaller, row: Row) -> bytes:
    org = caller.organization_id
    fees = records.fees_of(org, [row]).get(row["id"], [])
    taxes = records.taxes_of(org, [row]).get(row["id"], [])
    customer = store.first("customers", org, "id = {id:UUID}", {"id": row["customer_id"]})
    return render_invoice_pdf(pdf_document(row, fees, taxes, caller.organization.name, customer))


@router.get("/{invoice_id}/download")
def download_invoice_pdf(
    invoice_id: str, records: Records, store: Store, caller: CurrentCaller
) -> Response:
    """The invoice as a PDF document."""
    row = _invoice(records, caller, invoice_id)
    return Response(
        _pdf(records, store, caller, row),
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{row["number"]}.pdf"'},
    )


@router.post("/{invoice_id}/download")
def download_invoice(
    invoice_id: str, request: Request, records: Records, caller: CurrentCaller
) -> dict[str, Any]:
    """Lago's download: the invoice with ``file_url`` pointing at its PDF."""
    body = _full(records, caller, _invoice(records, caller, invoice_id))
    body["invoice"]["file_url"] = str(
        request.url_for("download_invoice_pdf", invoice_id=invoice_id)
    )
    return body

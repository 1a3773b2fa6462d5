"""Credit notes: /api/v1/credit_notes, corrections of finalized invoices (Lago-compatible)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, BackgroundTasks

from api.deps import CurrentCaller
from api.errors import NotFound, ValidationFailed
from api.pagination import Page
from api.routers.invoices import AppSettings, Records, notify_later, send_refund
from api.schemas.invoices import (
    CreditNoteEnvelope,
    CreditNoteUpdateEnvelope,
    present_credit_note,
)
from orchestration.invoices.credit_notes import (
    CreditNoteItem,
    CreditNoteRefused,
    create_credit_note,
    credit_note_amounts,
)
from orchestration.invoices.notifications import refund_status_events
from orchestration.invoices.refunds import update_credit_notes
from orchestration.webhooks import Notification

router = APIRouter(prefix="/api/v1/credit_notes", tags=["credit_notes"])


def _uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise ValidationFailed({field: ["invalid_value"]}) from None


def _present(records: Records, caller: CurrentCaller, notes: list[dict[str, Any]]) -> list[Any]:
    items = records.credit_note_items(caller.organization_id, [n["id"] for n in notes])
    presented = []
    for note in notes:
        invoice = records.invoice(caller.organization_id, str(note["invoice_id"])) or {}
        presented.append(present_credit_note(note, items.get(note["id"], []), invoice))
    return presented


@router.post("")
def create(
    envelope: CreditNoteEnvelope,
    records: Records,
    caller: CurrentCaller,
    settings: AppSettings,
    background: BackgroundTasks,
) -> dict[str, Any]:
    body = envelope.credit_note
    org = caller.organization_id
    invoice = records.invoice(org, body.invoice_id)
    if invoice is None:
        raise NotFound("invoice")
    fees = {fee["id"]: fee for fee in records.fees_of(org, [invoice]).get(invoice["id"], [])}
    items = [CreditNoteItem(_uuid(i.fee_id, "items"), i.amount_cents) for i in body.items]
    try:
        amounts = credit_note_amounts(
            invoice, fees, records.credited_by_fee(org, invoice["id"]), items
        )
        note_id = create_credit_note(
            records.client,
            invoice,
            amounts,
            reason=body.reason,
            description=body.description,
            credit_amount_cents=body.credit_amount_cents,
            refund_amount_cents=body.refund_amount_cents,
            sequence=records.last_credit_note_sequence(org, invoice["id"]) + 1,
        )
    except CreditNoteRefused as refused:
        raise ValidationFailed({refused.field: [refused.code]}) from None
    notes = records.credit_notes(org, "n.id = {id:UUID}", {"id": note_id})
    created = Notification(
        org, "credit_note.created", "credit_note", note_id, _present(records, caller, notes)[0]
    )
    notify_later(background, settings, records, [created])
    send_refund(records, settings, background, org, note_id)
    return {"credit_note": _note(records, caller, note_id)}


def _note(records: Records, caller: CurrentCaller, note_id: uuid.UUID) -> dict[str, Any]:
    notes = records.credit_notes(caller.organization_id, "n.id = {id:UUID}", {"id": note_id})
    if not notes:
        raise NotFound("credit_note")
    return _present(records, caller, notes)[0]


def _note_id(credit_note_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(credit_note_id)
    except ValueError:
        raise NotFound("credit_note") from None


@router.get("/{credit_note_id}")
def get_credit_note(credit_note_id: str, records: Records, caller: CurrentCaller) -> dict[str, Any]:
    return {"credit_note": _note(records, caller, _note_id(credit_note_id))}


@router.put("/{credit_note_id}")
def update_credit_note(
    credit_note_id: str,
    envelope: CreditNoteUpdateEnvelope,
    records: Records,
    caller: CurrentCaller,
    settings: AppSettings,
    background: BackgroundTasks,
) -> dict[str, Any]:
    """Record a refund's outcome by hand (Lago's update: ``refund_status``), e.g. money sent
    back out of band; credit_note.refund_status_updated when it changes."""
    note_id = _note_id(credit_note_id)
    note = _note(records, caller, note_id)
    status = envelope.credit_note.refund_status
    if note["refund_amount_cents"] == 0:
        raise ValidationFailed({"refund_status": ["no_refund_amount"]})
    if status != note["refund_status"]:
        update_credit_notes(records.client, caller.organization_id, [note_id], refund_status=status)
        events = refund_status_events(records, [(caller.organization_id, note_id)])
        notify_later(background, settings, records, events)
    return {"credit_note": _note(records, caller, note_id)}


@router.get("")
def list_credit_notes(page: Page, records: Records, caller: CurrentCaller) -> dict[str, Any]:
    notes = records.credit_notes(caller.organization_id, "1", {})
    shown = notes[page.offset : page.offset + page.per_page]
    return {"credit_notes": _present(records, caller, shown), "meta": page.meta(len(notes))}

"""Credit notes: /api/v1/credit_notes, corrections of finalized invoices (Lago-compatible)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, BackgroundTasks

from api.deps import CurrentCaller
from api.errors import NotFound, ValidationFailed
from api.pagination import Page
from api.routers.invoices import AppSettings, Records, notify_later
from api.schemas.invoices import CreditNoteEnvelope, present_credit_note
from orchestration.invoices.credit_notes import (
    CreditNoteItem,
    CreditNoteRefused,
    create_credit_note,
    credit_note_amounts,
)
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
    presented = _present(records, caller, notes)[0]
    created = Notification(org, "credit_note.created", "credit_note", note_id, presented)
    notify_later(background, settings, records, [created])
    return {"credit_note": presented}


@router.get("/{credit_note_id}")
def get_credit_note(credit_note_id: str, records: Records, caller: CurrentCaller) -> dict[str, Any]:
    try:
        parsed = uuid.UUID(credit_note_id)
    except ValueError:
        raise NotFound("credit_note") from None
    notes = records.credit_notes(caller.organization_id, "n.id = {id:UUID}", {"id": parsed})
    if not notes:
        raise NotFound("credit_note")
    return {"credit_note": _present(records, caller, notes)[0]}


@router.get("")
def list_credit_notes(page: Page, records: Records, caller: CurrentCaller) -> dict[str, Any]:
    notes = records.credit_notes(caller.organization_id, "1", {})
    shown = notes[page.offset : page.offset + page.per_page]
    return {"credit_notes": _present(records, caller, shown), "meta": page.meta(len(notes))}

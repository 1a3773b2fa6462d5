"""The webhooks an invoice's life produces, in Lago's shapes."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from clickhouse_connect.driver.client import Client

from api.schemas.invoices import present_credit_note, present_invoice
from api.storage.invoices import InvoiceRecords
from orchestration.webhooks import Notification, WebhookSender


def invoice_notifications(sender: WebhookSender, day: date) -> list[Notification]:
    """invoice.created for each invoice of the day, invoice.finalized for the finalized ones.

    Payloads are only built for organizations that have an endpoint.
    """
    rows = list(
        sender.client.query(
            "SELECT * FROM invoices FINAL WHERE billing_date = %(day)s", parameters={"day": day}
        ).named_results()
    )
    endpoints = sender.endpoints({row["organization_id"] for row in rows})
    records = InvoiceRecords(sender.client)
    notifications = []
    for organization_id in endpoints:
        ours = [row for row in rows if row["organization_id"] == organization_id]
        notifications += invoice_events(records, organization_id, ours)
    return notifications


def invoice_events(
    records: InvoiceRecords, organization_id: UUID, rows: list[dict[str, Any]]
) -> list[Notification]:
    fees = records.fees_of(organization_id, rows)
    taxes = records.taxes_of(organization_id, rows)
    notifications = []
    for row in rows:
        payload = present_invoice(row, fees.get(row["id"], []), taxes.get(row["id"], []))
        types = ["invoice.created"] + (
            ["invoice.finalized"] if row["status"] == "finalized" else []
        )
        notifications += [
            Notification(organization_id, webhook_type, "invoice", row["id"], payload)
            for webhook_type in types
        ]
    return notifications


def credit_note_payloads(
    records: InvoiceRecords, organization_id: UUID, note_ids: list[UUID]
) -> dict[UUID, dict[str, Any]]:
    """Credit notes as the API presents them, by id."""
    if not note_ids:
        return {}
    ids = {"ids": [str(note_id) for note_id in note_ids]}
    notes = records.credit_notes(organization_id, "toString(n.id) IN {ids:Array(String)}", ids)
    items = records.credit_note_items(organization_id, [note["id"] for note in notes])
    payloads = {}
    for note in notes:
        invoice = records.invoice(organization_id, str(note["invoice_id"])) or {}
        payloads[note["id"]] = present_credit_note(note, items.get(note["id"], []), invoice)
    return payloads


def credit_notes_created(client: Client, notes: list[tuple[UUID, UUID]]) -> list[Notification]:
    """credit_note.created for each (organization, credit note)."""
    records = InvoiceRecords(client)
    by_organization: dict[UUID, list[UUID]] = {}
    for organization_id, note_id in notes:
        by_organization.setdefault(organization_id, []).append(note_id)
    return [
        Notification(organization_id, "credit_note.created", "credit_note", note_id, payload)
        for organization_id, note_ids in by_organization.items()
        for note_id, payload in credit_note_payloads(records, organization_id, note_ids).items()
    ]


def refund_status_events(
    records: InvoiceRecords, changed: list[tuple[UUID, UUID]]
) -> list[Notification]:
    """credit_note.refund_status_updated for each (organization, credit note) whose refund
    status just changed. Each change is sent once: the revision is the status with the time
    of the change, so pending, failed, then succeeded again are three webhooks."""
    notifications = []
    for organization_id in {org for org, _ in changed}:
        ours = [note_id for org, note_id in changed if org == organization_id]
        payloads = credit_note_payloads(records, organization_id, ours)
        notifications += [
            Notification(organization_id, "credit_note.refund_status_updated", "credit_note",
                         note_id, payload,
                         revision=f"{payload['refund_status']}@{payload['updated_at']}")
            for note_id, payload in payloads.items()
        ]  # fmt: skip
    return notifications

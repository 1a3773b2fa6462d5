"""The webhooks an invoice's life produces, in Lago's shapes."""

from __future__ import annotations

from datetime import date
from typing import Any
from uuid import UUID

from api.schemas.invoices import present_invoice
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

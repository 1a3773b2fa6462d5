"""Pushing finalized invoices to their payment provider and recording what the provider says.

A push is safe to repeat: the provider calls carry idempotency keys derived from our ids, and the
references we record are keyed by our ids. A failed push leaves a visible ``failed`` state on the
invoice (``provider_sync_status``, ``provider_error``), retried by the next run.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from clickhouse_connect.driver.client import Client

from orchestration.invoices.ids import record_id
from orchestration.invoices.paid_credits import settle_purchased_credits
from orchestration.invoices.updates import update_invoices
from orchestration.stripe.provider import (
    PaymentEvent,
    PaymentProvider,
    ProviderCustomer,
    ProviderError,
    ProviderInvoice,
    ProviderInvoiceLine,
    invoice_lines,
)


@dataclass
class PushSummary:
    pushed: int = 0
    failed: int = 0
    errors: dict[str, str] = field(default_factory=dict)  # invoice id -> error


def _pending_invoices(client: Client, day: date, provider: str) -> list[dict[str, Any]]:
    return list(
        client.query(
            """
            SELECT i.organization_id AS organization_id, i.id AS id, i.number AS number,
                   i.currency AS currency, i.total_amount_cents AS total_amount_cents,
                   i.payment_due_date AS payment_due_date, i.fees_version AS fees_version,
                   i.progressive_billing_credit_amount_cents AS progressive_credit_cents,
                   i.coupons_amount_cents AS coupons_cents,
                   i.credit_notes_amount_cents AS credit_notes_cents,
                   i.prepaid_credit_amount_cents AS prepaid_credit_cents,
                   c.id AS customer_id, c.external_id AS external_id, c.name AS name,
                   c.email AS email,
                   if(ref.provider_object_id != '', ref.provider_object_id,
                      ifNull(c.provider_customer_id, '')) AS provider_customer_id
            FROM invoices AS i FINAL
            INNER JOIN (SELECT * FROM customers FINAL) AS c
                ON c.organization_id = i.organization_id AND c.id = i.customer_id
            LEFT JOIN (
                SELECT organization_id, object_id, provider_object_id
                FROM provider_references FINAL
                WHERE provider = %(provider)s AND object_type = 'customer'
            ) AS ref ON ref.organization_id = i.organization_id AND ref.object_id = i.customer_id
            WHERE i.billing_date = %(day)s AND i.status = 'finalized'
              AND i.provider_sync_status IN ('pending', 'failed')
              AND c.payment_provider = %(provider)s
            ORDER BY i.organization_id, i.id
            """,
            parameters={"day": day, "provider": provider},
        ).named_results()
    )


def _lines(client: Client, day: date) -> dict[UUID, list[ProviderInvoiceLine]]:
    rows = client.query(
        """
        SELECT invoice_id, id, invoice_display_name, amount_cents FROM invoice_fees
        WHERE (organization_id, invoice_id, fees_version) IN (
            SELECT organization_id, id, fees_version FROM invoices FINAL
            WHERE billing_date = %(day)s AND status = 'finalized'
        )
        ORDER BY invoice_id, id
        """,
        parameters={"day": day},
    ).result_rows
    lines: dict[UUID, list[ProviderInvoiceLine]] = defaultdict(list)
    for invoice_id, fee_id, name, amount_cents in rows:
        lines[invoice_id].append(ProviderInvoiceLine(str(fee_id), name, amount_cents))
    return lines


def _taxes(client: Client, day: date) -> dict[UUID, list[tuple[str, int]]]:
    rows = client.query(
        """
        SELECT invoice_id, tax_code, amount_cents FROM invoice_applied_taxes
        WHERE (organization_id, invoice_id, fees_version) IN (
            SELECT organization_id, id, fees_version FROM invoices FINAL
            WHERE billing_date = %(day)s AND status = 'finalized'
        )
        ORDER BY invoice_id, tax_code
        """,
        parameters={"day": day},
    ).result_rows
    taxes: dict[UUID, list[tuple[str, int]]] = defaultdict(list)
    for invoice_id, code, amount_cents in rows:
        taxes[invoice_id].append((code, amount_cents))
    return taxes


def record_reference(
    client: Client,
    organization_id: UUID,
    provider: str,
    object_type: str,
    object_id: UUID,
    provider_object_id: str,
    status: str,
    error: str | None = None,
) -> None:
    client.insert(
        "provider_references",
        [[organization_id, provider, object_type, object_id, provider_object_id, status, 1, error,
          datetime.now(UTC)]],
        column_names=["organization_id", "provider", "object_type", "object_id",
                      "provider_object_id", "status", "attempts", "last_error", "updated_at"],
    )  # fmt: skip


def push_day(client: Client, provider: PaymentProvider, day: date) -> PushSummary:
    """Push the day's finalized invoices not yet at the provider (or that failed before)."""
    summary = PushSummary()
    pending = _pending_invoices(client, day, provider.name)
    if not pending:
        return summary
    lines, taxes = _lines(client, day), _taxes(client, day)
    outcomes: dict[tuple[UUID, str, str | None], list[UUID]] = defaultdict(list)
    for row in pending:
        status, error = _push_one(client, provider, row, lines[row["id"]], taxes[row["id"]])
        outcomes[(row["organization_id"], status, error)].append(row["id"])
        if status == "failed":
            summary.failed += 1
            summary.errors[str(row["id"])] = error or ""
        else:
            summary.pushed += 1
    for (organization_id, status, error), invoice_ids in outcomes.items():
        changes: dict[str, Any] = {"provider_sync_status": status, "provider_error": error}
        update_invoices(client, organization_id, invoice_ids, **changes)
    return summary


def _push_one(
    client: Client,
    provider: PaymentProvider,
    row: dict[str, Any],
    fee_lines: list[ProviderInvoiceLine],
    taxes: list[tuple[str, int]],
) -> tuple[str, str | None]:
    organization_id, invoice_id = row["organization_id"], row["id"]
    try:
        provider_customer_id = provider.ensure_customer(
            ProviderCustomer(
                organization_id,
                row["customer_id"],
                row["external_id"],
                row["name"],
                row["email"],
                row["provider_customer_id"] or None,
            )
        )
        if provider_customer_id != row["provider_customer_id"]:
            record_reference(client, organization_id, provider.name, "customer",
                             row["customer_id"], provider_customer_id, "synced")  # fmt: skip
        invoice = ProviderInvoice(
            organization_id,
            invoice_id,
            row["number"],
            row["currency"],
            row["total_amount_cents"],
            row["payment_due_date"],
            invoice_lines(
                fee_lines,
                progressive_credit_cents=row["progressive_credit_cents"],
                coupons_cents=row["coupons_cents"],
                taxes=taxes,
                credit_notes_cents=row["credit_notes_cents"],
                prepaid_credit_cents=row["prepaid_credit_cents"],
            ),
        )
        result = provider.push_invoice(invoice, provider_customer_id)
    except ProviderError as error:
        record_reference(client, organization_id, provider.name, "invoice", invoice_id, "",
                         "failed", str(error))  # fmt: skip
        return "failed", str(error)
    record_reference(client, organization_id, provider.name, "invoice", invoice_id,
                     result.provider_invoice_id, result.status)  # fmt: skip
    return "synced", None


def apply_payment_event(client: Client, provider: str, event: PaymentEvent) -> bool:
    """Record a provider webhook and update the invoice's payment status; False if unknown."""
    if event.organization_id is None or event.invoice_id is None:
        return False
    now = datetime.now(UTC)
    client.insert(
        "provider_events",
        [[event.organization_id, provider, event.provider_event_id, event.event_type,
          event.provider_invoice_id, event.payload, now]],
        column_names=["organization_id", "provider", "provider_event_id", "event_type",
                      "provider_object_id", "payload", "received_at"],
    )  # fmt: skip
    if event.payment_status is None:
        return True
    paid = event.amount_paid_cents if event.payment_status == "succeeded" else 0
    client.insert(
        "payments",
        [[event.organization_id, record_id("payment", provider, event.provider_invoice_id),
          event.invoice_id, provider, event.provider_invoice_id, event.amount_paid_cents,
          _invoice_currency(client, event), event.payment_status, now, now]],
        column_names=["organization_id", "id", "invoice_id", "provider", "provider_payment_id",
                      "amount_cents", "currency", "status", "created_at", "updated_at"],
    )  # fmt: skip
    update_invoices(
        client,
        event.organization_id,
        [event.invoice_id],
        payment_status=event.payment_status,
        total_paid_amount_cents=paid,
    )
    settle_purchased_credits(client, event.organization_id, event.invoice_id, event.payment_status)
    return True


def _invoice_currency(client: Client, event: PaymentEvent) -> str:
    currency = client.command(
        "SELECT any(currency) FROM invoices FINAL WHERE organization_id = %(o)s AND id = %(i)s",
        parameters={"o": event.organization_id, "i": event.invoice_id},
    )
    return str(currency)
